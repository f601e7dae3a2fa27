"""Taking the gate camera's frame on Kit's main thread: Replicator's view is copied at once into a recycled
buffer (images.FramePool), with the GIL kept; the session takes the frame on the update after the crossing,
one camera per update, and the run's end sends every event that still waits for its picture."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from kit_standins import Kit
from parking_lot import CAMERAS, GATES, TCPS, build_parking_lot
from simgate.parking.events import WithPictures
from simgate.parking.gates import GateCrossing
from simgate.parking.images import FramePool
from simgate.parking.session import ParkingSession
from simgate.parking.settings import ParkingSettings
from simgate.parking.stage_reader import StageReader


def frame(value: int, shape=(48, 64, 4)) -> np.ndarray:
    pixels = np.full(shape, value, np.uint8)
    return pixels


# --- the stand-in behaves as Replicator --------------------------------------------------------------


def test_the_stand_in_annotator_copies_by_default_and_otherwise_hands_over_its_reused_buffer() -> None:
    kit = Kit(build_parking_lot(), {}, annotator_lag=1, skip_every=0)
    rp = kit.replicator.render_product(CAMERAS[0], (64, 48))
    copying = kit.replicator.get_annotator("rgb")
    viewing = kit.replicator.get_annotator("rgb", do_array_copy=False)
    copying.attach([rp])
    viewing.attach([rp])
    kit.update()
    assert viewing.get_data().size == 0  # nothing finished yet
    kit.update()
    copy, view = copying.get_data(), viewing.get_data()
    assert copy[0, 0, 0] == view[0, 0, 0] == 1  # rendered in update 1
    assert copying.get_data() is not copy  # a new array each call
    assert viewing.get_data(do_array_copy=False) is view  # False in the call keeps the annotator's own choice
    assert viewing.get_data(do_array_copy=True) is not view
    kit.update()
    assert view[0, 0, 0] == 2 and copy[0, 0, 0] == 1  # the next finished frame overwrote the view in place


# --- FramePool ---------------------------------------------------------------------------------------


def test_the_pool_reuses_only_buffers_that_nobody_holds() -> None:
    pool = FramePool(keep=2)
    pool.prepare((48, 64, 4), count=2)
    a = pool.copy_of(frame(1))
    b = pool.copy_of(frame(2))
    assert (a[0, 0, 0], b[0, 0, 0], pool.reused, pool.allocated) == (1, 2, 2, 0)
    c = pool.copy_of(frame(3))  # both held and the pool is at its limit: a new array, never one of theirs
    assert c is not a and c is not b and (a[0, 0, 0], b[0, 0, 0], c[0, 0, 0]) == (1, 2, 3)
    assert pool.allocated == 1
    held_a_address = a.ctypes.data
    del a  # the worker built its bytes and let go
    d = pool.copy_of(frame(4))
    assert d.ctypes.data == held_a_address and pool.reused == 3 and b[0, 0, 0] == 2
    view_of_b = b[:1]  # a view keeps its base alive: b is still held
    del b
    e = pool.copy_of(frame(5))
    assert e.ctypes.data != view_of_b.ctypes.data and view_of_b[0, 0, 0] == 2 and pool.allocated == 2


def test_when_the_worker_falls_behind_the_pool_grows_on_its_own_thread_not_on_the_simulation_thread() -> None:
    pool = FramePool(keep=8)
    pool.prepare((48, 64, 4), count=2)
    held = [pool.copy_of(frame(1)), pool.copy_of(frame(2))]  # the last free buffer taken: the pool grows
    buffers = pool._buffers[((48, 64, 4), "uint8")]
    deadline = time.monotonic() + 10
    while len(buffers) < 2 + FramePool.GROW_BY and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(buffers) == 2 + FramePool.GROW_BY
    while len(held) < 20:  # the worker holds everything: the pool grows up to keep, then new arrays
        held.append(pool.copy_of(frame(len(held) + 1)))
        deadline = time.monotonic() + 10
        while pool._growing and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(buffers) == 8 and pool.allocated == 20 - 8
    assert [int(h[0, 0, 0]) for h in held] == list(range(1, 21))  # nothing overwritten
    pool.close()


def test_once_the_backlog_is_gone_spare_buffers_are_freed_on_the_pools_thread() -> None:
    pool = FramePool(keep=64)
    pool.prepare((48, 64, 4), count=20)
    buffers = pool._buffers[((48, 64, 4), "uint8")]
    for value in range(30):
        assert pool.copy_of(frame(value))[0, 0, 0] == value
    assert len(buffers) == FramePool.SPARE + 1 and pool.trimmed == 20 - FramePool.SPARE - 1
    pool.close()


def test_a_prepared_pool_allocates_nothing_during_the_run_and_copies_strided_views_too() -> None:
    pool = FramePool()
    pool.prepare((48, 64, 4), count=2)
    for value in range(10):
        assert pool.copy_of(frame(value))[0, 0, 0] == value
    assert pool.allocated == 0 and pool.reused == 10
    strided = frame(7, (48, 128, 4))[:, ::2]  # not contiguous
    assert np.array_equal(pool.copy_of(strided), strided)


def test_the_copy_keeps_the_gil_so_no_worker_thread_gets_in_between() -> None:
    """numpy's copy releases the GIL for large arrays; a Python worker that takes it then holds Kit's main
    thread up to the switch interval (5 ms). The pool's copy must not let it in. With a long switch interval
    for the test, the spinner can only run when the copy lets go of the GIL itself (preemption of this
    process by others does not hand it over): numpy's copy does on its first or second call, the pool's never."""
    pool = FramePool()
    source = np.random.default_rng(1).integers(0, 255, (720, 1280, 4), dtype=np.uint8)
    pool.prepare(source.shape, count=4)
    ticks = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ticks[0] += 1

    interval = sys.getswitchinterval()
    spinner = threading.Thread(target=spin)
    got_in = 0
    try:
        spinner.start()
        while ticks[0] == 0:  # the spinner runs (and holds the GIL until it is asked to give it back)
            time.sleep(0.001)
        sys.setswitchinterval(1.0)
        time.sleep(0.001)  # the GIL back here; the spinner now waits a whole second before it may ask for it
        for _ in range(40):
            before = ticks[0]
            copy = pool.copy_of(source)
            got_in += ticks[0] != before
            del copy
            if got_in:
                break
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        spinner.join()
        pool.close()
    assert got_in == 0


# --- the session: the frame on the next update --------------------------------------------------------


class Frames:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self.update = 0

    def __call__(self, camera: str) -> np.ndarray:
        self.calls.append((self.update, camera))
        return frame(self.update % 256, (24, 32, 4))


def session_with(frames: Frames, sent: list) -> ParkingSession:
    settings = ParkingSettings(gate_prim_paths=GATES, camera_prim_paths=CAMERAS, image_width=32, image_height=24,
                               debounce_seconds=0.0)
    session = ParkingSession(settings, StageReader(build_parking_lot()), sent.append, frames, run_id="r-defer",
                             encode_images=False, defer_pictures=True)
    session.start()
    return session


def test_the_frame_is_taken_on_the_next_update_one_camera_per_update_in_event_order() -> None:
    sent: list = []
    frames = Frames()
    session = session_with(frames, sent)
    crossings = [
        GateCrossing(GATES[0], "entry", "/World/Cars/Car1", "in", 1.0, "position"),
        GateCrossing(GATES[1], "exit", "/World/Cars/Car2", "out", 1.0, "position"),
        GateCrossing(GATES[0], "entry", "/World/Cars/Car3", "in", 1.0, "position"),
    ]
    emitted = [session._emit(c) for c in crossings]  # all three in update 0
    assert len(sent) == 1 and frames.calls == []  # only RunStart: no frame taken in the crossing's update
    frames.update = 1
    session.on_update(1.0 + 1 / TCPS)
    # update 1: one frame, of the entry camera; the exit camera's event waits, and so does the later entry event
    assert frames.calls == [(1, CAMERAS[0])]
    assert [m.event.event_id for m in sent[1:]] == [emitted[0].event_id]
    frames.update = 2
    session.on_update(1.0 + 2 / TCPS)
    assert frames.calls == [(1, CAMERAS[0]), (2, CAMERAS[1])]
    assert [m.event.event_id for m in sent[1:]] == [e.event_id for e in emitted[:2]]
    frames.update = 3
    session.on_update(1.0 + 3 / TCPS)
    assert frames.calls[-1] == (3, CAMERAS[0])
    assert [m.event.event_id for m in sent[1:]] == [e.event_id for e in emitted]  # the order of the crossings
    assert [m.pictures[0].pixels[0, 0, 0] for m in sent[1:]] == [1, 2, 3]
    assert all(isinstance(m, WithPictures) for m in sent[1:]) and session.stats.images == 3


def test_one_frame_serves_every_event_of_that_camera_in_the_same_update() -> None:
    sent: list = []
    frames = Frames()
    session = session_with(frames, sent)
    for car in ("Car1", "Car2", "Car3"):
        session._emit(GateCrossing(GATES[0], "entry", f"/World/Cars/{car}", "in", 1.0, "position"))
    frames.update = 1
    session.on_update(1.0 + 1 / TCPS)
    assert frames.calls == [(1, CAMERAS[0])] and len(sent) == 4
    assert sent[1].pictures[0].pixels is sent[3].pictures[0].pixels


def test_the_runs_end_sends_the_waiting_events_before_run_end() -> None:
    sent: list = []
    frames = Frames()
    session = session_with(frames, sent)
    session._emit(GateCrossing(GATES[0], "entry", "/World/Cars/Car1", "in", 1.0, "position"))
    session._emit(GateCrossing(GATES[1], "exit", "/World/Cars/Car2", "out", 1.0, "position"))
    end = session.end("stopped")
    assert [type(m).__name__ for m in sent] == ["RunStart", "WithPictures", "WithPictures", "RunEnd"]
    assert sent[-1] is end and end.events_sent == 2


def test_a_missing_frame_still_sends_the_event_and_says_why() -> None:
    sent: list = []
    session = session_with(lambda camera: None, sent)  # type: ignore[arg-type]
    event = session._emit(GateCrossing(GATES[0], "entry", "/World/Cars/Car1", "in", 1.0, "position"))
    session.on_update(1.1)
    assert sent[-1] is event and event.attributes["imageError"] == "no frame rendered yet" and not event.images
