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
from typing import Any, Callable, Optional

from simgate.v1 import simgate_pb2


class OutboundItem:
    """One message to deliver, keyed by event id (or run-start:/run-end: + run id).

    It holds the message the simulation thread built and wraps it in a ClientFrame only when first
    asked, on the worker thread: wrapping copies the message (megabytes with a raw image)."""

    __slots__ = ("key", "order", "_message", "_frame")

    def __init__(self, key: str, order: int, frame: Optional[simgate_pb2.ClientFrame] = None, message: Any = None) -> None:
        if (frame is None) == (message is None):
            raise ValueError("give a frame or a message")
        self.key = key
        self.order = order
        self._frame = frame
        self._message = message

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
            return {simgate_pb2.Event: "event", simgate_pb2.RunStart: "run_start", simgate_pb2.RunEnd: "run_end"}[
                type(self._message)
            ]
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
        if isinstance(message, simgate_pb2.Event):
            return message.event_id
        if isinstance(message, simgate_pb2.RunStart):
            return "run-start:" + message.run_id
        if isinstance(message, simgate_pb2.RunEnd):
            return "run-end:" + message.run_id
        raise TypeError(f"cannot send a {type(message).__name__}")


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
        """Queue a message; False when the outbox was full and it went to the spool instead. The message
        must not be changed afterwards (it is read on the worker thread)."""
        key = OutboundItem.key_of_message(message)
        with self._lock:
            item = OutboundItem(key, next(self._orders), message=message)
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
