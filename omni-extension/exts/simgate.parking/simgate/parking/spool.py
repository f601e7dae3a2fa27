"""A bounded on-disk spool of frames not yet acknowledged by the gateway.

One file per frame, named ``<order>-<key hash>.frame`` and written atomically (temporary file + rename),
so a crash leaves either the whole frame or nothing. The spool survives restarts: frames left by an
earlier session are sent first, with their original event ids.

- Only the worker thread uses it; nothing here runs on Kit's main thread.
- Opening it takes the directory's lock (``spool.lock``, an OS file lock): a second instance, in this
  process (Kit hot reload) or another, waits up to ``lock_wait_s`` and then refuses (``SpoolLocked``);
  two instances never share a directory.
- The index is built lazily from the file names and sizes only: nothing is parsed at start-up, however
  large the spool. A frame is read when it is about to be resent; an unreadable one is moved aside
  (``.corrupt``), counted and logged, never deleted.
- When the spool is over its limits, or the disk is full, the oldest frames are dropped: the only place the
  extension drops data once it left the outbox; every drop is counted in ``dropped`` and logged.
"""

from __future__ import annotations

import bisect
import errno
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .outbox import OutboundItem
from .wire import simgate_pb2

log = logging.getLogger(__name__)

DROP_LOG_INTERVAL_S = 10.0

SUFFIX = ".frame"
LOCK_FILE = "spool.lock"
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class SpoolLocked(RuntimeError):
    """Another instance holds the spool directory."""


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class _Entry:
    digest: str
    order: int
    path: Path
    size: int
    key: str = ""  # known for frames written by this instance; else read with the frame


