"""The bounded hand-over from the simulation thread to the network worker.

``put`` never blocks and never waits on the network: when the outbox is full, the item goes straight
to the on-disk spool (a local file write), so nothing is lost and the simulation keeps its frame rate.
Every item gets an order number when it is put; the worker sends in that order, whether an item
comes from the outbox or from the spool.
"""

from __future__ import annotations

import collections
import itertools
import threading
from dataclasses import dataclass
from typing import Callable, Optional

from simgate.v1 import simgate_pb2


@dataclass
class OutboundItem:
    """One ClientFrame to deliver, keyed by event id (or run-start:/run-end: + run id)."""

    key: str
    order: int
    frame: simgate_pb2.ClientFrame

    @property
    def kind(self) -> str:
        return self.frame.WhichOneof("body") or "empty"

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


def frame_of(message: simgate_pb2.Event | simgate_pb2.RunStart | simgate_pb2.RunEnd) -> simgate_pb2.ClientFrame:
    if isinstance(message, simgate_pb2.Event):
        return simgate_pb2.ClientFrame(event=message)
    if isinstance(message, simgate_pb2.RunStart):
        return simgate_pb2.ClientFrame(run_start=message)
    if isinstance(message, simgate_pb2.RunEnd):
        return simgate_pb2.ClientFrame(run_end=message)
    raise TypeError(f"cannot send a {type(message).__name__}")


class Outbox:
    def __init__(self, capacity: int, overflow: Callable[[OutboundItem], None], first_order: int = 1) -> None:
        if capacity < 1:
            raise ValueError("outbox capacity must be at least 1")
        self.capacity = capacity
        self._overflow = overflow
        self._items: collections.deque[OutboundItem] = collections.deque()
        self._lock = threading.Lock()
        self._orders = itertools.count(first_order)
        self._wake: Optional[Callable[[], None]] = None
        self.overflowed = 0

    def set_wake(self, wake: Optional[Callable[[], None]]) -> None:
        self._wake = wake

    def put(self, message: simgate_pb2.Event | simgate_pb2.RunStart | simgate_pb2.RunEnd) -> bool:
        """Queue a message; False when the outbox was full and it went to the spool instead."""
        frame = frame_of(message)
        with self._lock:
            item = OutboundItem(OutboundItem.key_of(frame), next(self._orders), frame)
            queued = len(self._items) < self.capacity
            if queued:
                self._items.append(item)
            else:
                self.overflowed += 1
        if not queued:
            self._overflow(item)
        wake = self._wake
        if wake is not None:
            wake()
        return queued

    def peek(self) -> Optional[OutboundItem]:
        with self._lock:
            return self._items[0] if self._items else None

    def pop(self) -> Optional[OutboundItem]:
        with self._lock:
            return self._items.popleft() if self._items else None

    def drain(self) -> list[OutboundItem]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
