"""Contract test against the REAL TypeScript gateway on the local stack (Kafka, S3Proxy).

The Python client (the extension's worker, fed by a ParkingSession on a real USD stage, with real PNG,
JPEG and raw RGBA images) streams a run; the project's TypeScript client (test/support/clients.ts, run
with tsx) streams the same run under another run id. What lands in Kafka and in the object store must
be the same, byte for byte once the ids are swapped. Then the gateway is SIGKILLed mid-run and started
again: the Python client spools, reconnects, resends with the same event ids, and every event lands.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gateway_process import REPO_ROOT, GatewayProcess, read_object, read_topic, s3_client
from parking_lot import CAMERAS, GATES, TCPS, build_parking_lot
from simgate.parking.events import CapturedImage, RunEvents
from simgate.parking.gates import GateCrossing
from simgate.parking.images import RgbaFrame, encode
from simgate.parking.session import ParkingSession
from simgate.parking.settings import ParkingSettings
from simgate.parking.spool import DiskSpool
from simgate.parking.stage_reader import StageReader
from simgate.parking.transports import GrpcTransport, WebSocketTransport
from simgate.parking.worker import GatewayWorker
from simgate.v1 import simgate_pb2

TOKEN = "py-contract-token-0123456789"
CLOCK_MS = 1_795_000_000_000
TSX = REPO_ROOT / "node_modules" / ".bin" / "tsx"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def gateway():
    gw = GatewayProcess(TOKEN).start()
    yield gw
    gw.kill()


def camera_frame(seed: int, width: int = 96, height: int = 64) -> RgbaFrame:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return RgbaFrame.from_array(pixels)


STAGE = build_parking_lot()  # one stage for every run, so that the runs' stage identity is the same


def build_run(run_id: str) -> list[simgate_pb2.RunStart | simgate_pb2.Event | simgate_pb2.RunEnd]:
    """Run start, the session's events on the USD parking lot, more events with every image encoding, run end.
    Deterministic for a given run id (fixed clock, fixed pixels), so two runs differ only in their ids."""
    settings = ParkingSettings(gate_prim_paths=GATES, camera_prim_paths=CAMERAS, image_width=96, image_height=64)
    reader = StageReader(STAGE)
    sent: list = []
    frames = {camera: camera_frame(i) for i, camera in enumerate(CAMERAS)}
    session = ParkingSession(settings, reader, sent.append, frames.__getitem__, "0.1.0", run_id=run_id,
                             clock_ms=lambda: CLOCK_MS)
    session.start()
    for frame in range(int(4 * TCPS)):
        session.on_update(frame / TCPS)
    assert [m.event_type for m in sent[1:]] == ["parking.entry", "parking.exit"]
    run: RunEvents = session.run
    for n, encoding in enumerate(["png", "jpeg", "raw", "png", "jpeg", "raw"]):
        crossing = GateCrossing(GATES[n % 2], ("entry", "exit")[n % 2], "/World/Cars/Car1", ("in", "out")[n % 2],
                                2.0 + n, "position")
        image = encode(camera_frame(100 + n, 64 + 8 * n, 48), encoding)
        sent.append(run.event(crossing, reader.car_state("/World/Cars/Car1", 2.0 + n),
                              [CapturedImage(("entry", "exit")[n % 2], CAMERAS[n % 2], image)]))
    session.end("completed")  # goes to the sink like every message
    return sent


def send_with_python(gateway: GatewayProcess, messages, tmp_path: Path, transport: str = "grpc") -> GatewayWorker:
    factory = (lambda: GrpcTransport(gateway.grpc_address, TOKEN)) if transport == "grpc" else \
        (lambda: WebSocketTransport(gateway.ws_url, TOKEN))
    worker = GatewayWorker(factory, DiskSpool(tmp_path / f"spool-{transport}", 1 << 28, 10_000),
                           reconnect_initial_ms=100, reconnect_max_ms=1000)
    worker.start()
    for message in messages:
        worker.submit(message)
    wait_for(lambda: worker.pending() == 0, 60, "every frame acknowledged")
    worker.stop(5)
    return worker


def send_with_typescript(gateway: GatewayProcess, messages, tmp_path: Path) -> list[dict]:
    frames_file = tmp_path / "frames.bin"
    with open(frames_file, "wb") as fh:
        for message in messages:
            frame = simgate_pb2.ClientFrame()
            kind = {"RunStart": "run_start", "Event": "event", "RunEnd": "run_end"}[type(message).__name__]
            getattr(frame, kind).CopyFrom(message)
            data = frame.SerializeToString()
            fh.write(struct.pack(">I", len(data)) + data)
    result = subprocess.run([str(TSX), str(Path(__file__).with_name("ts_twin_client.mts")), str(frames_file),
                             gateway.grpc_address, TOKEN], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def records_of(gateway: GatewayProcess, run_id: str) -> dict[str, list[dict]]:
    out = {}
    for name in ("entries", "exits", "runs"):
        out[name] = [r for r in read_topic(gateway.topics[name]) if r["headers"].get("run-id") == run_id
                     or (r["value"] or {}).get("runId") == run_id]
    return out


def normalised(record: dict, run_id: str) -> dict:
    """A record with its run id replaced and its arrival time removed; the rest must match exactly."""
    text = json.dumps({k: record[k] for k in ("key", "value", "headers")}, sort_keys=True)
    value = json.loads(text.replace(run_id, "<RUN>"))
    value["value"].pop("ingest", None)
    if value["value"].get("kind") in ("run.start", "run.end"):
        value["value"].pop("at", None)
    return value


def test_python_client_lands_exactly_like_the_typescript_client(gateway, tmp_path) -> None:
    py_run, ts_run = f"py-{int(time.time())}-{random.randrange(1 << 30):x}", f"ts-{int(time.time())}-{random.randrange(1 << 30):x}"
    py_messages, ts_messages = build_run(py_run), build_run(ts_run)
    worker = send_with_python(gateway, py_messages, tmp_path)
    assert (worker.stats.accepted, worker.stats.rejected, worker.stats.run_acks) == (8, 0, 2)
    answers = send_with_typescript(gateway, ts_messages, tmp_path)
    assert sum("accepted" in a.get("ack", {}) for a in answers) == 8, answers

    py, ts = records_of(gateway, py_run), records_of(gateway, ts_run)
    assert [len(py[t]) for t in ("entries", "exits", "runs")] == [4, 4, 2]
    for topic in ("entries", "exits", "runs"):
        py_norm = sorted((normalised(r, py_run) for r in py[topic]), key=json.dumps)
        ts_norm = sorted((normalised(r, ts_run) for r in ts[topic]), key=json.dumps)
        assert py_norm == ts_norm, topic

    # The record contract (docs/records.md), seen on the Python client's records.
    entry = next(r for r in py["entries"] if r["value"]["sequence"] == 1)
    value = entry["value"]
    assert entry["key"] == f"{py_run}/12GA3456"
    assert entry["headers"] == {"schema-version": "1", "content-type": "application/json", "run-id": py_run,
                                "event-id": f"{py_run}-000001"}
    assert value["schemaVersion"] == 1 and value["eventType"] == "parking.entry" and value["carId"] == "12GA3456"
    assert value["coordinates"]["slotId"] == "B-07" and value["attributes"]["detectedBy"] == "position"
    assert value["timeStamp"].startswith("2026-11-18T")  # the fixed capture clock, ISO-8601 UTC
    run_records = {r["value"]["kind"]: r["value"] for r in py["runs"]}
    assert set(run_records) == {"run.start", "run.end"}
    assert run_records["run.end"]["eventsSent"] == 8

    # Blobs: the bytes we sent (PNG/JPEG passed through, raw converted), the same for both clients.
    s3 = s3_client()
    sent_images = {e.event_id: e.images[0] for e in py_messages if isinstance(e, simgate_pb2.Event)}
    ts_records = {r["value"]["sequence"]: r["value"] for r in ts["entries"] + ts["exits"]}
    content_types = set()
    for record in py["entries"] + py["exits"]:
        (image,) = record["value"]["images"]
        assert re.fullmatch(rf"s3://[^/]+/(.*/)?runs/{py_run}/events/{record['value']['eventId']}/{image['view']}\.\w+", image["uri"])
        stored = read_object(s3, image["uri"])
        import hashlib

        assert hashlib.sha256(stored["bytes"]).hexdigest() == image["sha256"] and len(stored["bytes"]) == image["sizeBytes"]
        assert stored["content_type"] == image["contentType"]
        sent = sent_images[record["value"]["eventId"]]
        if sent.encoding != simgate_pb2.IMAGE_ENCODING_RAW_RGBA8:
            assert stored["bytes"] == sent.data  # passed through byte for byte
        else:
            from PIL import Image
            import io

            decoded = np.asarray(Image.open(io.BytesIO(stored["bytes"])).convert("RGBA"))
            assert decoded.tobytes() == sent.data  # converted losslessly
        twin = ts_records[record["value"]["sequence"]]["images"][0]
        assert (twin["sha256"], twin["sizeBytes"], twin["contentType"]) == (image["sha256"], image["sizeBytes"], image["contentType"])
        twin_metadata = json.dumps(read_object(s3, twin["uri"])["metadata"], sort_keys=True).replace(ts_run, "<RUN>")
        assert twin_metadata == json.dumps(stored["metadata"], sort_keys=True).replace(py_run, "<RUN>")
        content_types.add(image["contentType"])
    assert {"image/png", "image/jpeg"} <= content_types


def test_websocket_transport_lands_the_same_records(gateway, tmp_path) -> None:
    grpc_run, ws_run = f"pyg-{random.randrange(1 << 40):x}", f"pyw-{random.randrange(1 << 40):x}"
    send_with_python(gateway, build_run(grpc_run), tmp_path, "grpc")
    worker = send_with_python(gateway, build_run(ws_run), tmp_path, "ws")
    assert (worker.stats.accepted, worker.stats.run_acks) == (8, 2)
    by_grpc, by_ws = records_of(gateway, grpc_run), records_of(gateway, ws_run)
    for topic in ("entries", "exits", "runs"):
        assert sorted((normalised(r, grpc_run) for r in by_grpc[topic]), key=json.dumps) == \
            sorted((normalised(r, ws_run) for r in by_ws[topic]), key=json.dumps)


def test_gateway_killed_and_restarted_mid_run_every_event_lands(tmp_path) -> None:
    gateway = GatewayProcess(TOKEN).start()
    try:
        run_id = f"pyk-{random.randrange(1 << 40):x}"
        run = RunEvents(run_id, clock_ms=lambda: CLOCK_MS)
        reader = StageReader(build_parking_lot())
        car = reader.car_state("/World/Cars/Car1", 2.0)
        total = 40

        def make(n: int) -> simgate_pb2.Event:
            crossing = GateCrossing(GATES[0], "entry", "/World/Cars/Car1", "in", float(n), "trigger")
            return run.event(crossing, car, [CapturedImage("entry", CAMERAS[0], encode(camera_frame(n, 320, 240), "png"))])

        worker = GatewayWorker(lambda: GrpcTransport(gateway.grpc_address, TOKEN, connect_timeout_s=1.0),
                               DiskSpool(tmp_path / "spool", 1 << 28, 10_000), max_in_flight=16,
                               reconnect_initial_ms=100, reconnect_max_ms=800)
        worker.start()
        worker.submit(run.run_start("stage#test", "0.1.0"))
        for n in range(1, 21):
            worker.submit(make(n))
        wait_for(lambda: worker.stats.accepted >= 5, 60, "the first acks")
        gateway.freeze()  # hangs: what it holds now is never acknowledged ...
        for n in range(21, 26):
            worker.submit(make(n))
        wait_for(lambda: worker.snapshot()["in_flight"] >= 1, 30, "events on the wire, unacknowledged")
        unacked_at_kill = worker.snapshot()["in_flight"]
        gateway.kill()  # ... and dies (SIGKILL)
        for n in range(26, total + 1):
            worker.submit(make(n))  # the simulation goes on while the gateway is away
        # everything submitted while it is down ends up in the spool (plus what was unacknowledged)
        wait_for(lambda: worker.stats.connect_failures >= 1 and len(worker.spool) >= total - 25 + unacked_at_kill, 30,
                 "spooling while down")
        spooled_while_down = len(worker.spool)
        gateway.start()
        worker.submit(run.run_end("completed"))
        wait_for(lambda: worker.pending() == 0, 120, "everything acknowledged after the restart")
        assert worker.stop(5)

        assert worker.stats.disconnects >= 1 and worker.stats.connect_failures >= 1
        assert worker.stats.resent >= unacked_at_kill >= 1  # the same event ids, sent again
        records = [r for r in read_topic(gateway.topics["entries"]) if r["headers"].get("run-id") == run_id]
        ids = [r["value"]["eventId"] for r in records]
        assert sorted(set(ids)) == [f"{run_id}-{n:06d}" for n in range(1, total + 1)]  # every event, none lost
        # A resend the restarted gateway no longer remembered is a second record with the same id and the
        # same content (the lakehouse drops it by event id); nothing else may differ.
        by_id: dict[str, list[dict]] = {}
        for r in records:
            by_id.setdefault(r["value"]["eventId"], []).append(normalised(r, run_id))
        for copies in by_id.values():
            assert all(c == copies[0] for c in copies)
        s3 = s3_client()
        for r in records:
            image = r["value"]["images"][0]
            assert len(read_object(s3, image["uri"])["bytes"]) == image["sizeBytes"]
        kinds = [r["value"]["kind"] for r in read_topic(gateway.topics["runs"]) if r["value"].get("runId") == run_id]
        assert kinds.count("run.start") >= 1 and kinds.count("run.end") == 1
        print(f"\nkill/restart: {total} events, {unacked_at_kill} unacknowledged at the kill, {spooled_while_down} spooled while down, {worker.stats.resent} resent, "
              f"{len(records)} records for {len(set(ids))} ids; stats {worker.snapshot()}")
    finally:
        gateway.kill()