class _DirectoryLock:
    """An exclusive, non-blocking OS lock on a file in the directory (flock / msvcrt.locking); released
    when closed or when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = None

    def try_acquire(self) -> bool:
        fh = open(self.path, "a+b")
        try:
            if os.name == "nt":
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n".encode())
        fh.flush()
        self._fh = fh
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()  # closing the file releases the lock


class DiskSpool:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        max_events: int,
        lock_wait_s: float = 5.0,
        clock=time.monotonic,
    ) -> None:
        # Nothing touches the disk here: this runs on whichever thread builds the worker (Kit's main thread).
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_events = max_events
        self.lock_wait_s = lock_wait_s
        self._lock = threading.RLock()
        self._dir_lock: Optional[_DirectoryLock] = None
        self._entries: dict[str, _Entry] = {}  # key hash -> entry
        self._index: list[tuple[int, str]] = []  # (order, key hash), sorted: the oldest first
        self._bytes = 0
        self.dropped = 0
        self.disk_full_drops = 0
        self.corrupt = 0
        self.written = 0
        # Drops are logged at once for the first, then at most every DROP_LOG_INTERVAL_S with the count
        # since: a gateway down for minutes must not print a console line per frame in Kit.
        self._clock = clock
        self._drop_logged_at: Optional[float] = None
        self._drops_unlogged = 0
        self._last_drop_why = ""

    # --- opening and closing ---------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._dir_lock is not None

    def open(self, lock_wait_s: Optional[float] = None, stop: Optional[threading.Event] = None) -> None:
        """Lock the directory (waiting up to lock_wait_s) and index it by file names. Worker thread only."""
        with self._lock:
            if self._dir_lock is not None:
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            lock = _DirectoryLock(self.directory / LOCK_FILE)
            deadline = time.monotonic() + (self.lock_wait_s if lock_wait_s is None else lock_wait_s)
            warned = False
            while not lock.try_acquire():
                if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                    raise SpoolLocked(
                        f"spool directory {self.directory} is in use by another instance (pid {lock.holder()}); "
                        "each instance needs its own spoolDir"
                    )
                if not warned:
                    log.info("simgate spool %s is locked (pid %s): waiting", self.directory, lock.holder())
                    warned = True
                time.sleep(0.02)
            self._dir_lock = lock
            self._index_files()

    def close(self) -> None:
        with self._lock:
            if self._drops_unlogged:
                self._log_drops(self._last_drop_why, None)
            lock, self._dir_lock = self._dir_lock, None
            if lock is not None:
                lock.release()

    def _ensure_open(self) -> None:
        if self._dir_lock is None:
            self.open()

    def _index_files(self) -> None:
        with os.scandir(self.directory) as it:
            for entry in it:
                name = entry.name
                if name.endswith(".tmp"):
                    Path(entry.path).unlink(missing_ok=True)  # a write that never finished
                    continue
                if not name.endswith(SUFFIX):
                    continue
                order_text, _, digest = name[: -len(SUFFIX)].partition("-")
                try:
                    order = int(order_text)
                    size = entry.stat().st_size
                except (ValueError, OSError):
                    self._move_aside(Path(entry.path), "not a spool file name")
                    continue
                if not digest or digest in self._entries:
                    self._move_aside(Path(entry.path), "not a spool file name")
                    continue
                self._add_locked(_Entry(digest, order, Path(entry.path), size))

    # --- state (cheap, no disk) ------------------------------------------------------------------

    def next_order(self) -> int:
        with self._lock:
            self._ensure_open()
            return (self._index[-1][0] if self._index else 0) + 1

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __contains__(self, key: str) -> bool:
        return key_hash(key) in self._entries

    # --- writing ---------------------------------------------------------------------------------

    def put(self, item: OutboundItem) -> bool:
        """Store a frame (idempotent by key). False when the limits or a full disk forced this very frame out."""
        with self._lock:
            self._ensure_open()
            digest = key_hash(item.key)
            if digest in self._entries:
                return True
            data = item.frame.SerializeToString()
            path = self.directory / f"{item.order:020d}-{digest}{SUFFIX}"
            while True:
                try:
                    self._write_atomically(path, data)
                    break
                except OSError as exc:
                    if exc.errno not in _DISK_FULL:
                        raise
                    if not self._drop_oldest_locked(f"disk full ({exc.strerror})"):
                        self.dropped += 1
                        self.disk_full_drops += 1
                        log.error("simgate spool: disk full and nothing left to drop: frame %s dropped (%d dropped so far)",
                                  item.key, self.dropped)
                        return False
                    self.disk_full_drops += 1
            self._add_locked(_Entry(digest, item.order, path, len(data), item.key))
            self.written += 1
            while self._entries and (len(self._entries) > self.max_events or self._bytes > self.max_bytes):
                self._drop_oldest_locked(f"spool full (limits {self.max_events} frames, {self.max_bytes} bytes)")
            return digest in self._entries

    @staticmethod
    def _write_atomically(path: Path, data: bytes) -> None:
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise

    def _drop_oldest_locked(self, why: str) -> bool:
        if not self._index:
            return False
        oldest = self._entries[self._index[0][1]]
        self._remove_entry_locked(oldest)
        self.dropped += 1
        self._drops_unlogged += 1
        self._last_drop_why = why
        now = self._clock()
        if self._drop_logged_at is None or now - self._drop_logged_at >= DROP_LOG_INTERVAL_S:
            self._drop_logged_at = now
            self._log_drops(why, oldest.key or oldest.path.name)
        return True

    def _log_drops(self, why: str, key: Optional[str]) -> None:
        if key is not None and self._drops_unlogged == 1:
            log.warning("simgate %s: dropped the oldest frame %s (%d dropped so far)", why, key, self.dropped)
        else:
            log.warning("simgate %s: dropped the oldest frames, %d more since the last report, the latest %s "
                        "(%d dropped so far)", why, self._drops_unlogged, key or "before closing", self.dropped)
        self._drops_unlogged = 0

    def remove(self, key: str) -> bool:
        with self._lock:
            entry = self._entries.get(key_hash(key))
            if entry is None:
                return False
            self._remove_entry_locked(entry)
            return True

    def _add_locked(self, entry: _Entry) -> None:
        self._entries[entry.digest] = entry
        bisect.insort(self._index, (entry.order, entry.digest))
        self._bytes += entry.size

    def _forget_locked(self, entry: _Entry) -> None:
        if self._entries.pop(entry.digest, None) is None:
            return
        at = bisect.bisect_left(self._index, (entry.order, entry.digest))
        if at < len(self._index) and self._index[at] == (entry.order, entry.digest):
            del self._index[at]
        self._bytes -= entry.size

    def _remove_entry_locked(self, entry: _Entry) -> None:
        self._forget_locked(entry)
        entry.path.unlink(missing_ok=True)

    def _move_aside(self, path: Path, why: str) -> None:
        self.corrupt += 1
        try:
            path.rename(path.with_suffix(".corrupt"))
        except OSError:
            pass
        log.error("simgate spool: unreadable frame %s moved aside (%s)", path.name, why)

    def _first_locked(self, exclude: frozenset[str] | set[str]) -> Optional[_Entry]:
        for _order, digest in self._index:
            if digest not in exclude:
                return self._entries[digest]
        return None

    # --- reading ---------------------------------------------------------------------------------

    def oldest(self, exclude: set[str] | frozenset[str] = frozenset()) -> Optional[OutboundItem]:
        """The oldest frame whose key is not in ``exclude`` (those already on the wire); read from disk now."""
        with self._lock:
            self._ensure_open()
            hashes = {key_hash(k) for k in exclude}
            while True:
                entry = self._first_locked(hashes)
                if entry is None:
                    return None
                try:
                    frame = simgate_pb2.ClientFrame.FromString(entry.path.read_bytes())
                    key = OutboundItem.key_of(frame)
                    if key_hash(key) != entry.digest:
                        raise ValueError("the frame's key does not match its file name")
                except Exception as exc:  # moved aside with its bytes, counted and logged
                    self._forget_locked(entry)
                    self._move_aside(entry.path, str(exc))
                    continue
                return OutboundItem(key, entry.order, frame)

    def oldest_order(self, exclude: set[str] | frozenset[str] = frozenset()) -> Optional[int]:
        with self._lock:
            self._ensure_open()
            entry = self._first_locked({key_hash(k) for k in exclude})
            return entry.order if entry is not None else None
