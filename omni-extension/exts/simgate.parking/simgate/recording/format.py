"""The .simrec framing (docs/recording-format.md), identical to gateway/src/recording/format.ts."""
from __future__ import annotations

import struct
import zlib

MAGIC = b"SIMREC"
FORMAT_VERSION = 1
PREAMBLE_BYTES = len(MAGIC) + 2
FRAME_MARKER = b"SGFR"
# marker (4) + payload length (uint32 BE) + CRC-32 of the payload (uint32 BE)
FRAME_HEADER_BYTES = 12
MAX_FRAME_PAYLOAD_BYTES = 256 * 1024 * 1024

_FRAME_HEAD = struct.Struct(">4sII")


def preamble(version: int = FORMAT_VERSION) -> bytes:
    return MAGIC + struct.pack(">H", version)


def payload_checksum(payload: bytes) -> int:
    return zlib.crc32(payload) & 0xFFFFFFFF


def encode_frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_PAYLOAD_BYTES:
        raise ValueError(f"frame payload of {len(payload)} bytes exceeds {MAX_FRAME_PAYLOAD_BYTES}")
    return _FRAME_HEAD.pack(FRAME_MARKER, len(payload), payload_checksum(payload)) + payload


def decode_frame_head(head: bytes) -> tuple[bytes, int, int]:
    """marker, payload length, stored CRC-32 of a 12-byte frame header."""
    return _FRAME_HEAD.unpack(head)
