"""Benchmark: what streaming costs Kit's main thread. The real extension is loaded, as in the Kit-loading tests,
into the stand-in Kit (omni-extension/tests/kit_standins.py: Kit 107 event API, 1280x720 gate cameras whose
rgb annotators keep the latest finished frame in a reused host buffer, as Replicator does), on a stage with 50
more cars driving in and out through the two gates, and Kit's update loop is run at a fixed rate.

Per update it records, on the main thread:
- the extension's callbacks (update and PhysX trigger reports): wall time and the thread's own CPU time
  (time.thread_time_ns);
- the whole update (kit.update: timeline, physics step, update event, render), wall and CPU, with streaming on
  and off: the added time is on minus off at the same percentile (it includes what the worker thread costs the
  rest of Kit's Python on the main thread, e.g. waits for the GIL);
- the main thread's voluntary and involuntary context switches during the update (getrusage RUSAGE_THREAD),
  to tell a stall caused by preemption (other processes, involuntary) from a wait (the GIL, voluntary); and
  its page faults and kernel CPU time, to tell what an update over 5 ms of CPU spent it on.

--capture says where the update copies the gate camera's frame: cuda (default; Kit on an RTX machine: the
stand-in GPU, a device-side copy on the update and the host copy on the worker, see kit_standins.py) or cpu
(no GPU: a 3.7 MB copy into a recycled host buffer on the main thread).

Conditions (one run of --updates updates each):
  off   the same stage and loop without the extension (what the loop costs anyway)
  down  streaming on, the gateway down: every event goes to the spool (encoded and written by the worker)
  full  streaming on, the real gateway frozen (SIGSTOP): the worker's write hangs, the outbox fills and
        is spilled to the spool
  up    streaming on, the real gateway (node gateway/dist/cli/main.js, this repository) on the local stack

    bash deploy/local/stack up s3 kafka && eval "$(deploy/local/stack env)"
    .venv/bin/python omni-extension/bench/bench_extension.py [--updates 10000] [--hz 60] [--conditions off,down,full,up]
        [--capture cuda|cpu] [--results omni-extension/bench/results.md]

SIMGATE_GRPC_PORT / SIMGATE_HTTP_PORT, when set, are the ports the real gateway listens on. Figures go to
--results (with the command) and are printed as tables; targets: p99 added main-thread time per update
< 1 ms, no update stall > 5 ms. The load average is given for each condition: on a machine shared with other
work, wall times include preemption by other processes.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from kit_standins import Kit, extension_id, import_extension_classes  # noqa: E402
from parking_lot import CAMERAS, build_parking_lot  # noqa: E402
from pxr import Gf, Sdf, Usd, UsdGeom  # noqa: E402

EXT_ROOT = HERE.parent / "exts" / "simgate.parking"
CYCLE_S = 40.0  # each extra car: in through its gate, parked, out again, waiting on the street


def noisy_scene(width: int, height: int) -> np.ndarray:
    """Camera-like pixels (gradients and sensor noise), so the worker's PNG encoding costs what it would."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(x // 5) % 256, (y // 3) % 256, ((x + y) // 7) % 256, np.full_like(x, 255)], -1).astype(np.uint8)
    noise = np.random.default_rng(1).integers(-8, 8, img[..., :3].shape)
    img[..., :3] = np.clip(img[..., :3].astype(int) + noise, 0, 255)
    return img


def busy_lot(cars: int, seconds: float) -> Usd.Stage:
    stage = build_parking_lot()
    tcps = stage.GetTimeCodesPerSecond()
    stage.SetEndTimeCode(seconds * tcps)
    for i in range(cars):
        gate_y = 0.0 if i % 2 == 0 else 600.0
        lane = gate_y + (i % 5 - 2) * 40.0  # a few lanes through each gate
        car = UsdGeom.Xform.Define(stage, f"/World/Cars/Extra{i:02d}")
        car.GetPrim().CreateAttribute("simgate:carId", Sdf.ValueTypeNames.String).Set(f"EX{i:04d}")
        translate = car.AddTranslateOp()
        car.AddRotateZOp().Set(0.0)
        offset = (i * CYCLE_S / cars) % CYCLE_S
        t = -offset
        while t < seconds + CYCLE_S:
            street, lot = Gf.Vec3d(-800, lane, 50), Gf.Vec3d(800 + i * 3, lane, 50)
            for dt, where in ((0, street), (4, lot), (20, lot), (24, street)):  # in over 4 s, out over 4 s
                at = t + dt
                if 0 <= at <= seconds + 1:
                    translate.Set(where, Usd.TimeCode(at * tcps))
            t += CYCLE_S
    return stage


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(math.ceil(q * len(ordered))) - 1)]


