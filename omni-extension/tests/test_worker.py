"""The network worker against real gRPC / WebSocket servers on loopback (an in-memory fake gateway):
ordering, acks of every kind, outage → spool → reconnect → resend with the same event ids, shutdown."""

from __future__ import annotations

import random
import threading
import time

import pytest

from fake_gateway import FakeGrpcGateway, FakeWsGateway, Store
from simgate.parking.spool import DiskSpool
from simgate.parking.transports import GrpcTransport, WebSocketTransport
from simgate.parking.worker import Backoff, GatewayWorker
from simgate.v1 import simgate_pb2


def wait_for(condition, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def event(run: str, n: int) -> simgate_pb2.Event:
    e = simgate_pb2.Event(event_id=f"{run}-{n:06d}", run_id=run, sequence=n, event_type="parking.entry", car_id=f"CAR{n}")
    e.images.add(view="entry", encoding=simgate_pb2.IMAGE_ENCODING_PNG, width=1, height=1, data=b"png" * 10)
    return e


def make_worker(tmp_path, transport_factory, **kw) -> GatewayWorker:
    spool = DiskSpool(tmp_path / "spool", max_bytes=1 << 24, max_events=kw.pop("spool_max_events", 10_000))
    return GatewayWorker(transport_factory, spool, reconnect_initial_ms=20, reconnect_max_ms=200,
                         rng=random.Random(7), **kw)


@pytest.fixture()
def grpc_gateway():
    gateway = FakeGrpcGateway().start()
    yield gateway
    gateway.close()


def test_backoff_grows_exponentially_with_jitter_and_resets() -> None:
    backoff = Backoff(100, 1000, random.Random(1))
    delays = [backoff.next_ms() for _ in range(6)]
    for delay, step in zip(delays, [100, 200, 400, 800, 1000, 1000]):
        assert step / 2 <= delay <= step
    assert len(set(delays)) == 6  # jittered
    backoff.reset()
    assert backoff.next_ms() <= 100


def test_events_and_run_frames_are_delivered_and_acknowledged(tmp_path, grpc_gateway) -> None:
    acks: list[str] = []
    worker = make_worker(tmp_path, lambda: GrpcTransport(grpc_gateway.address, token="t0k"),
                         on_ack=lambda key, ack: acks.append(key))
    worker.start()
    worker.submit(simgate_pb2.RunStart(run_id="r1"))
    for n in range(1, 51):
        worker.submit(event("r1", n))
    worker.submit(simgate_pb2.RunEnd(run_id="r1", events_sent=50))
    wait_for(lambda: worker.pending() == 0 and len(acks) == 52, what="all acks")
    assert worker.stop(2.0)
    store = grpc_gateway.store
    assert len(store.events) == 50 and store.runs == ["start:r1", "end:r1"]
    assert acks[0] == "run-start:r1" and acks[-1] == "run-end:r1"  # the run frames are barriers
    assert store.tokens and all(t == "Bearer t0k" for t in store.tokens)
    assert worker.stats.accepted == 50 and worker.stats.resent == 0 and not worker.running


def test_rejected_is_logged_and_dropped_retry_later_is_resent(tmp_path, grpc_gateway, caplog) -> None:
    store = grpc_gateway.store
    store.reject.add("r2-000002")
    store.retry_once.add("r2-000003")
    worker = make_worker(tmp_path, lambda: GrpcTransport(grpc_gateway.address))
    worker.start()
    for n in range(1, 5):
        worker.submit(event("r2", n))
    wait_for(lambda: worker.pending() == 0 and worker.stats.accepted == 3, what="acks")
    worker.stop(1.0)
    assert set(store.events) == {"r2-000001", "r2-000003", "r2-000004"}
    assert store.receipts.count("r2-000003") == 2  # same id, sent again after retry-later
    # The resend says so (Event.attempt), so the gateway looks for stored images before receiving them.
    assert [a for e, a in store.attempts if e == "r2-000003"] == [0, 1]
    assert [a for e, a in store.attempts if e == "r2-000001"] == [0]
    assert (worker.stats.rejected, worker.stats.retry_later, worker.stats.resent) == (1, 1, 1)
    assert "GW_ERR_TEST" in caplog.text


def test_unreachable_gateway_spools_then_everything_is_sent_when_it_comes(tmp_path) -> None:
    gateway = FakeGrpcGateway()  # not started yet
    try:
        worker = make_worker(tmp_path, lambda: GrpcTransport(gateway.address, connect_timeout_s=0.3))
        worker.start()
        worker.submit(simgate_pb2.RunStart(run_id="r3"))
        for n in range(1, 21):
            assert worker.submit(event("r3", n)) is True  # never blocks, even with no gateway
        wait_for(lambda: len(worker.spool) == 21, what="everything spooled")
        assert worker.stats.connect_failures >= 1
        gateway.start()
        wait_for(lambda: worker.pending() == 0, what="spool drained")
        worker.stop(1.0)
        assert len(gateway.store.events) == 20 and gateway.store.runs == ["start:r3"]
        assert [int(i.split("-")[-1]) for i in gateway.store.receipts] == list(range(1, 21))  # in order
        assert not list((tmp_path / "spool").glob("*.frame"))
    finally:
        gateway.close()


def test_gateway_killed_mid_run_unacked_events_are_resent_with_the_same_ids(tmp_path) -> None:
    gateway = FakeGrpcGateway().start()
    try:
        worker = make_worker(tmp_path, lambda: GrpcTransport(gateway.address, connect_timeout_s=0.3), max_in_flight=8)
        worker.start()
        for n in range(1, 11):
            worker.submit(event("r4", n))
        wait_for(lambda: len(gateway.store.events) == 10, what="first batch")
        gateway.store.hold = True  # received but not acknowledged when the gateway dies
        for n in range(11, 16):
            worker.submit(event("r4", n))
        wait_for(lambda: len(gateway.store.receipts) == 15, what="second batch on the wire")
        gateway.kill()
        for n in range(16, 21):
            worker.submit(event("r4", n))  # while it is down
        wait_for(lambda: len(worker.spool) == 10, what="unacked + new spooled")
        gateway.store.hold = False
        gateway.start()
        wait_for(lambda: worker.pending() == 0, what="resent after restart")
        worker.stop(1.0)
        store = gateway.store
        assert sorted(store.events) == [f"r4-{n:06d}" for n in range(1, 21)]
        assert all(store.receipts.count(f"r4-{n:06d}") == 2 for n in range(11, 16))  # same ids again
        assert worker.stats.resent >= 5 and worker.stats.disconnects >= 1
    finally:
        gateway.close()


def test_a_spool_left_by_an_earlier_session_is_sent_first(tmp_path, grpc_gateway) -> None:
    first = make_worker(tmp_path, lambda: GrpcTransport("127.0.0.1:9", connect_timeout_s=0.2))
    first.start()
    for n in range(1, 4):
        first.submit(event("old", n))
    first.stop(0.5)
    assert len(first.spool) == 3
    second = make_worker(tmp_path, lambda: GrpcTransport(grpc_gateway.address))
    second.start()
    second.submit(event("new", 1))
    wait_for(lambda: second.pending() == 0, what="drained")
    second.stop(1.0)
    assert grpc_gateway.store.receipts == ["old-000001", "old-000002", "old-000003", "new-000001"]


def test_stop_while_unreachable_spools_and_returns_promptly(tmp_path) -> None:
    worker = make_worker(tmp_path, lambda: GrpcTransport("127.0.0.1:9", connect_timeout_s=0.2))
    worker.start()
    worker.submit(event("r5", 1))
    started = time.monotonic()
    assert worker.stop(0.5)
    assert time.monotonic() - started < 5
    assert len(worker.spool) == 1 and not worker.running
    assert not any(t.name == "simgate-gateway-worker" and t.is_alive() for t in threading.enumerate())


def test_a_full_outbox_is_spilled_by_the_worker_on_its_own_thread(tmp_path) -> None:
    worker = make_worker(tmp_path, lambda: GrpcTransport("127.0.0.1:9", connect_timeout_s=0.2), outbox_capacity=8)
    writers: list[str] = []
    real_put = worker.spool.put
    worker.spool.put = lambda item: writers.append(threading.current_thread().name) or real_put(item)
    worker.start()
    results = [worker.submit(event("r6", n)) for n in range(1, 13)]  # a burst past the capacity
    assert results.count(True) >= 8 and worker.outbox.dropped == 0  # spill: nothing dropped below 2 x capacity
    wait_for(lambda: len(worker.spool) == 12, what="everything spilled")
    assert set(writers) == {"simgate-gateway-worker"} and worker.snapshot()["outbox_dropped"] == 0
    assert worker.stop(0.2)


class HungTransport:
    """Connects, then the first write never completes (a hung gateway whose HTTP/2 window is exhausted)."""

    name = "hung"

    async def connect(self) -> None:
        pass

    async def send_event(self, event) -> None:
        import asyncio

        await asyncio.Event().wait()

    async def next_ack(self):
        import asyncio

        await asyncio.Event().wait()

    async def run_call(self, frame):
        import asyncio

        await asyncio.Event().wait()

    async def close(self) -> None:
        pass


def test_a_write_stuck_on_a_hung_gateway_does_not_keep_the_full_outbox_from_the_spool(tmp_path) -> None:
    worker = make_worker(tmp_path, HungTransport, outbox_capacity=32)
    worker.start()
    for n in range(1, 41):  # past the capacity, below twice the capacity (where spill drops)
        worker.submit(event("r11", n))
    wait_for(lambda: len(worker.spool) >= 8, timeout=60, what="the outbox spilled while the write hangs")
    assert worker.outbox.dropped == 0
    worker.stop(0.1)
    assert worker.join(10)


def test_the_drop_oldest_policy_drops_and_counts_when_the_worker_cannot_keep_up(tmp_path) -> None:
    worker = make_worker(tmp_path, lambda: GrpcTransport("127.0.0.1:9"), outbox_capacity=2, outbox_policy="drop-oldest")
    # not started: a worker that is stuck; submit never waits for it
    started = time.perf_counter()
    results = [worker.submit(event("r6", n)) for n in range(1, 6)]
    assert time.perf_counter() - started < 0.5
    assert results == [True, True, False, False, False]
    snapshot = worker.snapshot()
    assert snapshot["outbox"] == 2 and snapshot["outbox_dropped"] == 3 and snapshot["spool_frames"] == 0
    assert list(worker.outbox.dropped_keys) == ["r6-000001", "r6-000002", "r6-000003"]


def test_stop_waits_at_most_one_second_and_what_is_left_reaches_the_spool(tmp_path) -> None:
    busy = threading.Event()

    def slow_prepare(frame):  # a slow image encoding on the worker thread (it holds the thread, not the GIL)
        busy.set()
        time.sleep(2.5)
        return frame

    worker = make_worker(tmp_path, lambda: GrpcTransport("127.0.0.1:9", connect_timeout_s=0.2), prepare=slow_prepare)
    worker.start()
    for n in range(1, 4):
        worker.submit(event("r9", n))
    assert busy.wait(10)
    started = time.monotonic()
    assert worker.stop(flush_timeout_s=5.0) is False  # asked for 5 s of flushing: the join is capped anyway
    assert time.monotonic() - started < 1.5
    assert worker.join(15) and not worker.active
    reopened = DiskSpool(tmp_path / "spool", 1 << 24, 100)
    reopened.open(lock_wait_s=1)  # released by the worker when it ended
    assert len(reopened) == 3


def test_a_worker_whose_spool_is_taken_refuses_and_counts_what_it_drops(tmp_path, caplog) -> None:
    holder = DiskSpool(tmp_path / "spool", 1 << 24, 100)
    holder.open()
    spool = DiskSpool(tmp_path / "spool", 1 << 24, 100, lock_wait_s=0.2)
    worker = GatewayWorker(lambda: GrpcTransport("127.0.0.1:9"), spool)
    worker.start()
    assert worker.join(5)
    assert worker.refused and "in use by another instance" in worker.refused and "in use" in caplog.text
    assert not worker.submit(event("r10", 1)) and worker.snapshot()["outbox_dropped"] == 1
    holder.close()


def test_websocket_transport_delivers_and_resends(tmp_path) -> None:
    store = Store()
    gateway = FakeWsGateway(store).start()
    try:
        worker = make_worker(tmp_path, lambda: WebSocketTransport(gateway.url, token="w", connect_timeout_s=0.5))
        worker.start()
        worker.submit(simgate_pb2.RunStart(run_id="w1"))
        for n in range(1, 6):
            worker.submit(event("w1", n))
        wait_for(lambda: worker.pending() == 0, what="ws acks")
        gateway.kill()
        store.receipts.clear()
        for n in range(6, 9):
            worker.submit(event("w1", n))
        wait_for(lambda: len(worker.spool) == 3, what="spooled while down")
        gateway2 = FakeWsGateway(store)
        gateway2.port, gateway2.url = gateway.port, gateway.url
        gateway2.start()
        try:
            worker.submit(simgate_pb2.RunEnd(run_id="w1", events_sent=8))
            wait_for(lambda: worker.pending() == 0, what="ws resend")
        finally:
            worker.stop(1.0)
            gateway2.close()
        assert len(store.events) == 8 and store.runs == ["start:w1", "end:w1"]
        assert store.receipts == ["w1-000006", "w1-000007", "w1-000008"]
        assert store.tokens[0] == "Bearer w"
    finally:
        gateway.close()


def test_prepare_runs_on_the_worker_thread_before_sending(tmp_path, grpc_gateway) -> None:
    threads: list[str] = []

    def prepare(frame):
        threads.append(threading.current_thread().name)
        out = simgate_pb2.ClientFrame()
        out.CopyFrom(frame)
        out.event.attributes["prepared"] = "yes"
        return out

    worker = make_worker(tmp_path, lambda: GrpcTransport(grpc_gateway.address), prepare=prepare)
    worker.start()
    for n in range(1, 4):
        worker.submit(event("p1", n))
    wait_for(lambda: worker.pending() == 0, what="acks")
    worker.stop(1.0)
    assert all(e.attributes["prepared"] == "yes" for e in grpc_gateway.store.events.values())
    assert threads == ["simgate-gateway-worker"] * 3


def test_run_end_waits_for_events_that_must_be_retried(tmp_path, grpc_gateway) -> None:
    store = grpc_gateway.store
    store.retry_once.add("r7-000002")
    order: list[str] = []
    worker = make_worker(tmp_path, lambda: GrpcTransport(grpc_gateway.address), on_ack=lambda key, ack: order.append(key))
    worker.start()
    worker.submit(simgate_pb2.RunStart(run_id="r7"))
    for n in range(1, 4):
        worker.submit(event("r7", n))
    worker.submit(simgate_pb2.RunEnd(run_id="r7", events_sent=3))
    wait_for(lambda: worker.pending() == 0 and len(order) == 5, what="all answers")
    worker.stop(1.0)
    assert order[-1] == "run-end:r7" and "r7-000002" in order[:-1]
    assert store.runs == ["start:r7", "end:r7"]


def test_the_worker_thread_yields_the_cpu_to_kits_main_thread(tmp_path, grpc_gateway) -> None:
    """Encoding and I/O are background work: on Linux the worker lowers its own thread's priority (nice), so on
    a busy machine it is the worker, not Kit's main thread, that waits for a core."""
    import os
    import sys

    worker = make_worker(tmp_path, lambda: GrpcTransport(grpc_gateway.address, token="t0k"))
    worker.start()
    try:
        wait_for(lambda: worker.active, what="worker active")
        main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        if sys.platform.startswith("linux"):
            assert worker.thread_nice == min(19, main_nice + 10)
            assert os.getpriority(os.PRIO_PROCESS, worker.thread_native_id) == worker.thread_nice
            assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice  # only that thread
    finally:
        worker.stop(1.0, 1.0)
