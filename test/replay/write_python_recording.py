"""Writes a recording with the Python writer (simgate.recording), for the TypeScript replayer to send.

    python write_python_recording.py OUT RUN_ID EVENTS

EVENTS valid parking events with small real PNG images (encoded here with zlib, no imaging library),
then one event of an unmapped type that the gateway must reject (GW_ERR_UNKNOWN_EVENT_TYPE), then the
run end. Appended in two sessions (create, then open_for_append) as a live run would be.
"""
from __future__ import annotations

import struct
import sys
import zlib

from simgate.recording import RecordingWriter
from simgate.v1 import simgate_pb2


def png(width: int, height: int, seed: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(
        b"\x00" + bytes(((x * 7 + y * 13 + seed * 31) % 256) for x in range(width) for _ in range(3)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def event(run_id: str, seq: int, event_type: str) -> simgate_pb2.ClientFrame:
    frame = simgate_pb2.ClientFrame()
    ev = frame.event
    ev.event_id = f"{run_id}-{seq:06d}"
    ev.run_id = run_id
    ev.sequence = seq
    ev.event_type = event_type
    ev.sim_time_seconds = seq * 2.5
    ev.capture_time_unix_ms = 1_767_254_400_000 + seq * 2500
    ev.car_id = f"PY{seq:04d}"
    ev.text = f"written by python, event {seq}"
    ev.coordinates.slot_id = f"A-{seq:02d}"
    ev.coordinates.x = 3.0 + seq
    ev.coordinates.z = 5.5
    ev.coordinates.yaw_deg = 90.0
    gate = "entry" if event_type == "parking.entry" else "exit"
    ev.images.add(
        view=gate,
        camera_prim_path=f"/World/Gates/{gate.title()}/Camera",
        encoding=simgate_pb2.IMAGE_ENCODING_PNG,
        width=16,
        height=8,
        data=png(16, 8, seq),
    )
    ev.attributes["writer"] = "python"
    return frame


def main() -> None:
    out, run_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    header = simgate_pb2.RecordingHeader(created_unix_ms=1_767_254_400_000, writer="test-python-writer/1")
    header.run.run_id = run_id
    header.run.started_unix_ms = 1_767_254_400_000
    header.run.lineage.source = "test"
    start = simgate_pb2.ClientFrame()
    start.run_start.CopyFrom(header.run)
    half = count // 2
    with RecordingWriter.create(out, header) as writer:
        writer.append(start)
        for seq in range(1, half + 1):
            writer.append(event(run_id, seq, "parking.entry" if seq % 2 else "parking.exit"))
    writer, _ = RecordingWriter.open_for_append(out)
    with writer:
        for seq in range(half + 1, count + 1):
            writer.append(event(run_id, seq, "parking.entry" if seq % 2 else "parking.exit"))
        writer.append(event(run_id, count + 1, "parking.teleport"))
        end = simgate_pb2.ClientFrame()
        end.run_end.run_id = run_id
        end.run_end.events_sent = count + 1
        end.run_end.reason = "completed"
        writer.append(end)


if __name__ == "__main__":
    main()