class Meter:
    """Wall and CPU time spent inside the wrapped callbacks during the current update."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall += (time.perf_counter_ns() - w0) / 1e9
                self.cpu += (time.thread_time_ns() - c0) / 1e9

        return timed


def run_condition(name: str, args, gateway=None) -> dict:
    import sys as _sys

    for key in [k for k in _sys.modules if k == "simgate" or k.startswith("simgate.parking")]:
        del _sys.modules[key]
    seconds = args.updates / args.hz + 2
    stage = busy_lot(args.cars, seconds)
    spool = tempfile.mkdtemp(prefix=f"simgate-bench-{name}-")
    settings = {
        "gatewayAddress": gateway.grpc_address if gateway else "127.0.0.1:9",
        "token": gateway.token if gateway else "",
        "cameraPrimPaths": list(CAMERAS),
        "imageWidth": 1280,
        "imageHeight": 720,
        "spoolDir": spool,
        "outboxCapacity": 16 if name == "full" else 256,
        "reconnectMaxMs": 2000,
        "captureDevice": args.capture,
    }
    kit = Kit(stage, {f"/exts/simgate.parking/{k}": v for k, v in settings.items()}, api="107",
              annotator_lag=2, skip_every=0, gpu=args.capture == "cuda")
    kit.replicator.scene = noisy_scene
    kit.replicator.picture((1280, 720))  # made before the measurement
    for module_name, module in kit.modules.items():
        _sys.modules[module_name] = module
    import pxr

    from kit_standins import PhysicsSchemaTools

    pxr.PhysicsSchemaTools = PhysicsSchemaTools
    meter = Meter()
    extension = None
    if name != "off":
        (extension_class,) = import_extension_classes(EXT_ROOT)
        # wrapped before on_startup, so the subscriptions hold the timed callbacks
        extension_class._on_update = meter.wrap(extension_class._on_update)
        extension_class._on_trigger_report = meter.wrap(extension_class._on_trigger_report)
        extension = extension_class()
        extension.on_startup(extension_id(EXT_ROOT))
        if name == "full":
            time.sleep(1.0)
            gateway.freeze()
    kit.timeline.play()
    period = 1.0 / args.hz
    # Not measured: the updates until the annotators' first finished frame, where the stand-in Replicator
    # allocates its host buffer (3.7 MB of page faults, 8-10 ms of CPU once, in Replicator's code and only
    # with an annotator attached, so never in `off`). In Kit that buffer is Replicator's, made when the
    # render product starts producing.
    for _ in range(kit.annotator_lag + 2):
        kit.update(period)
    walls, cpus, lateness, update_walls, update_cpus, with_event, vcsw, ivcsw, gcs = [], [], [], [], [], [], [], [], []
    faults, system = [], []  # page faults and kernel CPU seconds of the main thread during each update
    gc_ns = [0, 0]  # this update's garbage-collection time on the main thread; start of the current collection

    def on_gc(phase: str, _info: dict) -> None:
        if threading.current_thread() is threading.main_thread():
            if phase == "start":
                gc_ns[1] = time.perf_counter_ns()
            else:
                gc_ns[0] += time.perf_counter_ns() - gc_ns[1]

    gc.callbacks.append(on_gc)
    events_before = 0
    load_start = os.getloadavg()[0]
    next_at = time.perf_counter()
    for _ in range(args.updates):
        next_at += period
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.perf_counter()  # fell behind: do not try to catch up
        woke = time.perf_counter()
        lateness.append(max(0.0, woke - next_at))
        meter.wall = meter.cpu = 0.0
        session = extension._session if extension is not None else None
        events_before = session.stats.events if session is not None else 0
        gc_ns[0] = 0
        r0 = resource.getrusage(resource.RUSAGE_THREAD)
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        kit.update(period)
        c1, w1 = time.thread_time_ns(), time.perf_counter_ns()
        r1 = resource.getrusage(resource.RUSAGE_THREAD)
        update_walls.append((w1 - w0) / 1e9)
        update_cpus.append((c1 - c0) / 1e9)
        vcsw.append(r1.ru_nvcsw - r0.ru_nvcsw)
        ivcsw.append(r1.ru_nivcsw - r0.ru_nivcsw)
        faults.append((r1.ru_minflt - r0.ru_minflt) + (r1.ru_majflt - r0.ru_majflt))
        system.append(r1.ru_stime - r0.ru_stime)
        gcs.append(gc_ns[0] / 1e9)
        with_event.append(session is not None and session.stats.events > events_before)
        walls.append(meter.wall)
        cpus.append(meter.cpu)
    result = {
        "condition": name,
        "updates": args.updates,
        "callback_wall": walls,
        "callback_cpu": cpus,
        "lateness": lateness,
        "update_wall": update_walls,
        "update_cpu": update_cpus,
        "vcsw": vcsw,
        "ivcsw": ivcsw,
        "faults": faults,
        "system": system,
        "gc": gcs,
        "with_event": with_event,
        "load": (load_start, os.getloadavg()[0]),
    }
    gc.callbacks.remove(on_gc)
    if extension is not None:
        session = extension._session
        result["events"] = session.stats.events if session is not None else 0
        snapshot = extension.worker.snapshot()
        pool = extension._frame_pool
        if pool is not None:
            result["pool"] = f"host: {pool.reused} reused / {pool.allocated} new"
        else:  # frames copied on the (stand-in) GPU; the worker made the host copies
            rep = kit.replicator
            main = threading.main_thread().ident
            on_main = sum(1 for t in rep.host_copy_threads if t == main)
            result["pool"] = f"device: {rep.device_clones} copies, {on_main} host copies on the main thread"
        worker = extension.worker
        if name == "full":
            gateway.thaw()
        extension.on_shutdown()
        result["worker"] = snapshot
        worker.join(300)  # off the measurement: the next condition starts on a quiet worker
    import shutil

    shutil.rmtree(spool, ignore_errors=True)
    return result


def ms(v: float) -> str:
    return f"{v * 1000:.3f}"


def three(samples: list[float]) -> str:
    return f"{ms(statistics.median(samples))} / {ms(percentile(samples, 0.99))} / {ms(max(samples))}"


def over(samples: list[float], limit: float = 0.005) -> int:
    return sum(1 for v in samples if v > limit)


def stalls(result: dict, limit: float = 0.005) -> str:
    """Updates over the limit (wall): how many had involuntary context switches (preempted), how many only
    voluntary ones (waited: the GIL or a lock), and their highest CPU time."""
    slow = [i for i, w in enumerate(result["update_wall"]) if w > limit]
    if not slow:
        return "0"
    preempted = sum(1 for i in slow if result["ivcsw"][i] > 0)
    waited = sum(1 for i in slow if result["ivcsw"][i] == 0 and result["vcsw"][i] > 0)
    collected = sum(1 for i in slow if result["gc"][i] > 0.001)
    cpu = max(result["update_cpu"][i] for i in slow)
    return f"{len(slow)}: {preempted} preempted, {waited} waited, {collected} in a GC pause; CPU max {ms(cpu)}"


def cpu_outliers(result: dict, limit: float = 0.005) -> str:
    """Updates over the limit in the main thread's own CPU time: how many were in a garbage-collection pause,
    how many took page faults, and the most kernel CPU (getrusage ru_stime: faults, and on a virtual machine
    interrupt time charged to the thread) any of them spent."""
    slow = [i for i, c in enumerate(result["update_cpu"]) if c > limit]
    if not slow:
        return "0"
    collected = sum(1 for i in slow if result["gc"][i] > 0.001)
    faulted = sum(1 for i in slow if result["faults"][i] > 0)
    return f"{len(slow)} ({collected}; {faulted}; {ms(max(result['system'][i] for i in slow))})"


def cost_row(result: dict) -> list[str]:
    quiet = [c for c, e in zip(result["callback_cpu"], result["with_event"]) if not e] or [0.0]
    busy = [c for c, e in zip(result["callback_cpu"], result["with_event"]) if e] or [0.0]
    return [
        result["condition"],
        f"{result['load'][0]:.1f} / {result['load'][1]:.1f}",
        str(result.get("events", "-")),
        three(result["callback_cpu"]),
        f"{ms(percentile(quiet, 0.99))} / {ms(statistics.median(busy))} / {ms(max(busy))}",
        str(over(result["callback_cpu"])),
        three(result["callback_wall"]),
        str(over(result["callback_wall"])),
    ]


COST_HEADER = ["condition", "load avg start / end", "events", "callback CPU ms p50 / p99 / max",
               "CPU ms: p99 without an event / p50, max with one", "CPU > 5 ms", "callback wall ms p50 / p99 / max",
               "wall > 5 ms"]


def update_row(result: dict, off: Optional[dict]) -> list[str]:
    def added(key: str, q: float) -> str:
        if off is None or result is off:
            return "-"
        return ms(percentile(result[key], q) - percentile(off[key], q))

    worker = result.get("worker", {})
    return [
        result["condition"],
        three(result["update_cpu"]),
        f"{added('update_cpu', 0.5)} / {added('update_cpu', 0.99)}",
        cpu_outliers(result),
        three(result["update_wall"]),
        f"{added('update_wall', 0.5)} / {added('update_wall', 0.99)}",
        stalls(result),
        f"{ms(percentile(result['lateness'], 0.99))} / {ms(max(result['lateness']))}",
        f"{worker.get('accepted', '-')}/{worker.get('spool_frames', '-')}/{worker.get('outbox_dropped', '-')}/"
        f"{worker.get('spool_dropped', '-')}" if worker else "-",
        result.get("pool", "-"),
    ]


UPDATE_HEADER = ["condition", "update CPU ms p50 / p99 / max", "added CPU ms p50 / p99 (on - off)",
                 "CPU > 5 ms (in a GC pause; with page faults; kernel CPU max)",
                 "update wall ms p50 / p99 / max", "added wall ms p50 / p99", "wall > 5 ms: cause",
                 "wake-up lateness ms p99 / max", "accepted/spooled/outbox dropped/spool dropped",
                 "frame copies"]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join("| " + " | ".join(row) + " |" for row in [header, ["---"] * len(header)] + rows)


def table(results: list[dict]) -> str:
    off = next((r for r in results if r["condition"] == "off"), None)
    return (
        "Extension callbacks (update and trigger reports) per update:\n\n"
        + markdown(COST_HEADER, [cost_row(r) for r in results])
        + "\n\nWhole update (kit.update) per update, streaming on against off:\n\n"
        + markdown(UPDATE_HEADER, [update_row(r, off) for r in results])
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--hz", type=float, default=60.0)
    parser.add_argument("--cars", type=int, default=50)
    parser.add_argument("--conditions", default="off,down,full,up")
    parser.add_argument("--capture", choices=("cuda", "cpu"), default="cuda",
                        help="where the update copies the frame: cuda (a GPU, as in Kit on RTX) or cpu (host copy)")
    parser.add_argument("--results", default="")
    args = parser.parse_args()
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    results = []
    load_before = os.getloadavg()
    for name in conditions:
        gateway = None
        if name in ("full", "up"):
            from gateway_process import GatewayProcess

            gateway = GatewayProcess("bench-token-0123456789abcdef")
            for key, attr in (("SIMGATE_GRPC_PORT", "grpc_port"), ("SIMGATE_HTTP_PORT", "http_port")):
                if os.environ.get(key):
                    setattr(gateway, attr, int(os.environ[key]))
                    gateway.env[key] = os.environ[key]
            gateway.start()
        try:
            started = time.monotonic()
            result = run_condition(name, args, gateway)
            result["seconds"] = time.monotonic() - started
            results.append(result)
            print(f"{name}: done in {result['seconds']:.0f} s; worker {result.get('worker', {})}", flush=True)
        finally:
            if gateway is not None:
                gateway.kill()
    load_after = os.getloadavg()
    text = table(results)
    print(text)
    if args.results:
        shown = [f"--results {args.results}" if a == args.results else shlex.quote(a) for a in sys.argv[1:] if a != "--results"]
        command = "bench/bench_extension.py " + " ".join(shown)
        machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
                   f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
        Path(args.results).write_text(
            "# Main-thread cost of streaming (bench_extension.py)\n\n"
            f"Command (repository root, stack up, `eval \"$(deploy/local/stack env)\"`): `.venv/bin/python omni-extension/{command}`\n\n"
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine}.\n\n"
            f"{args.cars} extra cars (53 in all) crossing the two gates every {CYCLE_S:.0f} s each "
            f"(~{2 * args.cars / CYCLE_S:.1f} crossings/s), 2 gate cameras at 1280x720 (frames copied on the "
            f"{'GPU: device-side copy on the update, host copy on the worker' if args.capture == 'cuda' else 'host: into recycled buffers on the main thread'}), "
            f"Kit 107 event API stand-ins, "
            f"{args.hz:.0f} updates/s.\n\n{text}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
