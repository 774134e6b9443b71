"""Image headers read without decoding: JPEG, PNG, WebP; truncation; bombs; garbage."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from aisp.api.imageinfo import probe_image
from aisp.errors import UnsupportedMediaError, ValidationError
from tests.api.conftest import encode, test_image


def big_png(width: int, height: int) -> bytes:
    """A valid black grayscale PNG, built directly (a 10000x10000 one is ~100 KB)."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(b"".join(b"\x00" + bytes(width) for _ in range(height)), 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("ext", "fmt", "params"),
    [
        (".jpg", "jpeg", []),
        (".png", "png", []),
        (".webp", "webp", []),  # lossy VP8
        (".webp", "webp", [64, 101]),
    ],  # IMWRITE_WEBP_QUALITY=101: lossless VP8L
)
def test_sizes_from_headers(ext: str, fmt: str, params: list[int]) -> None:
    import cv2

    ok, buf = cv2.imencode(ext, test_image(321, 123), params)
    assert ok
    info = probe_image(buf.tobytes())
    assert (info.format, info.width, info.height, info.complete) == (fmt, 321, 123, True)


def test_progressive_jpeg() -> None:
    import cv2

    ok, buf = cv2.imencode(".jpg", test_image(200, 100), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    info = probe_image(buf.tobytes())
    assert (info.width, info.height) == (200, 100)


def test_hundred_megapixel_png_is_measured_not_decoded() -> None:
    data = big_png(10_000, 10_000)
    assert len(data) < 1_000_000
    info = probe_image(data)
    assert info.pixels == 100_000_000 and info.complete


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_truncated_is_incomplete_or_damaged(ext: str) -> None:
    data = encode(test_image(), ext)
    cut = data[: len(data) // 2]
    try:
        info = probe_image(cut)
    except ValidationError:
        return
    assert info.complete is False


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", ValidationError),
        (b"hello world, not an image", UnsupportedMediaError),
        (bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), UnsupportedMediaError),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, ValidationError),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", ValidationError),
        (b"RIFF\x00\x00\x00\x00WEBPVP8Z" + b"\x00" * 20, ValidationError),
    ],
)
def test_bad_bytes(data: bytes, error: type) -> None:
    with pytest.raises(error) as exc:
        probe_image(data)
    assert exc.value.message
