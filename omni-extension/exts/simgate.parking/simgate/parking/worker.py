"""The network worker: a thread with its own asyncio loop that does all I/O with the gateway.

The simulation thread only calls ``submit`` (a non-blocking put into the bounded outbox). The worker
sends in order (outbox and spool merged by order number), keeps at most ``max_in_flight`` events
unacknowledged on the connection, and:
- on ``accepted`` / ``duplicate`` forgets the event (and removes it from the spool);
- on ``rejected`` logs the stable code and forgets it (the gateway keeps it in its dead-letter topic);
- on ``retry_later`` pauses and resends the same event after the delay the gateway asked for;
- when the connection fails, writes everything unacknowledged and everything still queued to the
  on-disk spool, reconnects with exponential back-off and jitter, and resends from the spool with the
  same event ids (the gateway answers ``duplicate`` for those it had already stored).
Run start and run end are barriers: sent when nothing is in flight, so a run's end follows its events.

Nothing the worker does can hold up the simulation thread: the outbox is lock-free, the spool is opened,
locked and indexed here (``SpoolLocked``: the worker refuses to run and the outbox drops and counts what
it is given), and ``stop`` waits at most one second; what is not delivered by then goes to the spool, on
this thread, and is sent at the next start. Drops are counted in ``snapshot()``: ``outbox_dropped`` (the
full-outbox policy) and ``spool_dropped`` (spool over its limits or a full disk).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional


from .wire import simgate_pb2
from .outbox import SPILL, Outbox, OutboundItem
from .spool import DiskSpool, SpoolLocked
from .transports import ConnectionLost, Transport

# The longest on_shutdown waits for the worker on Kit's main thread.
MAX_JOIN_S = 1.0
# How often the worker looks whether the outbox is full (and must go to the spool).
SPILL_CHECK_S = 0.02

# The nice value of the worker's (and the recorder's) thread on Linux: background work that must leave the
# CPU to Kit's main thread when cores are scarce.
BACKGROUND_NICE = 10

log = logging.getLogger(__name__)


def lower_this_threads_priority(nice: int = BACKGROUND_NICE) -> Optional[int]:
    """Raises the calling thread's nice value by ``nice`` (Linux schedules threads one by one: the rest of the
    process keeps its priority). Returns the thread's new nice value, or None where this is not possible."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return None
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError:
        return None


