"""Image encoding for camera captures (plain Python).

The ``rgb`` annotator of omni.replicator.core returns an (height, width, 4) uint8 array (RGBA). This
module turns such pixels into the bytes an ``Image`` message carries:
- PNG with the standard library only (zlib), so it works in any Kit Python without extra packages;
- JPEG through Pillow when it is importable (Kit ships it; here it is a test dependency);
- raw RGBA8, passed through after its size is checked (the gateway converts it).
Errors are ``ImageEncodingError`` with a stable code, never a crash of the caller.
"""

from __future__ import annotations

import io
import queue
import struct
import sys
import threading
import zlib
from dataclasses import dataclass
from typing import Any, Optional

from .wire import simgate_pb2

CODE_BAD_PIXELS = "EXT_ERR_IMAGE_PIXELS"
CODE_UNSUPPORTED = "EXT_ERR_IMAGE_ENCODING"


class ImageEncodingError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _dtype_name(data: Any) -> str:
    """numpy's dtype name, or a Warp array's (its dtype is a class such as warp.types.uint8)."""
    dtype = getattr(data, "dtype", "uint8")
    return str(getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or dtype)


def host_array(data: Any) -> Any:
    """The pixels in host memory: a device array (a ``warp.array`` on the GPU) is copied to a numpy array,
    which is the device-to-host copy, so only ever called off the simulation thread; host arrays pass."""
    if not hasattr(data, "tobytes") and hasattr(data, "numpy"):
        return data.numpy()
    return data


def check_pixels(data: Any) -> None:
    """Shape and type of an annotator's array, without touching its pixels (cheap: on the main thread)."""
    shape = getattr(data, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] not in (3, 4) or shape[0] <= 0 or shape[1] <= 0:
        raise ImageEncodingError(CODE_BAD_PIXELS, f"expected an (height, width, 3|4) array, got shape {shape}")
    dtype = _dtype_name(data)
    if dtype != "uint8":
        raise ImageEncodingError(CODE_BAD_PIXELS, f"expected uint8 pixels, got {dtype}")


