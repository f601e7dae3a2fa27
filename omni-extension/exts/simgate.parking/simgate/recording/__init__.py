"""Recorded simulation runs (.simrec): the same format as the gateway's TypeScript reader and writer.

    from simgate.recording import RecordingWriter, RecordingReader
"""
from .errors import RecordingError
from .format import FORMAT_VERSION, MAGIC
from .reader import CorruptFrame, RecordedFrame, RecordingReader
from .writer import RecordingWriter, canonical_bytes, encode_recording

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "CorruptFrame",
    "RecordedFrame",
    "RecordingError",
    "RecordingReader",
    "RecordingWriter",
    "canonical_bytes",
    "encode_recording",
]