class Backoff:
    """Exponential back-off with equal jitter: half the step fixed, half random."""

    def __init__(self, initial_ms: int, max_ms: int, rng: Optional[random.Random] = None) -> None:
        self.initial_ms = initial_ms
        self.max_ms = max_ms
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_ms(self) -> float:
        step = min(self.max_ms, self.initial_ms * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return step / 2 + self._rng.uniform(0, step / 2)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class WorkerStats:
    sent: int = 0
    resent: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    retry_later: int = 0
    run_acks: int = 0
    unknown_acks: int = 0
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    spilled: int = 0
    spool_writes_failed: int = 0


@dataclass
class _Pending:
    item: OutboundItem
    from_spool: bool


AckListener = Callable[[str, "simgate_pb2.Ack | simgate_pb2.RunAck"], None]


class GatewayWorker:
    def __init__(
        self,
        transport_factory: Callable[[], Transport],
        spool: DiskSpool,
        outbox_capacity: int = 256,
        max_in_flight: int = 32,
        outbox_policy: str = SPILL,
        reconnect_initial_ms: int = 200,
        reconnect_max_ms: int = 10_000,
        on_ack: Optional[AckListener] = None,
        rng: Optional[random.Random] = None,
        prepare: Optional[Callable[[simgate_pb2.ClientFrame], simgate_pb2.ClientFrame]] = None,
    ) -> None:
        self._factory = transport_factory
        self.spool = spool
        self.outbox = Outbox(outbox_capacity, outbox_policy)
        self.max_in_flight = max_in_flight
        self._backoff = Backoff(reconnect_initial_ms, reconnect_max_ms, rng)
        self._on_ack = on_ack
        # Runs on the worker thread before an event goes on the wire (e.g. image encoding); idempotent.
        self._prepare = prepare
        self.stats = WorkerStats()
        self._inflight: dict[str, _Pending] = {}
        self._retry: list[tuple[float, _Pending]] = []
        self._head: Optional[OutboundItem] = None  # taken from the outbox, not yet sent (worker thread only)
        self._paused_until = 0.0
        # Sends so far of each unfinished frame: a resend carries the count in Event.attempt.
        self._sends: dict[str, int] = {}
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake: Optional[asyncio.Event] = None
        self._stop_requested = False
        self._stop_event = threading.Event()
        self._stop_deadline = 0.0
        self.connected = False
        # True while this worker holds its spool (locked) and works; None/str: why it refused.
        self.active = False
        self.refused: Optional[str] = None
        self.thread_native_id: Optional[int] = None
        self.thread_nice: Optional[int] = None  # after lower_this_threads_priority (None: not lowered)

    # --- the simulation thread's side -------------------------------------------------------

    def submit(self, message: simgate_pb2.Event | simgate_pb2.RunStart | simgate_pb2.RunEnd) -> bool:
        """Never blocks on the network. False when the outbox was full and the spool took it."""
        return self.outbox.put(message)

    def start(self) -> None:
        """Starts the thread and returns at once (the spool is opened on the thread)."""
        if self._thread is not None:
            raise RuntimeError("worker already started")
        self._thread = threading.Thread(target=self._thread_main, name="simgate-gateway-worker", daemon=True)
        self._thread.start()

    def stop(self, flush_timeout_s: float = MAX_JOIN_S, join_timeout_s: float = MAX_JOIN_S) -> bool:
        """Deliver what can be delivered within flush_timeout_s, spool the rest, end the thread. Waits at most
        join_timeout_s (capped at 1 s): False when the thread is still finishing (writing the spool); it then
        ends on its own and releases the spool, which the next instance waits for."""
        thread = self._thread
        if thread is None:
            return True
        self._stop_deadline = time.monotonic() + max(0.0, flush_timeout_s)
        self._stop_requested = True
        self._stop_event.set()
        self._poke()
        thread.join(max(0.0, min(join_timeout_s, MAX_JOIN_S)))
        if thread.is_alive():
            log.warning("simgate worker still writing its spool after %.1f s; it finishes on its own", join_timeout_s)
            return False
        self._thread = None
        return True

    def join(self, timeout_s: float) -> bool:
        """For tests and headless use: wait (off Kit's main thread) until the thread has ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pending(self) -> int:
        """Frames not yet acknowledged: queued, in flight, waiting to retry, or spooled."""
        spooled = len(self.spool)
        in_memory = [p for p in list(self._inflight.values()) + [p for _, p in list(self._retry)] if not p.from_spool]
        return len(self.outbox) + len(in_memory) + spooled + (1 if self._head is not None else 0)

    def snapshot(self) -> dict[str, int]:
        data = asdict(self.stats)
        data.update(
            outbox=len(self.outbox),
            outbox_overflowed=self.outbox.overflowed,
            outbox_dropped=self.outbox.dropped,
            in_flight=len(self._inflight),
            spool_frames=len(self.spool),
            spool_bytes=self.spool.size_bytes,
            spool_dropped=self.spool.dropped,
            spool_disk_full_drops=self.spool.disk_full_drops,
            spool_corrupt=self.spool.corrupt,
            active=int(self.active),
            refused=int(self.refused is not None),
        )
        return data

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:
            pass  # the loop has already closed

    # --- the worker thread ------------------------------------------------------------------

    def _thread_main(self) -> None:
        self.thread_native_id = threading.get_native_id()
        self.thread_nice = lower_this_threads_priority()
        try:
            # A previous instance (Kit hot reload) may still be finishing: its lock makes this one wait.
            self.spool.open(stop=self._stop_event)
        except (SpoolLocked, OSError) as exc:
            self.refused = str(exc)
            self.outbox.close()
            dropped = self.outbox.drain()
            self.outbox.dropped += len(dropped)
            log.error("simgate worker not started: %s; events are dropped and counted until this is fixed", exc)
            return
        self.active = True
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._wake = asyncio.Event()
        self.outbox.set_wake(self._poke)
        try:
            loop.run_until_complete(self._run())
        except Exception:
            log.exception("simgate worker failed; unacknowledged frames are in the spool")
            self._spill_all()
        finally:
            self.outbox.set_wake(None)
            self._loop = None
            loop.close()
            self.active = False
            self.spool.close()

    async def _run(self) -> None:
        # The spill watcher runs beside the connection: a write stuck on a hung gateway (HTTP/2 flow
        # control) must not keep a full outbox from moving to the spool.
        watcher = asyncio.get_running_loop().create_task(self._spill_watch())
        try:
            await self._main()
        finally:
            watcher.cancel()
            try:
                await watcher
            except asyncio.CancelledError:
                pass

    async def _spill_watch(self) -> None:
        logged = 0
        while True:
            await asyncio.sleep(SPILL_CHECK_S)
            if self.outbox.spill_wanted:  # the outbox is full: free it fast, raw (encoded when resent)
                for item in self.outbox.drain():
                    self._spool_put(item, encode=False)
            dropped = self.outbox.dropped
            if dropped > logged:
                log.warning("simgate outbox full (%s, capacity %d): %d frame(s) dropped, %d so far (last %s)",
                            self.outbox.policy, self.outbox.capacity, dropped - logged, dropped,
                            self.outbox.dropped_keys[-1] if self.outbox.dropped_keys else "?")
                logged = dropped

    async def _main(self) -> None:
        failures_in_a_row = 0
        while True:
            if self._stop_requested and (self._nothing_pending() or self._stop_after_deadline()):
                break
            transport = self._factory()
            try:
                if not await self._connect(transport):
                    await transport.close()
                    break  # stopping while still connecting: what is left waits in the spool
            except ConnectionLost as exc:
                await transport.close()
                self.stats.connect_failures += 1
                failures_in_a_row += 1
                (log.warning if failures_in_a_row == 1 else log.debug)("simgate gateway unreachable: %s", exc)
                self._spill_all()
                if self._stop_requested:
                    break  # stopping and the gateway is away: what is left waits in the spool
                await self._sleep(self._backoff.next_ms() / 1000)
                continue
            if failures_in_a_row:
                log.info("simgate gateway reachable again after %d attempts", failures_in_a_row)
            failures_in_a_row = 0
            self.stats.connects += 1
            self.connected = True
            try:
                await self._session_until_stopped(transport)
            except ConnectionLost as exc:
                self.stats.disconnects += 1
                log.warning("simgate connection lost: %s; %d unacknowledged frames go to the spool", exc, len(self._inflight))
            finally:
                self.connected = False
                await transport.close()
            self._spill_all()
            if not self._stop_requested:
                await self._sleep(self._backoff.next_ms() / 1000)
        self._spill_all()

    async def _session_until_stopped(self, transport: Transport) -> None:
        """The session, cut short when a stop's flush time is over, even if a write or a call hangs (a
        hung gateway): what is unacknowledged then goes to the spool."""
        loop = asyncio.get_running_loop()
        session = loop.create_task(self._session(transport))
        deadline = loop.create_task(self._stop_deadline_passed())
        try:
            await asyncio.wait({session, deadline}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (session, deadline):
                if not task.done():
                    task.cancel()
                    try:
                        await task
                    except (asyncio.CancelledError, ConnectionLost):
                        pass
        if session.done() and not session.cancelled():
            session.result()  # raises ConnectionLost

    async def _stop_deadline_passed(self) -> None:
        while not self._stop_after_deadline():
            await asyncio.sleep(SPILL_CHECK_S)

    async def _connect(self, transport: Transport) -> bool:
        """Connects; a stop request cuts a slow connect short (False) so that stop never waits for it."""
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        connecting = loop.create_task(transport.connect())
        try:
            while True:
                self._wake.clear()
                if self._stop_requested:
                    return False
                waiter = loop.create_task(self._wake.wait())
                await asyncio.wait({connecting, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if connecting.done():
                    connecting.result()  # raises ConnectionLost
                    return True
        finally:
            if not connecting.done():
                connecting.cancel()
                try:
                    await connecting
                except (asyncio.CancelledError, ConnectionLost):
                    pass

    async def _sleep(self, seconds: float) -> None:
        """Back-off while the gateway is away; what arrives meanwhile goes to the spool at once."""
        assert self._wake is not None
        deadline = time.monotonic() + seconds
        while not self._stop_requested and time.monotonic() < deadline:
            self._wake.clear()
            self._spill_all()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass

    def _nothing_pending(self) -> bool:
        return (not self._inflight and not self._retry and self._head is None and len(self.outbox) == 0
                and self.spool.oldest_order() is None)

    async def _session(self, transport: Transport) -> None:
        assert self._wake is not None
        reader = asyncio.get_running_loop().create_task(self._read_acks(transport))
        try:
            while True:
                if reader.done():
                    reader.result()  # raises ConnectionLost
                    raise ConnectionLost("ack stream ended")
                self._wake.clear()
                if self.outbox.spill_wanted:  # the outbox is full: free it for the simulation thread
                    self._spill_outbox()
                await self._fill(transport)
                if self._stop_requested and (self._nothing_pending() or time.monotonic() >= self._stop_deadline):
                    return
                timeout = 0.5
                if self._retry or self._paused_until:
                    soonest = min([t for t, _ in self._retry] + ([self._paused_until] if self._paused_until else []))
                    timeout = max(0.001, min(timeout, soonest - time.monotonic()))
                waiter = asyncio.get_running_loop().create_task(self._wake.wait())
                await asyncio.wait({reader, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
        finally:
            if not reader.done():
                reader.cancel()
            try:
                await reader
            except (asyncio.CancelledError, ConnectionLost):
                pass

    async def _read_acks(self, transport: Transport) -> None:
        while True:
            ack = await transport.next_ack()
            self._handle_ack(ack)
            if self._wake is not None:
                self._wake.set()

    def _next_candidate(self) -> Optional[_Pending]:
        now = time.monotonic()
        ready = [entry for entry in self._retry if entry[0] <= now]
        if ready:
            entry = min(ready, key=lambda e: e[1].item.order)
            return entry[1]
        exclude = set(self._inflight) | {p.item.key for _, p in self._retry}
        if self._head is None:
            self._head = self.outbox.pop()
        head = self._head
        spool_order = self.spool.oldest_order(exclude)
        if head is not None and (spool_order is None or head.order < spool_order):
            return _Pending(head, from_spool=False)
        if spool_order is not None:
            item = self.spool.oldest(exclude)
            return _Pending(item, from_spool=True) if item is not None else None
        return None

    def _take(self, pending: _Pending) -> None:
        """Remove the chosen candidate from where it waited (retry list or outbox)."""
        for i, (_, p) in enumerate(self._retry):
            if p is pending:
                del self._retry[i]
                return
        if not pending.from_spool:
            assert pending.item is self._head, "the worker's head changed"
            self._head = None

    async def _fill(self, transport: Transport) -> None:
        while len(self._inflight) < self.max_in_flight and not self._stop_after_deadline():
            if self._paused_until:
                if time.monotonic() < self._paused_until:
                    return
                self._paused_until = 0.0
            pending = self._next_candidate()
            if pending is None:
                return
            item = pending.item
            if item.kind in ("run_start", "run_end"):
                if self._inflight or self._retry:
                    return  # a barrier: wait until every earlier event is acknowledged
                self._take(pending)
                self._inflight[item.key] = pending
                self._count_send(item.key)
                run_ack = await transport.run_call(item.frame)
                self._handle_run_ack(pending, run_ack)
                continue
            self._take(pending)
            self._prepare_item(item)
            self._inflight[item.key] = pending
            earlier = self._count_send(item.key)
            if earlier == 0 and pending.from_spool:
                earlier = 1  # spooled after a lost connection: it may have reached the gateway
            # A resend says so, and the gateway then looks for images it already stored instead of
            # receiving them again; the attempt is not part of the event's content.
            item.frame.event.attempt = earlier
            await transport.send_event(item.frame.event)

    def _stop_after_deadline(self) -> bool:
        return self._stop_requested and time.monotonic() >= self._stop_deadline

    def _count_send(self, key: str) -> int:
        """Counts a send; returns how many sends of this frame came before it."""
        self.stats.sent += 1
        earlier = self._sends.get(key, 0)
        if earlier:
            self.stats.resent += 1
        self._sends[key] = earlier + 1
        return earlier

    # --- answers ----------------------------------------------------------------------------

    def _finish(self, pending: _Pending) -> None:
        self._inflight.pop(pending.item.key, None)
        self._sends.pop(pending.item.key, None)
        if pending.from_spool or pending.item.key in self.spool:
            self.spool.remove(pending.item.key)

    def _retry_later(self, pending: _Pending, retry_after_ms: int, code: str, message: str) -> None:
        self._inflight.pop(pending.item.key, None)
        delay = max(retry_after_ms, 50) / 1000
        not_before = time.monotonic() + delay
        self._retry.append((not_before, pending))
        self._paused_until = max(self._paused_until, not_before)
        self.stats.retry_later += 1
        log.info("simgate gateway asked to retry %s in %.0f ms (%s: %s)", pending.item.key, delay * 1000, code, message)

    def _handle_ack(self, ack: simgate_pb2.Ack) -> None:
        pending = self._inflight.get(ack.event_id)
        if pending is None:
            self.stats.unknown_acks += 1
            log.debug("simgate ack for unknown event %s", ack.event_id)
            return
        self._backoff.reset()  # the gateway is answering: the next outage starts from a short delay
        outcome = ack.WhichOneof("outcome")
        if outcome == "retry_later":
            r = ack.retry_later
            self._retry_later(pending, r.retry_after_ms, r.code, r.message)
            return
        if outcome == "accepted":
            self.stats.accepted += 1
        elif outcome == "duplicate":
            self.stats.duplicate += 1
        elif outcome == "rejected":
            self.stats.rejected += 1
            log.error("simgate gateway rejected %s: %s %s", ack.event_id, ack.rejected.code, ack.rejected.message)
        else:
            self.stats.rejected += 1
            log.error("simgate gateway sent an ack without outcome for %s", ack.event_id)
        self._finish(pending)
        self._notify(pending.item.key, ack)

    def _handle_run_ack(self, pending: _Pending, run_ack: simgate_pb2.RunAck) -> None:
        self._backoff.reset()
        outcome = run_ack.WhichOneof("outcome")
        if outcome == "retry_later":
            r = run_ack.retry_later
            self._retry_later(pending, r.retry_after_ms, r.code, r.message)
            return
        self.stats.run_acks += 1
        if outcome == "rejected":
            self.stats.rejected += 1
            log.error("simgate gateway rejected %s: %s %s", pending.item.key, run_ack.rejected.code, run_ack.rejected.message)
        self._finish(pending)
        self._notify(pending.item.key, run_ack)

    def _notify(self, key: str, answer: "simgate_pb2.Ack | simgate_pb2.RunAck") -> None:
        if self._on_ack is not None:
            try:
                self._on_ack(key, answer)
            except Exception:
                log.exception("simgate ack listener failed")

    def _prepare_item(self, item: OutboundItem) -> None:
        """Image encoding, once per item, on this thread (kept: a resend does not redo it)."""
        if self._prepare is None or item.prepared or item.kind != "event":
            return
        try:
            item.frame = self._prepare(item.frame)
        except Exception:
            log.exception("simgate: preparing %s failed; it is sent as it is", item.key)
        item.prepared = True

    def _spool_put(self, item: OutboundItem, encode: bool = True) -> None:
        if encode and not self._stop_requested:
            self._prepare_item(item)  # stopping or in a hurry: written raw, quicker; encoded when it is resent
        try:
            self.spool.put(item)
            self.stats.spilled += 1
        except OSError as exc:  # not a full disk (that drops the oldest): counted and logged, the item is lost
            self.stats.spool_writes_failed += 1
            log.error("simgate spool write failed for %s: %s", item.key, exc)

    def _spill_outbox(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._spool_put(head)
        for item in self.outbox.drain():
            self._spool_put(item)

    def _spill_all(self) -> None:
        """Everything not acknowledged and not yet on disk goes to the spool (keeps its order)."""
        self._spill_outbox()
        for pending in list(self._inflight.values()) + [p for _, p in self._retry]:
            if pending.item.key not in self.spool:
                self._spool_put(pending.item)
        self._inflight.clear()
        self._retry.clear()
        self._paused_until = 0.0
