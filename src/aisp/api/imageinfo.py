"""Read an image's format and size from its header, before decoding it.

The frames route uses this as its decompression-bomb guard: a 100-megapixel PNG of zeros is a
few hundred kilobytes on the wire but 300 MB once decoded, so the pixel count is checked from the
header (PNG ``IHDR``, JPEG ``SOFn``, WebP ``VP8 ``/``VP8L``/``VP8X``) and the image is refused
before any decoder allocates it. Pure Python, no dependencies.

It also says whether the payload looks complete (JPEG ends with ``EOI``, PNG with ``IEND``, WebP's
RIFF size matches), because decoders happily return half-grey images from truncated files. (A
truncated JPEG with an ``EOI`` appended passes this check; the decoder catches it, see
:mod:`aisp.api.jpeg`.) For a JPEG it also reads the EXIF orientation (``APP1``), so that the
decoder can turn the image upright as OpenCV's ``imread`` does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from aisp.errors import UnsupportedMediaError, ValidationError

__all__ = ["ImageInfo", "probe_image", "MEDIA_TYPES"]

MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carrying the size: SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "jpeg" | "png" | "webp"
    width: int
    height: int
    complete: bool
    orientation: int = 1  # EXIF orientation (1-8, JPEG only); 1 is upright

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def probe_image(data: bytes) -> ImageInfo:
    """Format, width, height and completeness of an encoded image.

    Raises :class:`UnsupportedMediaError` for anything that is not JPEG, PNG or WebP and
    :class:`ValidationError` for a recognised format whose header is damaged.
    """
    if not data:
        raise ValidationError(
            "empty body: expected a JPEG, PNG or WebP image", field="file", expected="image bytes"
        )
    if data.startswith(_PNG_SIG):
        return _png(data)
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    raise UnsupportedMediaError(
        f"unsupported image format: expected JPEG, PNG or WebP, got bytes starting with {data[:8].hex()}",
        media_type="application/octet-stream",
    )


def _damaged(fmt: str, what: str) -> ValidationError:
    return ValidationError(
        f"damaged {fmt.upper()} image: {what}", field="file", expected=f"a complete {fmt.upper()} image"
    )


def _png(data: bytes) -> ImageInfo:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _damaged("png", "missing IHDR header")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise _damaged("png", f"zero size {width}x{height}")
    complete = b"IEND" in data[-16:]
    return ImageInfo("png", width, height, complete)


def _jpeg(data: bytes) -> ImageInfo:
    i, n = 2, len(data)
    orientation = 1
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise _damaged("jpeg", f"expected a marker at byte {i}, got 0x{data[i]:02x}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD8:  # standalone markers
            i += 2
            continue
        if marker == 0xD9:
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise _damaged("jpeg", f"segment length {length} at byte {i}")
        if marker in _SOF:
            if i + 9 > n:
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            if width == 0 or height == 0:
                raise _damaged("jpeg", f"zero size {width}x{height}")
            complete = data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")
            return ImageInfo("jpeg", width, height, complete, orientation)
        if marker == 0xDA:  # start of scan before any frame header
            break
        if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\x00\x00":
            orientation = _exif_orientation(data[i + 10 : i + 2 + length])
        i += 2 + length
    raise _damaged("jpeg", "no frame header (SOF) found; the file is truncated or not a JPEG")


def _exif_orientation(tiff: bytes) -> int:
    """The Orientation tag (0x0112) of IFD0 of an EXIF TIFF block; 1 when absent or damaged."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(end + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack(end + "H", tiff[ifd : ifd + 2])
    for k in range(min(count, 512)):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(tiff):
            return 1
        tag, kind = struct.unpack(end + "HH", tiff[entry : entry + 4])
        if tag == 0x0112 and kind == 3:  # SHORT, stored left-aligned in the value field
            (value,) = struct.unpack(end + "H", tiff[entry + 8 : entry + 10])
            return value if 1 <= value <= 8 else 1
    return 1


def _webp(data: bytes) -> ImageInfo:
    if len(data) < 30:
        raise _damaged("webp", "header shorter than 30 bytes")
    (riff_size,) = struct.unpack("<I", data[4:8])
    complete = len(data) >= riff_size + 8
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
    elif chunk == b"VP8L":
        if data[20] != 0x2F:
            raise _damaged("webp", "bad VP8L signature")
        bits = int.from_bytes(data[21:25], "little")
        width = (bits & 0x3FFF) + 1
        height = ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise _damaged("webp", "bad VP8 key frame start code")
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
    else:
        raise _damaged("webp", f"unknown first chunk {chunk!r}")
    if width == 0 or height == 0:
        raise _damaged("webp", f"zero size {width}x{height}")
    return ImageInfo("webp", width, height, complete)
