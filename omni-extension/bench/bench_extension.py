"""Benchmark: what the extension costs the simulation thread, and how fast the worker delivers to the
real gateway. Prints figures; asserts nothing (speed is judged by reading them).

    .venv/bin/python omni-extension/bench/bench_extension.py            # main-thread figures only
    .venv/bin/python omni-extension/bench/bench_extension.py --gateway  # plus delivery to the real gateway
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from parking_lot import CAMERAS, GATES, build_parking_lot  # noqa: E402
from pxr import Gf, Sdf, UsdGeom  # noqa: E402
from simgate.parking.events import CapturedImage  # noqa: E402
from simgate.parking.gates import GateCrossing  # noqa: E402
from simgate.parking.images import encode, encode_frame_images, RgbaFrame  # noqa: E402
from simgate.parking.outbox import frame_of  # noqa: E402
from simgate.parking.session import ParkingSession  # noqa: E402
from simgate.parking.settings import ParkingSettings  # noqa: E402
from simgate.parking.spool import DiskSpool  # noqa: E402
from simgate.parking.stage_reader import StageReader  # noqa: E402
from simgate.parking.transports import GrpcTransport  # noqa: E402
from simgate.parking.worker import GatewayWorker  # noqa: E402


def frame_1280x720() -> np.ndarray:
    y, x = np.mgrid[0:720, 0:1280]
    img = np.stack([(x // 5) % 256, (y // 3) % 256, ((x + y) // 7) % 256, np.full_like(x, 255)], -1).astype(np.uint8)
    noise = np.random.default_rng(1).integers(-8, 8, img[..., :3].shape)
    img[..., :3] = np.clip(img[..., :3].astype(int) + noise, 0, 255)
    return img


def ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return f"median {statistics.median(samples) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms (n={len(samples)})"


def main_thread(cars: int) -> None:
    stage = build_parking_lot()
    for i in range(cars):  # extra animated cars driving around inside the lot
        car = UsdGeom.Xform.Define(stage, f"/World/Cars/Extra{i}")
        car.GetPrim().CreateAttribute("simgate:carId", Sdf.ValueTypeNames.String).Set(f"X{i:05d}")
        op = car.AddTranslateOp()
        op.Set(Gf.Vec3d(500 + i, 100, 50), 0)
        op.Set(Gf.Vec3d(900 + i, 300, 50), 96)
    pixels = frame_1280x720()
    settings = ParkingSettings(gate_prim_paths=GATES, camera_prim_paths=CAMERAS)
    sink_count = [0]

    def sink(message) -> bool:
        sink_count[0] += 1
        return True

    session = ParkingSession(settings, StageReader(stage), sink, lambda cam: pixels, "bench", encode_images=False)
    session.start()
    updates, events = [], []
    for frame in range(120):
        t0 = time.perf_counter()
        emitted = session.on_update(frame / 24)
        (events if emitted else updates).append(time.perf_counter() - t0)
    print(f"on_update with {cars + 3} cars, no event:          {ms(updates)}")
    print(f"on_update emitting an event (1280x720 raw copy): {ms(events)}")
    for encoding in ("png", "jpeg"):
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            encode(RgbaFrame.from_array(pixels), encoding)
            samples.append(time.perf_counter() - t0)
        print(f"{encoding} encoding of 1280x720 (worker thread, not main): {ms(samples)}")

    with tempfile.TemporaryDirectory() as tmp:
        worker = GatewayWorker(lambda: GrpcTransport("127.0.0.1:9"), DiskSpool(tmp, 1 << 34, 100_000), outbox_capacity=1_000)
        event = session.run.event(GateCrossing(GATES[0], "entry", "/World/Cars/Car1", "in", 1.0, "position"),
                                  session.reader.car_state("/World/Cars/Car1", 1.0),
                                  [CapturedImage("entry", CAMERAS[0], encode(RgbaFrame.from_array(pixels), "raw"))])
        samples = []
        for _ in range(500):
            t0 = time.perf_counter()
            worker.submit(event)
            samples.append(time.perf_counter() - t0)
        print(f"worker.submit (outbox put, not full):            {ms(samples)}")


def delivery(events: int, encoding: str) -> None:
    from gateway_process import GatewayProcess

    pixels = frame_1280x720()
    gateway = GatewayProcess("bench-token-0123456789abcdef").start()
    stage = build_parking_lot()
    settings = ParkingSettings(gate_prim_paths=GATES, camera_prim_paths=CAMERAS, image_encoding=encoding)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            worker = GatewayWorker(lambda: GrpcTransport(gateway.grpc_address, gateway.token),
                                   DiskSpool(tmp, 1 << 34, 100_000), outbox_capacity=events + 10, max_in_flight=32,
                                   prepare=lambda f: encode_frame_images(f, encoding))
            session = ParkingSession(settings, StageReader(stage), worker.submit, lambda cam: pixels, "bench",
                                     encode_images=False)
            reader = session.reader
            worker.start()
            session.start()
            car = reader.car_state("/World/Cars/Car1", 1.0)
            t0 = time.perf_counter()
            for n in range(events):
                worker.submit(session.run.event(
                    GateCrossing(GATES[0], "entry", "/World/Cars/Car1", "in", float(n), "position"), car,
                    [CapturedImage("entry", CAMERAS[0], encode(RgbaFrame.from_array(pixels), "raw"))]))
            while worker.pending() > 0:
                time.sleep(0.01)
            elapsed = time.perf_counter() - t0
            worker.stop(5)
        print(f"delivery to the real gateway ({encoding}, 1280x720, 1 image each): {events} events acknowledged "
              f"in {elapsed:.2f} s = {events / elapsed:.1f} events/s; stats {worker.snapshot()}")
    finally:
        gateway.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cars", type=int, default=50)
    parser.add_argument("--gateway", action="store_true")
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    main_thread(args.cars)
    if args.gateway:
        for encoding in ("jpeg", "png"):
            delivery(args.events, encoding)
