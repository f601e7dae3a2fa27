"""Image encoding: PNG with the standard library, JPEG through Pillow, raw RGBA, coded errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from simgate.parking.images import CODE_BAD_PIXELS, CODE_UNSUPPORTED, ImageEncodingError, RgbaFrame, encode, encode_png
from simgate.v1 import simgate_pb2


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """What the rgb annotator hands over: (height, width, 4) uint8."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 4 % 256, y * 5 % 256, (x + y) % 256, np.full_like(x, 255)], axis=-1).astype(np.uint8)


def test_png_decodes_to_the_same_pixels() -> None:
    pixels = gradient()
    encoded = encode(RgbaFrame.from_array(pixels), "png")
    assert (encoded.encoding, encoded.width, encoded.height, encoded.content_type) == (
        simgate_pb2.IMAGE_ENCODING_PNG, 64, 48, "image/png")
    decoded = Image.open(io.BytesIO(encoded.data))
    assert decoded.format == "PNG" and decoded.mode == "RGBA" and decoded.size == (64, 48)
    assert np.array_equal(np.asarray(decoded), pixels)


def test_jpeg_has_the_right_size_and_close_colours() -> None:
    pixels = np.zeros((32, 40, 4), np.uint8)
    pixels[..., 0], pixels[..., 3] = 200, 255
    encoded = encode(RgbaFrame.from_array(pixels), "jpeg", jpeg_quality=95)
    decoded = Image.open(io.BytesIO(encoded.data))
    assert decoded.format == "JPEG" and decoded.size == (40, 32)
    assert abs(int(np.asarray(decoded)[16, 20, 0]) - 200) <= 3


def test_raw_passes_the_bytes_through_and_rgb_gets_an_alpha_channel() -> None:
    rgb = gradient(8, 4)[..., :3].copy()
    encoded = encode(RgbaFrame.from_array(rgb), "raw")
    assert encoded.encoding == simgate_pb2.IMAGE_ENCODING_RAW_RGBA8
    assert len(encoded.data) == 8 * 4 * 4
    back = np.frombuffer(encoded.data, np.uint8).reshape(4, 8, 4)
    assert np.array_equal(back[..., :3], rgb) and (back[..., 3] == 255).all()


@pytest.mark.parametrize(
    "data",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 4), np.float32), b"not an array"],
)
def test_bad_pixels_get_a_coded_error(data) -> None:
    with pytest.raises(ImageEncodingError) as err:
        RgbaFrame.from_array(data)
    assert err.value.code == CODE_BAD_PIXELS


def test_size_mismatch_and_unknown_encoding_are_coded_errors() -> None:
    with pytest.raises(ImageEncodingError) as err:
        RgbaFrame(4, 4, b"\0" * 10)
    assert err.value.code == CODE_BAD_PIXELS
    with pytest.raises(ImageEncodingError) as err:
        encode(RgbaFrame(1, 1, b"\0\0\0\0"), "bmp")
    assert err.value.code == CODE_UNSUPPORTED


def test_png_of_a_camera_sized_frame_is_smaller_than_raw() -> None:
    frame = RgbaFrame.from_array(np.zeros((720, 1280, 4), np.uint8))
    png = encode_png(frame)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) < len(frame.pixels) // 50


def test_raw_images_of_a_frame_are_encoded_into_a_new_frame_off_the_simulation_thread() -> None:
    from simgate.parking.images import encode_frame_images

    pixels = gradient(16, 8)
    frame = simgate_pb2.ClientFrame()
    frame.event.event_id = "e1"
    frame.event.images.add(view="entry", encoding=simgate_pb2.IMAGE_ENCODING_RAW_RGBA8, width=16, height=8,
                           data=pixels.tobytes())
    frame.event.images.add(view="exit", encoding=simgate_pb2.IMAGE_ENCODING_JPEG, width=1, height=1, data=b"jpeg")
    out = encode_frame_images(frame, "png")
    assert out is not frame and frame.event.images[0].encoding == simgate_pb2.IMAGE_ENCODING_RAW_RGBA8  # untouched
    assert out.event.images[0].encoding == simgate_pb2.IMAGE_ENCODING_PNG
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out.event.images[0].data))), pixels)
    assert out.event.images[1].data == b"jpeg"  # already encoded: left alone
    assert encode_frame_images(out, "png") is out  # nothing raw left: the same frame back
    assert encode_frame_images(frame, "raw") is frame
    bad = simgate_pb2.ClientFrame()
    bad.event.images.add(view="entry", encoding=simgate_pb2.IMAGE_ENCODING_RAW_RGBA8, width=4, height=4, data=b"short")
    kept = encode_frame_images(bad, "png")
    assert kept.event.images[0].data == b"short" and kept.event.attributes["imageError"].startswith(CODE_BAD_PIXELS)
