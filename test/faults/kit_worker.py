"""The Kit extension's network worker driven headless (no Kit): a recording's frames are submitted at a
steady rate, as the simulation thread would, through the real GatewayWorker, outbox and DiskSpool, over
gRPC to the real gateway. Used by test/faults/main.ts (kit-outage, kit-disk-full).

    .venv/bin/python test/faults/kit_worker.py --recording R --as-run ID --gateway 127.0.0.1:50051 \
        --spool DIR [--rate 50] [--spool-max-bytes N] [--spool-max-events N] [--drain-timeout 300]

Prints `SIMGATE_KIT_PROGRESS {json}` every half second and `SIMGATE_KIT_RESULT {json}` at the end
(the ids answered accepted or duplicate, the worker's counters, the spool's drops).
"""

from __future__ import annotations

import argparse
import json
import logging
import struct
import sys
import threading
import time

from simgate.parking.spool import DiskSpool
from simgate.parking.transports import GrpcTransport
from simgate.parking.worker import GatewayWorker
from simgate.v1 import simgate_pb2


def frames_of(path: str) -> list[simgate_pb2.ClientFrame]:
    """The recording's frames (docs/recording-format.md), the header left out."""
    data = open(path, "rb").read()
    if data[:6] != b"SIMREC":
        raise SystemExit(f"{path}: not a recording")
    at, payloads = 8, []
    while at + 12 <= len(data):
        marker, length, _crc = struct.unpack(">4sII", data[at : at + 12])
        if marker != b"SGFR":
            raise SystemExit(f"{path}: no frame marker at {at}")
        payloads.append(data[at + 12 : at + 12 + length])
        at += 12 + length
    return [simgate_pb2.ClientFrame.FromString(p) for p in payloads[1:]]


def as_run(frame: simgate_pb2.ClientFrame, run_id: str) -> simgate_pb2.Event | simgate_pb2.RunStart | simgate_pb2.RunEnd:
    kind = frame.WhichOneof("body")
    message = getattr(frame, kind)
    old = message.run_id
    message.run_id = run_id
    if kind == "event" and message.event_id.startswith(old):
        message.event_id = run_id + message.event_id[len(old) :]
    return message


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--recording", required=True)
    p.add_argument("--as-run", required=True)
    p.add_argument("--gateway", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--rate", type=float, default=50.0, help="events submitted per second")
    p.add_argument("--spool-max-bytes", type=int, default=1 << 30)
    p.add_argument("--spool-max-events", type=int, default=100_000)
    p.add_argument("--drain-timeout", type=float, default=300.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

    answered: dict[str, str] = {}
    lock = threading.Lock()

    def on_ack(key: str, answer) -> None:
        with lock:
            answered[key] = answer.WhichOneof("outcome") or "none"

    spool = DiskSpool(args.spool, max_bytes=args.spool_max_bytes, max_events=args.spool_max_events)
    worker = GatewayWorker(lambda: GrpcTransport(args.gateway), spool, on_ack=on_ack, reconnect_max_ms=2000)
    messages = [as_run(f, args.as_run) for f in frames_of(args.recording)]
    events = sum(1 for m in messages if isinstance(m, simgate_pb2.Event))
    worker.start()
    submitted = 0
    errors: list[str] = []
    last = 0.0

    def progress(final: bool = False) -> None:
        nonlocal last
        if not final and time.monotonic() - last < 0.5:
            return
        last = time.monotonic()
        snap = worker.snapshot()
        snap.update(submitted=submitted, events=events, answered=len(answered), worker_alive=worker.running)
        print("SIMGATE_KIT_PROGRESS " + json.dumps(snap), flush=True)

    start = time.monotonic()
    for i, message in enumerate(messages):
        due = start + i / args.rate
        while time.monotonic() < due:
            progress()
            time.sleep(min(0.02, max(0.0, due - time.monotonic())))
        try:
            worker.submit(message)
        except Exception as exc:  # the simulation thread must never see an exception from submit
            errors.append(f"submit {i}: {type(exc).__name__}: {exc}")
            logging.error("submit raised: %s", exc)
        if isinstance(message, simgate_pb2.Event):
            submitted += 1
        progress()
    deadline = time.monotonic() + args.drain_timeout
    while worker.pending() > 0 and worker.running and time.monotonic() < deadline:
        progress()
        time.sleep(0.2)
    progress(final=True)
    pending = worker.pending()
    stopped = worker.stop(flush_timeout_s=5)
    if not stopped and hasattr(worker, "join"):
        stopped = worker.join(30)  # the stop only asks; join waits for the thread's end
    with lock:
        accepted = sorted(k for k, v in answered.items() if v in ("accepted", "duplicate") and not k.startswith("run-"))
        rejected = sorted(k for k, v in answered.items() if v == "rejected")
    result = {
        "events": events,
        "submitted": submitted,
        "acceptedIds": accepted,
        "rejected": rejected,
        "pendingAtEnd": pending,
        "workerStopped": stopped,
        "stats": worker.snapshot(),
        # Every frame the extension dropped and counted: spool (limits, full disk) and outbox (when its
        # policy drops instead of spilling).
        "spoolDropped": spool.dropped + int(worker.snapshot().get("outbox_dropped", 0)),
        "errors": errors[:20],
        "errorCount": len(errors),
    }
    print("SIMGATE_KIT_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
