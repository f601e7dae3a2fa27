"""Reads .simrec files frame by frame: each frame is checked (marker, length, CRC-32, protobuf) and
problems are reported at the exact frame and byte offset."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Union

from google.protobuf.message import DecodeError

from simgate.v1 import simgate_pb2

from . import errors
from .errors import RecordingError
from .format import (
    FORMAT_VERSION,
    FRAME_HEADER_BYTES,
    FRAME_MARKER,
    MAGIC,
    MAX_FRAME_PAYLOAD_BYTES,
    PREAMBLE_BYTES,
    decode_frame_head,
    payload_checksum,
)

_SCAN_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class RecordedFrame:
    index: int
    offset: int
    byte_length: int
    frame: simgate_pb2.ClientFrame


@dataclass(frozen=True)
class CorruptFrame:
    error: RecordingError


RecordingItem = Union[RecordedFrame, CorruptFrame]


class _RawFrame:
    __slots__ = ("payload", "next_offset")

    def __init__(self, payload: bytes, next_offset: int) -> None:
        self.payload = payload
        self.next_offset = next_offset


def _seek_size(stream: BinaryIO) -> int:
    here = stream.tell()
    end = stream.seek(0, os.SEEK_END)
    stream.seek(here)
    return end


def _read_at(stream: BinaryIO, offset: int, length: int) -> bytes:
    stream.seek(offset)
    return stream.read(length)


def _read_raw_frame(stream: BinaryIO, offset: int, index: int) -> Union[_RawFrame, RecordingError]:
    head = _read_at(stream, offset, FRAME_HEADER_BYTES)
    if len(head) < FRAME_HEADER_BYTES:
        return RecordingError(
            errors.TRUNCATED,
            f"the file ends {len(head)} bytes into the {FRAME_HEADER_BYTES}-byte frame header",
            index,
            offset,
        )
    marker, length, expected = decode_frame_head(head)
    if marker != FRAME_MARKER:
        return RecordingError(errors.BAD_MARKER, f'expected the frame marker "SGFR", found 0x{marker.hex()}', index, offset)
    if length > MAX_FRAME_PAYLOAD_BYTES:
        return RecordingError(
            errors.FRAME_TOO_LARGE, f"declared payload of {length} bytes exceeds {MAX_FRAME_PAYLOAD_BYTES}", index, offset
        )
    payload = _read_at(stream, offset + FRAME_HEADER_BYTES, length)
    if len(payload) < length:
        return RecordingError(
            errors.TRUNCATED, f"the file ends {len(payload)} bytes into a payload of {length} bytes", index, offset
        )
    actual = payload_checksum(payload)
    if actual != expected:
        return RecordingError(
            errors.BAD_CHECKSUM,
            f"CRC-32 of the {length}-byte payload is 0x{actual:08x}, the frame says 0x{expected:08x}",
            index,
            offset,
        )
    return _RawFrame(payload, offset + FRAME_HEADER_BYTES + length)


def _find_next_frame(stream: BinaryIO, start: int) -> int | None:
    position = start
    while True:
        size = _seek_size(stream)
        if position + FRAME_HEADER_BYTES > size:
            return None
        chunk = _read_at(stream, position, min(_SCAN_CHUNK_BYTES, size - position))
        at = chunk.find(FRAME_MARKER)
        while at != -1:
            candidate = position + at
            if isinstance(_read_raw_frame(stream, candidate, 0), _RawFrame):
                return candidate
            at = chunk.find(FRAME_MARKER, at + 1)
        position += max(1, len(chunk) - (len(FRAME_MARKER) - 1))


class RecordingReader:
    """Open with `RecordingReader.open(path)` or wrap a seekable binary stream."""

    def __init__(self, stream: BinaryIO, *, owns_stream: bool = False) -> None:
        self._stream = stream
        self._owns_stream = owns_stream
        self.header, self.header_payload, self.data_offset = self._read_header()

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "RecordingReader":
        stream = open(path, "rb")
        try:
            return cls(stream, owns_stream=True)
        except BaseException:
            stream.close()
            raise

    def _read_header(self) -> tuple[simgate_pb2.RecordingHeader, bytes, int]:
        pre = _read_at(self._stream, 0, PREAMBLE_BYTES)
        if len(pre) < len(MAGIC) or pre[: len(MAGIC)] != MAGIC:
            raise RecordingError(errors.BAD_MAGIC, 'not a recording: the file does not start with "SIMREC"', -1, 0)
        if len(pre) < PREAMBLE_BYTES:
            raise RecordingError(errors.TRUNCATED, "the file ends inside the preamble", -1, len(pre))
        version = int.from_bytes(pre[len(MAGIC):], "big")
        if version != FORMAT_VERSION:
            raise RecordingError(
                errors.UNSUPPORTED_VERSION,
                f"format version {version}; this reader knows version {FORMAT_VERSION}",
                -1,
                len(MAGIC),
            )
        raw = _read_raw_frame(self._stream, PREAMBLE_BYTES, -1)
        if isinstance(raw, RecordingError):
            code = raw.code if raw.code == errors.TRUNCATED else errors.BAD_HEADER
            raise RecordingError(code, f"header frame: {raw.message}", -1, raw.offset)
        header = simgate_pb2.RecordingHeader()
        try:
            header.ParseFromString(raw.payload)
        except DecodeError as exc:
            raise RecordingError(errors.BAD_HEADER, f"header is not a RecordingHeader: {exc}", -1, PREAMBLE_BYTES) from exc
        if header.format_version != version:
            raise RecordingError(
                errors.UNSUPPORTED_VERSION,
                f"header says format version {header.format_version}, preamble says {version}",
                -1,
                PREAMBLE_BYTES,
            )
        return header, raw.payload, raw.next_offset

    def frames(self, *, skip_corrupt: bool = False) -> Iterator[RecordingItem]:
        """The frames after the header in file order; a damaged frame is yielded as CorruptFrame, and
        reading stops there unless `skip_corrupt` is set (then it resumes at the next intact frame)."""
        offset = self.data_offset
        index = 0
        while True:
            if offset >= _seek_size(self._stream):
                return
            raw = _read_raw_frame(self._stream, offset, index)
            if isinstance(raw, _RawFrame):
                decoded = _decode_client_frame(raw.payload, index, offset)
                if isinstance(decoded, RecordingError):
                    yield CorruptFrame(decoded)
                    if not skip_corrupt:
                        return
                else:
                    yield RecordedFrame(index, offset, raw.next_offset - offset, decoded)
                offset = raw.next_offset
                index += 1
                continue
            yield CorruptFrame(raw)
            if not skip_corrupt:
                return
            resume = _find_next_frame(self._stream, offset + 1)
            if resume is None:
                return
            offset = resume
            index += 1

    def close(self) -> None:
        if self._owns_stream:
            self._stream.close()

    def __enter__(self) -> "RecordingReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode_client_frame(payload: bytes, index: int, offset: int) -> Union[simgate_pb2.ClientFrame, RecordingError]:
    frame = simgate_pb2.ClientFrame()
    try:
        frame.ParseFromString(payload)
    except DecodeError as exc:
        return RecordingError(errors.UNDECODABLE, f"not a ClientFrame: {exc}", index, offset)
    if frame.WhichOneof("body") is None:
        return RecordingError(errors.UNDECODABLE, "the frame holds no event, run start or run end", index, offset)
    return frame
