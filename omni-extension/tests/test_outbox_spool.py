"""The bounded outbox and the on-disk spool."""

from __future__ import annotations

import logging

import pytest

from simgate.parking.outbox import OutboundItem, Outbox, frame_of
from simgate.parking.spool import DiskSpool
from simgate.v1 import simgate_pb2


def event(n: int, size: int = 0) -> simgate_pb2.Event:
    e = simgate_pb2.Event(event_id=f"run-1-{n:06d}", run_id="run-1", sequence=n, event_type="parking.entry")
    if size:
        e.images.add(view="entry", data=b"x" * size)
    return e


def item(n: int, size: int = 0) -> OutboundItem:
    frame = frame_of(event(n, size))
    return OutboundItem(OutboundItem.key_of(frame), n, frame)


def test_outbox_drop_oldest_policy_counts_and_never_blocks() -> None:
    woken: list[int] = []
    box = Outbox(2, "drop-oldest", first_order=10)
    box.set_wake(lambda: woken.append(1))
    assert box.put(event(1)) and box.put(event(2))
    assert not box.put(event(3))  # full: the oldest goes, counted
    assert len(box) == 2 and box.overflowed == 1 and box.dropped == 1 and list(box.dropped_keys) == ["run-1-000001"]
    assert len(woken) == 3
    assert box.pop().order == 11 and [i.order for i in box.drain()] == [12] and box.pop() is None


def test_outbox_spill_policy_queues_past_capacity_asks_for_a_spill_and_drops_only_at_twice_the_capacity() -> None:
    box = Outbox(2, "spill", first_order=1)
    for n in range(1, 5):
        box.put(event(n))
    assert len(box) == 4 and box.spill_wanted and box.overflowed == 2 and box.dropped == 0
    box.put(event(5))  # the worker did not spill: at 2 x capacity the oldest is dropped and counted
    assert len(box) == 4 and box.dropped == 1 and box.pop().key == "run-1-000002"


def test_orders_come_from_the_wall_clock_so_a_new_session_sorts_after_an_old_spool(tmp_path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=100)
    spool.put(item(999))  # an earlier session's frame
    box = Outbox(4)
    box.put(event(1))
    assert box.pop().order > 999


def test_a_put_does_no_disk_io_and_takes_no_lock(monkeypatch) -> None:
    import builtins
    import os
    import threading

    def forbidden(*_a, **_k):
        raise AssertionError("disk I/O or a lock on the simulation thread")

    box = Outbox(1, "spill")
    monkeypatch.setattr(builtins, "open", forbidden)
    monkeypatch.setattr(os, "fsync", forbidden)
    monkeypatch.setattr(os, "replace", forbidden)
    monkeypatch.setattr(threading, "Lock", forbidden)
    monkeypatch.setattr(threading, "RLock", forbidden)
    for n in range(5):  # over capacity too
        box.put(event(n))
    assert len(box) == 2 and box.dropped == 3


def test_frames_are_keyed_by_event_id_or_run() -> None:
    assert OutboundItem.key_of(frame_of(simgate_pb2.RunStart(run_id="r"))) == "run-start:r"
    assert OutboundItem.key_of(frame_of(simgate_pb2.RunEnd(run_id="r"))) == "run-end:r"
    with pytest.raises(ValueError):
        OutboundItem.key_of(simgate_pb2.ClientFrame())
    with pytest.raises(TypeError):
        frame_of(simgate_pb2.Ack())  # type: ignore[arg-type]


def test_spool_survives_a_restart_in_order(tmp_path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=100)
    for n in (3, 1, 2):
        assert spool.put(item(n))
    assert spool.put(item(2))  # idempotent by key
    assert len(spool) == 3 and spool.next_order() == 4
    spool.close()
    reopened = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=100)
    reopened.open()
    assert len(reopened) == 3
    first = reopened.oldest()
    assert first.key == "run-1-000001" and first.frame.event.sequence == 1
    assert reopened.oldest(exclude={"run-1-000001"}).key == "run-1-000002"
    assert reopened.oldest_order(exclude={"run-1-000001", "run-1-000002"}) == 3
    assert reopened.remove("run-1-000001") and not reopened.remove("run-1-000001")
    assert len(list(tmp_path.glob("*.frame"))) == 2


def test_a_full_spool_drops_the_oldest_counts_and_logs(tmp_path, caplog) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=3)
    with caplog.at_level(logging.WARNING):
        for n in range(1, 6):
            spool.put(item(n))
    assert len(spool) == 3 and spool.dropped == 2
    assert spool.oldest().key == "run-1-000003"
    assert "dropped the oldest frame run-1-000001" in caplog.text


