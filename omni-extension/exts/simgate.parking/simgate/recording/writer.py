"""Writes .simrec files: preamble and header once, then one frame per ClientFrame, appended as the run
goes. Messages are serialized deterministically, which is what the TypeScript writer reproduces, so both
produce the same bytes from the same messages."""
from __future__ import annotations

import os
from typing import BinaryIO, Iterable

from simgate.v1 import simgate_pb2

from .errors import RecordingError
from .format import FORMAT_VERSION, encode_frame, preamble
from .reader import CorruptFrame, RecordingReader


def canonical_bytes(message) -> bytes:  # a generated protobuf message
    return message.SerializeToString(deterministic=True)


def _header_with_version(header: simgate_pb2.RecordingHeader) -> simgate_pb2.RecordingHeader:
    copy = simgate_pb2.RecordingHeader()
    copy.CopyFrom(header)
    copy.format_version = FORMAT_VERSION
    return copy


def encode_recording(header: simgate_pb2.RecordingHeader, frames: Iterable[simgate_pb2.ClientFrame]) -> bytes:
    """A whole recording in memory: what the writer puts in a file, byte for byte."""
    parts = [preamble(), encode_frame(canonical_bytes(_header_with_version(header)))]
    parts.extend(encode_frame(canonical_bytes(frame)) for frame in frames)
    return b"".join(parts)


class RecordingWriter:
    """Create with `RecordingWriter.create(path, header)` or reopen with `open_for_append(path)`."""

    def __init__(self, stream: BinaryIO, next_index: int, *, sync_each_frame: bool = False) -> None:
        self._stream = stream
        self._next_index = next_index
        self._sync_each_frame = sync_each_frame
        self._closed = False

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        header: simgate_pb2.RecordingHeader,
        *,
        overwrite: bool = False,
        sync_each_frame: bool = False,
    ) -> "RecordingWriter":
        stream = open(path, "wb" if overwrite else "xb")
        writer = cls(stream, 0, sync_each_frame=sync_each_frame)
        try:
            writer._write(preamble() + encode_frame(canonical_bytes(_header_with_version(header))))
        except BaseException:
            stream.close()
            raise
        return writer

    @classmethod
    def open_for_append(
        cls, path: str | os.PathLike[str], *, repair_tail: bool = False, sync_each_frame: bool = False
    ) -> tuple["RecordingWriter", simgate_pb2.RecordingHeader]:
        """Appends after the last intact frame. A damaged or truncated tail raises RecordingError unless
        `repair_tail` is set, in which case it is cut off."""
        with RecordingReader.open(path) as reader:
            end = reader.data_offset
            count = 0
            damage: RecordingError | None = None
            for item in reader.frames():
                if isinstance(item, CorruptFrame):
                    damage = item.error
                    break
                end = item.offset + item.byte_length
                count += 1
            header = reader.header
        if damage is not None and not repair_tail:
            raise RecordingError(
                damage.code,
                f"cannot append after damage: {damage.message} (repair_tail cuts it off)",
                damage.frame_index,
                damage.offset,
            )
        stream = open(path, "r+b")
        stream.truncate(end)
        stream.seek(end)
        return cls(stream, count, sync_each_frame=sync_each_frame), header

    def append(self, frame: simgate_pb2.ClientFrame) -> int:
        """Appends one frame and returns its index."""
        return self.append_payload(canonical_bytes(frame))

    def append_payload(self, payload: bytes) -> int:
        self._write(encode_frame(payload))
        index = self._next_index
        self._next_index += 1
        return index

    @property
    def frames_written(self) -> int:
        return self._next_index

    def flush(self) -> None:
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def close(self) -> None:
        """Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        self._stream.close()

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("recording writer is closed")
        self._stream.write(data)
        if self._sync_each_frame:
            self.flush()
