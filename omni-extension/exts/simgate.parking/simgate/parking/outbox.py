"""The bounded hand-over from the simulation thread to the network worker.

``put`` runs on Kit's main thread and never blocks: no disk I/O, no serialisation and no lock that the
worker can hold (a ``collections.deque``, whose append and popleft are atomic). Every item gets an order
number when it is put; the worker sends in that order, whether an item comes from the outbox or from the
spool. What happens when the outbox is full is the policy named by the ``outboxFullPolicy`` setting:

- ``spill`` (default): the item is queued anyway and the worker is asked to move the queue to the on-disk
  spool (on its own thread). Only if the queue reaches twice its capacity (the worker cannot keep up even
  with spilling) is the oldest item dropped, and counted in ``dropped``;
- ``drop-oldest``: the oldest queued item is dropped, counted in ``dropped``, and the new one queued.

Order numbers start from the wall clock in microseconds, so a new session's frames sort after the frames
an earlier session left in the spool without reading the spool first (it is indexed later, on the worker).
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
from typing import Any, Callable, Optional

from .wire import simgate_pb2


class OutboundItem:
    """One message to deliver, keyed by event id (or run-start:/run-end: + run id).

    It holds the message the simulation thread built and wraps it in a ClientFrame only when first
    asked, on the worker thread: wrapping copies the message (megabytes with a raw image)."""

    __slots__ = ("key", "order", "_message", "_frame", "prepared")

    def __init__(self, key: str, order: int, frame: Optional[simgate_pb2.ClientFrame] = None, message: Any = None) -> None:
        if (frame is None) == (message is None):
            raise ValueError("give a frame or a message")
        self.key = key
        self.order = order
        self._frame = frame
        self._message = message
        self.prepared = False  # images encoded (worker side); frames read back from the spool already are

    @property
    def frame(self) -> simgate_pb2.ClientFrame:
        if self._frame is None:
            self._frame = frame_of(self._message)
            self._message = None
        return self._frame

    @frame.setter
    def frame(self, frame: simgate_pb2.ClientFrame) -> None:
        self._frame, self._message = frame, None

    @property
    def kind(self) -> str:
        if self._frame is None:
            return {simgate_pb2.Event: "event", simgate_pb2.RunStart: "run_start", simgate_pb2.RunEnd: "run_end"}.get(
                type(self._message), "event"
            )
        return self._frame.WhichOneof("body") or "empty"

    @staticmethod
    def key_of(frame: simgate_pb2.ClientFrame) -> str:
        kind = frame.WhichOneof("body")
        if kind == "event":
            return frame.event.event_id
        if kind == "run_start":
            return "run-start:" + frame.run_start.run_id
        if kind == "run_end":
            return "run-end:" + frame.run_end.run_id
        raise ValueError("empty ClientFrame")

    @staticmethod
    def key_of_message(message: Any) -> str:
        if hasattr(message, "pictures"):  # events.WithPictures
            return message.event.event_id
        if isinstance(message, simgate_pb2.Event):
            return message.event_id
        if isinstance(message, simgate_pb2.RunStart):
            return "run-start:" + message.run_id
        if isinstance(message, simgate_pb2.RunEnd):
            return "run-end:" + message.run_id
        raise TypeError(f"cannot send a {type(message).__name__}")


def frame_of(message: Any) -> simgate_pb2.ClientFrame:
    if hasattr(message, "build"):  # events.WithPictures: its pictures become Image messages here
        return simgate_pb2.ClientFrame(event=message.build())
    if isinstance(message, simgate_pb2.Event):
        return simgate_pb2.ClientFrame(event=message)
    if isinstance(message, simgate_pb2.RunStart):
        return simgate_pb2.ClientFrame(run_start=message)
    if isinstance(message, simgate_pb2.RunEnd):
        return simgate_pb2.ClientFrame(run_end=message)
    raise TypeError(f"cannot send a {type(message).__name__}")


log = logging.getLogger(__name__)

SPILL = "spill"
DROP_OLDEST = "drop-oldest"
POLICIES = (SPILL, DROP_OLDEST)


def wall_clock_order() -> int:
    return time.time_ns() // 1000


class Outbox:
    def __init__(self, capacity: int, policy: str = SPILL, first_order: Optional[int] = None) -> None:
        if capacity < 1:
            raise ValueError("outbox capacity must be at least 1")
        if policy not in POLICIES:
            raise ValueError(f"outbox policy {policy!r} is not one of {', '.join(POLICIES)}")
        self.capacity = capacity
        self.policy = policy
        self._items: collections.deque[OutboundItem] = collections.deque()
        self._orders = itertools.count(first_order if first_order is not None else wall_clock_order())
        self._wake: Optional[Callable[[], None]] = None
        self._closed = False
        # Written on the putting thread only: how often the outbox was full, and how many items it dropped.
        self.overflowed = 0
        self.dropped = 0
        self.dropped_keys: collections.deque[str] = collections.deque(maxlen=100)

    def set_wake(self, wake: Optional[Callable[[], None]]) -> None:
        self._wake = wake

    def close(self) -> None:
        """No consumer any more (the worker could not get its spool): later puts are dropped and counted."""
        self._closed = True

    @property
    def spill_wanted(self) -> bool:
        return self.policy == SPILL and len(self._items) >= self.capacity

    def put(self, message: simgate_pb2.Event | simgate_pb2.RunStart | simgate_pb2.RunEnd) -> bool:
        """Queue a message; False when the outbox was full (what then happened follows the policy). The
        message must not be changed afterwards (it is read on the worker thread)."""
        key = OutboundItem.key_of_message(message)
        item = OutboundItem(key, next(self._orders), message=message)
        if self._closed:
            self._count_drop(key)
            return False
        queued = len(self._items) < self.capacity
        if not queued:
            self.overflowed += 1
            limit = self.capacity if self.policy == DROP_OLDEST else 2 * self.capacity
            while len(self._items) >= limit:
                try:
                    oldest = self._items.popleft()
                except IndexError:  # the worker took it meanwhile
                    break
                self._count_drop(oldest.key)
        self._items.append(item)
        wake = self._wake
        if wake is not None:
            wake()
        return queued

    def _count_drop(self, key: str) -> None:
        # Counted only: the worker logs it (logging may write to disk, not on the simulation thread).
        self.dropped += 1
        self.dropped_keys.append(key)

    # --- the worker's side -----------------------------------------------------------------

    def pop(self) -> Optional[OutboundItem]:
        try:
            return self._items.popleft()
        except IndexError:
            return None

    def drain(self) -> list[OutboundItem]:
        items = []
        while True:
            try:
                items.append(self._items.popleft())
            except IndexError:
                return items

    def __len__(self) -> int:
        return len(self._items)
