"""Problems found in a recording; the codes are the same as the TypeScript reader's."""
from __future__ import annotations

BAD_MAGIC = "REC_ERR_BAD_MAGIC"
UNSUPPORTED_VERSION = "REC_ERR_UNSUPPORTED_VERSION"
BAD_HEADER = "REC_ERR_BAD_HEADER"
TRUNCATED = "REC_ERR_TRUNCATED"
BAD_MARKER = "REC_ERR_BAD_MARKER"
FRAME_TOO_LARGE = "REC_ERR_FRAME_TOO_LARGE"
BAD_CHECKSUM = "REC_ERR_BAD_CHECKSUM"
UNDECODABLE = "REC_ERR_UNDECODABLE"


class RecordingError(Exception):
    """`frame_index` is 0 for the first frame after the header, -1 for the preamble and header."""

    def __init__(self, code: str, message: str, frame_index: int, offset: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.frame_index = frame_index
        self.offset = offset

    def describe(self) -> str:
        where = "header" if self.frame_index < 0 else f"frame {self.frame_index}"
        return f"{self.code} at {where} (byte offset {self.offset}): {self.message}"
