"""Optional: each run also written to a .simrec recording (simgate.recording, the format shared with the
TypeScript replayer), so that a Kit run can be replayed later without Kit.

File writes happen on the recorder's own thread; ``record`` only puts the message into a bounded queue.
The recording is a copy for convenience, not the delivery path (that is the worker and its spool): when
its queue is full a frame is left out of the recording, counted and logged, and the simulation goes on.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Callable, Optional

from .wire import simgate_pb2

from simgate.recording import RecordingWriter

from .outbox import frame_of

log = logging.getLogger(__name__)

_STOP = object()


class RunRecorder:
    def __init__(
        self,
        directory: str,
        producer: str,
        capacity: int = 256,
        prepare: Optional[Callable[[simgate_pb2.ClientFrame], simgate_pb2.ClientFrame]] = None,
    ) -> None:
        self.directory = directory
        self._prepare = prepare
        self.producer = producer
        self._queue: "queue.Queue[object]" = queue.Queue(maxsize=capacity)
        self._writer = None
        self.files: list[str] = []
        self.frames_written = 0
        self.left_out = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="simgate-run-recorder", daemon=True)
        self._thread.start()

    def record(self, message: simgate_pb2.RunStart | simgate_pb2.Event | simgate_pb2.RunEnd) -> None:
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.left_out += 1
            log.warning("simgate recorder queue full: a frame is left out of the recording (%d so far)", self.left_out)

    def close(self, timeout_s: float = 10.0) -> None:
        """Writes what is queued, closes the file, ends the thread. Safe to call twice."""
        if not self._thread.is_alive():
            return
        self._queue.put(_STOP)
        self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        from .worker import lower_this_threads_priority

        lower_this_threads_priority()  # PNG encoding and file writes: background work, as the worker's
        while True:
            message = self._queue.get()
            if message is _STOP:
                self._close_file()
                return
            try:
                self._write(message)  # type: ignore[arg-type]
            except Exception as exc:  # a full disk must not take the simulation down
                self.errors += 1
                log.error("simgate recorder: %s", exc)

    def _write(self, message: simgate_pb2.RunStart | simgate_pb2.Event | simgate_pb2.RunEnd) -> None:
        if isinstance(message, simgate_pb2.RunStart):
            self._close_file()
            os.makedirs(self.directory, exist_ok=True)
            path = os.path.join(self.directory, f"{message.run_id}.simrec")
            header = simgate_pb2.RecordingHeader(created_unix_ms=int(time.time() * 1000), writer=self.producer, run=message)
            self._writer = RecordingWriter.create(path, header)
            self.files.append(path)
            return
        if self._writer is None:
            self.left_out += 1
            return
        frame = frame_of(message)
        self._writer.append(self._prepare(frame) if self._prepare is not None else frame)
        self.frames_written += 1
        if isinstance(message, simgate_pb2.RunEnd):
            self._close_file()

    def _close_file(self) -> None:
        writer: Optional[object] = self._writer
        self._writer = None
        if writer is not None:
            writer.close()  # type: ignore[attr-defined]