class FramePool:
    """Copies of the renderer's frame into recycled buffers, for the simulation thread.

    The rgb annotator made with ``do_array_copy=False`` hands over a view of Replicator's own host buffer,
    which the next finished frame overwrites: the pixels must be copied before the update returns. A new
    array per copy (what ``get_data`` does with ``do_array_copy=True``) costs an allocation and a page fault
    per 4 KiB page whenever earlier copies are still held by the worker; here the copy goes into a buffer of
    this pool that nobody holds any more (its only reference is the pool's, as Replicator recycles its own
    output arrays), so it costs one memcpy. The copy is a memoryview assignment, which keeps the GIL: numpy's
    copy releases it for large arrays, and a worker thread that takes it then may keep Kit's main thread
    waiting for up to the interpreter's switch interval (5 ms).

    Buffers are made, touched and freed off the simulation thread, by the pool's own thread: ``prepare`` at
    run start; ``GROW_BY`` more whenever the last free buffer is taken (the worker has fallen behind and
    holds the others), up to ``keep`` per shape; and once the backlog is gone, free buffers beyond ``SPARE``
    are handed back to that thread to be freed, one per copy. Only when all ``keep`` are held does a copy go
    into a new array on the simulation thread (counted in ``allocated``): never a wait, never a lost picture."""

    GROW_BY = 4
    SPARE = 8

    def __init__(self, keep: int = 64) -> None:
        import numpy  # Kit always has it (the annotator's arrays are numpy arrays)

        self._np = numpy
        self.keep = keep
        self._buffers: dict[tuple[tuple[int, ...], str], list[Any]] = {}
        self._growing: set[tuple[tuple[int, ...], str]] = set()
        self._requests: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        # Started here (run start), never from a copy: Thread.start() waits for the new thread to run.
        self._thread: Optional[threading.Thread] = threading.Thread(target=self._serve, name="simgate-frame-pool",
                                                                    daemon=True)
        self._thread.start()
        self.reused = 0
        self.allocated = 0
        self.trimmed = 0

    def prepare(self, shape: tuple[int, ...], count: int = 2, dtype: str = "uint8") -> None:
        """Buffers made and touched in advance, up to ``count`` (at run start, or on the pool's own thread): a
        new buffer's first copy would page-fault every page of it on the simulation thread."""
        key = (tuple(shape), dtype)
        buffers = self._buffers.setdefault(key, [])
        while len(buffers) < min(count, self.keep):
            buffer = self._np.empty(shape, dtype)
            buffer.fill(0)  # fault the pages in now
            buffers.append(buffer)  # (list.append is atomic: the simulation thread may scan the list meanwhile)

    def prepare_in_background(self, shape: tuple[int, ...], count: int, dtype: str = "uint8") -> None:
        """The same on the pool's own thread."""
        key = (tuple(shape), dtype)
        self._growing.add(key)
        self._request(("grow", key, count))

    def close(self) -> None:
        """Ends the pool's thread (what it was asked before is done first)."""
        if self._thread is not None:
            self._requests.put(("stop",))
            self._thread = None

    def _request(self, request: tuple) -> None:
        self._requests.put(request)  # (after close nothing serves it: the pool is no longer used)

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request[0] == "stop":
                return
            if request[0] == "grow":
                _, key, count = request
                try:
                    self.prepare(key[0], count, key[1])
                finally:
                    self._growing.discard(key)
            del request  # "free": the buffer's last reference goes here, and its memory with it

    def _free_buffer(self, shape: tuple[int, ...], dtype: str) -> Any:
        key = (shape, dtype)
        buffers = self._buffers.setdefault(key, [])
        found, free, spare = None, 0, None
        for i in range(len(buffers)):
            if sys.getrefcount(buffers[i]) == 2:  # the list's reference and getrefcount's argument: nobody else
                free += 1
                if found is None:
                    found = buffers[i]
                elif free > self.SPARE + 1:
                    spare = i
        if spare is not None:  # the backlog is gone: one buffer fewer, freed on the pool's thread
            self.trimmed += 1
            self._request(("free", buffers.pop(spare)))
        elif free <= 1 and len(buffers) < self.keep and key not in self._growing:
            self.prepare_in_background(shape, len(buffers) + self.GROW_BY, dtype)
        if found is not None:
            self.reused += 1
            return found
        self.allocated += 1  # every buffer is held: the worker is `keep` frames behind
        return self._np.empty(shape, dtype)

    def copy_of(self, data: Any) -> Any:
        """A copy of ``data`` (a numpy array) that stays as it is until its holders drop it."""
        np = self._np
        data = np.asarray(data)
        buffer = self._free_buffer(tuple(data.shape), str(data.dtype))
        if data.flags.c_contiguous:
            memoryview(buffer).cast("B")[:] = memoryview(data).cast("B")
        else:
            np.copyto(buffer, data)
        return buffer


@dataclass(frozen=True)
class RgbaFrame:
    """Tightly packed 8-bit RGBA pixels, row-major, top row first."""

    width: int
    height: int
    pixels: bytes

    @classmethod
    def from_array(cls, data: Any) -> "RgbaFrame":
        """From an annotator's (h, w, 4) or (h, w, 3) uint8 array, or anything with that shape (a device array
        is brought to host memory first)."""
        data = host_array(data)
        shape = getattr(data, "shape", None)
        if shape is None or len(shape) != 3 or shape[2] not in (3, 4):
            raise ImageEncodingError(CODE_BAD_PIXELS, f"expected an (height, width, 3|4) array, got shape {shape}")
        height, width, channels = int(shape[0]), int(shape[1]), int(shape[2])
        dtype = str(getattr(data, "dtype", "uint8"))
        if dtype != "uint8":
            raise ImageEncodingError(CODE_BAD_PIXELS, f"expected uint8 pixels, got {dtype}")
        raw = data.tobytes() if hasattr(data, "tobytes") else bytes(memoryview(data))
        if channels == 3:
            raw = _rgb_to_rgba(raw)
        return cls(width, height, raw)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ImageEncodingError(CODE_BAD_PIXELS, f"empty image {self.width}x{self.height}")
        if len(self.pixels) != self.width * self.height * 4:
            raise ImageEncodingError(
                CODE_BAD_PIXELS,
                f"{len(self.pixels)} bytes for {self.width}x{self.height} RGBA (want {self.width * self.height * 4})",
            )


