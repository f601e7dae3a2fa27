"""The spool on a disk that fills up before the spool's own limits are reached (found by the fault matrix,
`npm run faults -- kit-disk-full`, with the spool on a 4 MiB tmpfs): the oldest frames are dropped and
counted to make room, and neither the simulation thread (submit) nor the worker sees an exception."""

from __future__ import annotations

import builtins
import errno
import logging
import os
from pathlib import Path

from simgate.parking import spool as spool_module
from simgate.parking.outbox import OutboundItem, frame_of
from simgate.parking.spool import DiskSpool
from simgate.parking.worker import GatewayWorker
from simgate.v1 import simgate_pb2


def item(n: int, size: int) -> OutboundItem:
    e = simgate_pb2.Event(event_id=f"run-1-{n:06d}", run_id="run-1", sequence=n, event_type="parking.entry")
    e.images.add(view="entry", data=b"x" * size)
    frame = frame_of(e)
    return OutboundItem(OutboundItem.key_of(frame), n, frame)


class QuotaDisk:
    """A directory that holds at most `quota` bytes: a write past it fails with ENOSPC, as on a full
    tmpfs (the fault matrix runs the same scenario on a real one)."""

    def __init__(self, directory: Path, quota: int) -> None:
        self.directory = directory
        self.quota = quota
        self.refused = 0

    def used(self) -> int:
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    def open(self, path, mode="r", *args, **kwargs):
        handle = builtins.open(path, mode, *args, **kwargs)
        if "w" not in mode or Path(path).parent != self.directory:
            return handle
        disk = self
        real_write = handle.write

        def write(data):
            if disk.used() + len(data) > disk.quota:
                disk.refused += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            return real_write(data)

        handle.write = write
        return handle


def test_a_full_disk_drops_the_oldest_frames_counts_them_and_keeps_the_new_one(tmp_path, monkeypatch, caplog) -> None:
    disk = QuotaDisk(tmp_path, quota=10_000)
    monkeypatch.setattr(spool_module, "open", disk.open, raising=False)
    spool = DiskSpool(tmp_path, max_bytes=1 << 30, max_events=100_000)  # far above the disk
    with caplog.at_level(logging.WARNING):
        for n in range(1, 11):
            assert spool.put(item(n, size=2000))
    assert disk.refused > 0
    assert spool.dropped == 10 - len(spool) and spool.dropped > 0
    assert spool.oldest().key != "run-1-000001"  # the oldest went first
    assert "run-1-000010" in spool  # the newest was kept
    assert not list(tmp_path.glob("*.tmp"))  # no half-written frame left behind
    assert disk.used() <= disk.quota
    assert "disk full" in caplog.text


def test_a_frame_larger_than_the_free_disk_is_dropped_and_counted(tmp_path, monkeypatch) -> None:
    disk = QuotaDisk(tmp_path, quota=1000)
    monkeypatch.setattr(spool_module, "open", disk.open, raising=False)
    spool = DiskSpool(tmp_path, max_bytes=1 << 30, max_events=100_000)
    assert not spool.put(item(1, size=5000))
    assert spool.dropped == 1 and len(spool) == 0 and not list(tmp_path.glob("*.tmp"))


def test_submit_never_raises_when_the_outbox_overflows_onto_a_full_disk(tmp_path, monkeypatch) -> None:
    disk = QuotaDisk(tmp_path, quota=6000)
    monkeypatch.setattr(spool_module, "open", disk.open, raising=False)
    spool = DiskSpool(tmp_path, max_bytes=1 << 30, max_events=100_000)
    worker = GatewayWorker(lambda: None, spool, outbox_capacity=2)  # not started: every overflow spools
    for n in range(1, 21):
        e = simgate_pb2.Event(event_id=f"run-1-{n:06d}", run_id="run-1", sequence=n, event_type="parking.entry")
        e.images.add(view="entry", data=b"x" * 2000)
        worker.submit(e)
    assert len(worker.outbox) == 2
    assert spool.dropped > 0 and len(spool) + spool.dropped == 18