def test_a_flood_of_drops_logs_a_few_lines_with_the_count_not_one_per_frame(tmp_path, caplog) -> None:
    # In Kit each log line reaches the console: a gateway down for minutes would print one per frame.
    clock = [1000.0]
    spool = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=2, clock=lambda: clock[0])
    with caplog.at_level(logging.WARNING):
        for n in range(1, 203):
            spool.put(item(n))
            clock[0] += 0.1  # 200 drops over 20 s
    assert spool.dropped == 200
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert 2 <= len(lines) <= 4, lines  # the first drop at once, then at most one line per 10 s
    assert "dropped the oldest frame run-1-000001" in lines[0]
    assert "(1 dropped so far)" in lines[0]
    assert any("dropped so far" in line and "more since" in line for line in lines[1:]), lines
    spool.close()  # closing says the total once more, so the last drops are never silent
    assert "200 dropped so far" in caplog.records[-1].getMessage()


def test_the_byte_limit_counts_too(tmp_path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=5000, max_events=100)
    for n in range(1, 4):
        spool.put(item(n, size=2000))
    assert len(spool) == 2 and spool.dropped == 1 and spool.size_bytes <= 5000
    assert not spool.put(item(9, size=6000))  # larger than the whole spool: it cannot be kept either
    assert spool.dropped == 4 and len(spool) == 0


def test_an_unreadable_file_is_moved_aside_not_deleted(tmp_path, caplog) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=100)
    spool.put(item(1))
    spool.close()
    (tmp_path / "00000000000000000000-bad.frame").write_bytes(b"\xff\xff\xff")
    (tmp_path / "00000000000000000007-x.tmp").write_bytes(b"half")
    with caplog.at_level(logging.ERROR):
        reopened = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=100)
        reopened.open()
        assert len(reopened) == 2 and reopened.corrupt == 0  # indexed by name: nothing parsed yet
        assert reopened.oldest().key == "run-1-000001"  # the bad one (order 0) was read, moved aside
    assert len(reopened) == 1 and reopened.corrupt == 1
    assert (tmp_path / "00000000000000000000-bad.corrupt").exists()
    assert not list(tmp_path.glob("*.tmp"))
    assert "unreadable frame" in caplog.text


def test_the_spool_is_indexed_lazily_from_names_without_parsing(tmp_path, monkeypatch) -> None:
    spool = DiskSpool(tmp_path / "spool", max_bytes=1 << 24, max_events=1000)
    assert not (tmp_path / "spool").exists()  # building it touches nothing (it is built on Kit's main thread)
    for n in range(1, 51):
        spool.put(item(n, size=1000))
    spool.close()
    parsed = []
    real = simgate_pb2.ClientFrame.FromString
    monkeypatch.setattr(simgate_pb2.ClientFrame, "FromString", lambda data: parsed.append(1) or real(data))
    reopened = DiskSpool(tmp_path / "spool", max_bytes=1 << 24, max_events=1000)
    reopened.open()
    assert len(reopened) == 50 and reopened.size_bytes > 50_000 and parsed == []
    assert "run-1-000007" in reopened and reopened.oldest_order() == 1 and parsed == []
    assert reopened.oldest().key == "run-1-000001" and len(parsed) == 1  # read when it is about to be resent


def test_a_second_instance_waits_for_the_spool_then_refuses_never_shares_it(tmp_path) -> None:
    import threading

    from simgate.parking.spool import SpoolLocked

    first = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=100)
    first.open()
    second = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=100)
    with pytest.raises(SpoolLocked, match="in use by another instance"):
        second.open(lock_wait_s=0.2)
    threading.Timer(0.3, first.close).start()  # the first one goes away: the second gets it while waiting
    second.open(lock_wait_s=10)
    assert second.is_open


def test_another_process_holding_the_spool_is_refused(tmp_path) -> None:
    import subprocess
    import sys

    from simgate.parking.spool import SpoolLocked

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from simgate.parking.spool import DiskSpool; "
        f"s = DiskSpool({str(tmp_path)!r}, 1 << 20, 100); s.open(); print('locked', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SpoolLocked, match=f"pid {holder.pid}"):
            DiskSpool(tmp_path, 1 << 20, 100).open(lock_wait_s=0.2)
    finally:
        holder.kill()
        holder.wait()
    DiskSpool(tmp_path, 1 << 20, 100).open(lock_wait_s=5)  # the OS released it with the process


def test_a_full_disk_drops_the_oldest_frames_and_counts_them(tmp_path, monkeypatch, caplog) -> None:
    import errno

    spool = DiskSpool(tmp_path, max_bytes=1 << 24, max_events=1000)
    capacity = 5000  # a disk with room for two of these frames
    real_write = DiskSpool._write_atomically

    def write(path, data):
        if spool.size_bytes + len(data) > capacity:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(spool, "_write_atomically", write)
    with caplog.at_level(logging.WARNING):
        for n in range(1, 6):
            assert spool.put(item(n, size=2000))
    assert len(spool) == 2 and spool.dropped == 3 and spool.disk_full_drops == 3
    assert spool.oldest().key == "run-1-000004"
    assert "disk full" in caplog.text
    assert not spool.put(item(9, size=6000))  # larger than the whole disk: dropped itself, counted
    assert len(spool) == 0 and spool.dropped == 6
