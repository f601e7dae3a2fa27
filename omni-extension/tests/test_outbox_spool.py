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


def test_outbox_is_bounded_and_overflow_goes_elsewhere_without_blocking() -> None:
    overflowed: list[OutboundItem] = []
    woken: list[int] = []
    box = Outbox(2, overflowed.append, first_order=10)
    box.set_wake(lambda: woken.append(1))
    assert box.put(event(1)) and box.put(event(2))
    assert not box.put(event(3))
    assert [i.key for i in overflowed] == ["run-1-000003"] and overflowed[0].order == 12
    assert len(box) == 2 and box.overflowed == 1 and len(woken) == 3
    assert box.peek().order == 10 and box.pop().order == 10
    assert [i.order for i in box.drain()] == [11] and box.pop() is None


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
    reopened = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=100)
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
    (tmp_path / "00000000000000000000-bad.frame").write_bytes(b"\xff\xff\xff")
    (tmp_path / "00000000000000000007-x.tmp").write_bytes(b"half")
    with caplog.at_level(logging.ERROR):
        reopened = DiskSpool(tmp_path, max_bytes=1 << 20, max_events=100)
    assert len(reopened) == 1 and reopened.corrupt == 1
    assert (tmp_path / "00000000000000000000-bad.corrupt").exists()
    assert not list(tmp_path.glob("*.tmp"))
    assert "unreadable frame" in caplog.text
