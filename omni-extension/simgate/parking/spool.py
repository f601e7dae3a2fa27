"""A bounded on-disk spool of frames not yet acknowledged by the gateway.

One file per frame, named by its order number, written atomically (temporary file + rename), so a
crash leaves either the whole frame or nothing. The spool survives restarts: frames left by an earlier
session are sent first, with their original event ids. When the spool is over its limits the oldest
frames are dropped: the only place the extension ever drops data, and every drop is counted and logged.
"""

from __future__ import annotations

import bisect
import errno
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from simgate.v1 import simgate_pb2

from .outbox import OutboundItem

log = logging.getLogger(__name__)

SUFFIX = ".frame"


@dataclass
class _Entry:
    key: str
    order: int
    path: Path
    size: int


class DiskSpool:
    def __init__(self, directory: str | os.PathLike[str], max_bytes: int, max_events: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_events = max_events
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._index: list[tuple[int, str]] = []  # (order, key), sorted: the oldest first
        self._bytes = 0
        self.dropped = 0
        self.corrupt = 0
        self.written = 0
        self._load()

    # --- state -----------------------------------------------------------------------------

    def _load(self) -> None:
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)  # a write that never finished: its frame is still in memory or lost with the crash
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            try:
                order = int(path.name.split("-", 1)[0])
                frame = simgate_pb2.ClientFrame.FromString(path.read_bytes())
                key = OutboundItem.key_of(frame)
            except Exception as exc:  # keep the bytes for inspection, never delete them silently
                self.corrupt += 1
                path.rename(path.with_suffix(".corrupt"))
                log.error("simgate spool: unreadable frame %s moved aside (%s)", path.name, exc)
                continue
            self._add_locked(_Entry(key, order, path, path.stat().st_size))

    def next_order(self) -> int:
        with self._lock:
            return (self._index[-1][0] if self._index else 0) + 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    # --- writing ---------------------------------------------------------------------------

    def put(self, item: OutboundItem) -> bool:
        """Store a frame (idempotent by key). False when the limits forced this very frame out."""
        data = item.frame.SerializeToString()
        name = f"{item.order:020d}-{hashlib.sha256(item.key.encode()).hexdigest()[:16]}{SUFFIX}"
        with self._lock:
            if item.key in self._entries:
                return True
            path = self.directory / name
            tmp = path.with_suffix(".tmp")
            while True:
                try:
                    with open(tmp, "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, path)
                    break
                except OSError as exc:
                    tmp.unlink(missing_ok=True)
                    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                        raise
                    # The disk filled before the spool's limits: make room by dropping the oldest
                    # frames, as the limits do; when nothing older is left, this frame is dropped.
                    if not self._index:
                        self.dropped += 1
                        log.warning("simgate spool: disk full, frame %s (%d bytes) dropped (%d dropped so far)", item.key, len(data), self.dropped)
                        return False
                    self._drop_oldest_locked("disk full")
            self._add_locked(_Entry(item.key, item.order, path, len(data)))
            self.written += 1
            self._enforce_limits_locked()
            return item.key in self._entries

    def _enforce_limits_locked(self) -> None:
        while self._entries and (len(self._entries) > self.max_events or self._bytes > self.max_bytes):
            self._drop_oldest_locked(f"limits {self.max_events} frames, {self.max_bytes} bytes")

    def _drop_oldest_locked(self, why: str) -> None:
        oldest = self._entries[self._index[0][1]]
        self._remove_locked(oldest.key)
        self.dropped += 1
        log.warning(
            "simgate spool full (%d frames, %d bytes; %s): dropped the oldest frame %s (%d dropped so far)",
            len(self._entries) + 1, self._bytes + oldest.size, why, oldest.key, self.dropped,
        )

    def remove(self, key: str) -> bool:
        with self._lock:
            return self._remove_locked(key)

    def _add_locked(self, entry: _Entry) -> None:
        self._entries[entry.key] = entry
        bisect.insort(self._index, (entry.order, entry.key))
        self._bytes += entry.size

    def _forget_locked(self, key: str) -> Optional[_Entry]:
        entry = self._entries.pop(key, None)
        if entry is not None:
            at = bisect.bisect_left(self._index, (entry.order, key))
            if at < len(self._index) and self._index[at] == (entry.order, key):
                del self._index[at]
            self._bytes -= entry.size
        return entry

    def _remove_locked(self, key: str) -> bool:
        entry = self._forget_locked(key)
        if entry is None:
            return False
        entry.path.unlink(missing_ok=True)
        return True

    def _first_locked(self, exclude: set[str] | frozenset[str]) -> Optional[_Entry]:
        for _order, key in self._index:
            if key not in exclude:
                return self._entries[key]
        return None

    # --- reading ---------------------------------------------------------------------------

    def oldest(self, exclude: set[str] | frozenset[str] = frozenset()) -> Optional[OutboundItem]:
        """The oldest frame whose key is not in ``exclude`` (those already on the wire)."""
        with self._lock:
            while True:
                entry = self._first_locked(exclude)
                if entry is None:
                    return None
                try:
                    frame = simgate_pb2.ClientFrame.FromString(entry.path.read_bytes())
                except Exception as exc:  # moved aside with its bytes, counted and logged
                    self._forget_locked(entry.key)
                    self.corrupt += 1
                    if entry.path.exists():
                        entry.path.rename(entry.path.with_suffix(".corrupt"))
                    log.error("simgate spool: unreadable frame %s moved aside (%s)", entry.path.name, exc)
                    continue
                return OutboundItem(entry.key, entry.order, frame)

    def oldest_order(self, exclude: set[str] | frozenset[str] = frozenset()) -> Optional[int]:
        with self._lock:
            entry = self._first_locked(exclude)
            return entry.order if entry is not None else None