def _rgb_to_rgba(raw: bytes) -> bytes:
    out = bytearray(len(raw) // 3 * 4)
    out[0::4], out[1::4], out[2::4] = raw[0::3], raw[1::3], raw[2::3]
    out[3::4] = b"\xff" * (len(raw) // 3)
    return bytes(out)


@dataclass(frozen=True)
class EncodedImage:
    encoding: int  # simgate_pb2.ImageEncoding value
    width: int
    height: int
    data: bytes
    content_type: str


def encode_png(frame: RgbaFrame, level: int = 1) -> bytes:
    """A PNG (colour type 6, 8 bits, no interlace) built with zlib. Level 1: rendered frames with sensor
    noise hardly compress better at higher levels, which cost twice the time (measured: 1280x720, ~100 ms
    at level 1 against ~220 ms at level 6 on this machine, and a smaller file)."""
    stride = frame.width * 4
    rows = bytearray()
    for y in range(frame.height):
        rows.append(0)  # filter type None for every row: simple and fast enough for camera frames
        rows += frame.pixels[y * stride : (y + 1) * stride]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", frame.width, frame.height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), level)) + chunk(b"IEND", b"")


def encode_jpeg(frame: RgbaFrame, quality: int = 90) -> bytes:
    try:
        from PIL import Image as PilImage  # Kit bundles Pillow; plain installs may not have it
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImageEncodingError(CODE_UNSUPPORTED, f"JPEG needs Pillow ({exc}); use png or raw") from None
    image = PilImage.frombytes("RGBA", (frame.width, frame.height), frame.pixels).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def encode(frame: RgbaFrame, encoding: str, jpeg_quality: int = 90) -> EncodedImage:
    if encoding == "png":
        return EncodedImage(simgate_pb2.IMAGE_ENCODING_PNG, frame.width, frame.height, encode_png(frame), "image/png")
    if encoding == "jpeg":
        return EncodedImage(
            simgate_pb2.IMAGE_ENCODING_JPEG, frame.width, frame.height, encode_jpeg(frame, jpeg_quality), "image/jpeg"
        )
    if encoding == "raw":
        return EncodedImage(
            simgate_pb2.IMAGE_ENCODING_RAW_RGBA8, frame.width, frame.height, frame.pixels, "application/octet-stream"
        )
    raise ImageEncodingError(CODE_UNSUPPORTED, f"unknown encoding {encoding!r} (png, jpeg, raw)")


def encode_frame_images(frame: simgate_pb2.ClientFrame, encoding: str, jpeg_quality: int = 90) -> simgate_pb2.ClientFrame:
    """The frame with its raw RGBA images encoded as ``encoding``: a new frame, the input is not touched
    (it may be shared with another thread). Used off the simulation thread: PNG-encoding a 1280x720
    frame takes on the order of 100 ms, far too long for a simulation update."""
    if encoding == "raw" or frame.WhichOneof("body") != "event":
        return frame
    if not any(image.encoding == simgate_pb2.IMAGE_ENCODING_RAW_RGBA8 for image in frame.event.images):
        return frame
    out = simgate_pb2.ClientFrame()
    out.CopyFrom(frame)
    for image in out.event.images:
        if image.encoding != simgate_pb2.IMAGE_ENCODING_RAW_RGBA8:
            continue
        try:
            encoded = encode(RgbaFrame(image.width, image.height, image.data), encoding, jpeg_quality)
        except ImageEncodingError as exc:  # keep the raw bytes: the gateway converts or rejects them with a code
            out.event.attributes["imageError"] = str(exc)[:200]
            continue
        image.encoding, image.data = encoded.encoding, encoded.data
    return out
