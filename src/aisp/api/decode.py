"""Decode an uploaded image to an RGB array, refusing damaged JPEGs instead of guessing.

JPEGs are decoded by libjpeg-turbo through ``simplejpeg`` in strict mode, straight to RGB. libjpeg
*warns* (it does not fail) when the entropy-coded data ends early: a file cut short and closed
with an ``EOI`` marker (``FF D9``) passes every header check and OpenCV's ``imdecode`` silently
fills the missing rows with grey. Strict mode turns those warnings into errors, so a truncated or
corrupt JPEG is a 400 naming the ``file`` field, at no extra cost: it is the same one decode
(``docs/api.md`` has the measured cost). Warnings that do not mean lost data (for example
extraneous bytes before a marker, which some cameras write) are tolerated: the image is decoded
again without strict mode. JPEGs libjpeg-turbo cannot convert to RGB (CMYK, YCCK) go to OpenCV.

The EXIF orientation read from the header (:attr:`aisp.api.imageinfo.ImageInfo.orientation`) is
applied the way OpenCV's ``imread``/``imdecode`` apply it, so the array is the one a user gets from
``cv2.imread`` (converted to RGB), and ``model.infer()`` on it gives the API's answer.

``factor`` 2 asks libjpeg for a half-scale decode (DCT scaling; see
:func:`aisp.api.frame_processing.decode_reduction`). PNG and WebP are decoded by OpenCV.
numpy, OpenCV and simplejpeg are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aisp.api.imageinfo import ImageInfo
from aisp.errors import ValidationError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["decode_rgb", "orient", "is_data_loss"]

#: libjpeg warnings that mean image data is missing or wrong (JWRN_JPEG_EOF, JWRN_HIT_MARKER,
#: JWRN_HUFF_BAD_CODE, JWRN_NOT_SEQUENTIAL, JWRN_MUST_RESYNC), matched in lower case
_DATA_LOSS = ("premature end", "huffman", "invalid sos", "must resync", "not sequential")


def is_data_loss(message: str) -> bool:
    """Whether a libjpeg warning text means part of the image data is missing or corrupt."""
    text = message.lower()
    return any(part in text for part in _DATA_LOSS)


def _damaged(info: ImageInfo, size: int, why: str) -> ValidationError:
    fmt = info.format.upper()
    return ValidationError(
        f"damaged {fmt} image ({size} bytes): {why}; the file is truncated or corrupt",
        field="file",
        expected=f"a complete {fmt} image",
    )


def decode_rgb(data: bytes, info: ImageInfo, factor: int = 1) -> np.ndarray:
    """The image as an upright ``(H, W, 3)`` uint8 RGB array (``factor`` 2: JPEG at half scale).

    Raises :class:`aisp.errors.ValidationError` (400, ``field="file"``) for data that does not
    decode, or a JPEG whose data ends early or is corrupt.
    """
    if info.format == "jpeg":
        return orient(_jpeg(data, info, factor), info.orientation)
    import cv2
    import numpy as np

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise _damaged(info, len(data), "the decoder could not read it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _jpeg(data: bytes, info: ImageInfo, factor: int) -> np.ndarray:
    import simplejpeg

    kwargs = {}
    if factor > 1:  # the smallest DCT scale that keeps both sides >= 1/factor
        kwargs = {
            "min_width": -(-info.width // factor),
            "min_height": -(-info.height // factor),
            "min_factor": float(factor),
        }
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True, **kwargs)
    except ValueError as exc:
        message = str(exc)
    if is_data_loss(message):
        raise _damaged(info, len(data), message.rstrip(".")) from None
    try:  # a harmless warning: decode without strict mode
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=False, **kwargs)
    except ValueError:
        pass
    return _jpeg_opencv(data, info, factor)


def _jpeg_opencv(data: bytes, info: ImageInfo, factor: int) -> np.ndarray:
    """JPEGs libjpeg-turbo's RGB output does not handle (CMYK/YCCK): OpenCV, without its own
    EXIF rotation (``orient`` applies it, as for every JPEG)."""
    import cv2
    import numpy as np

    flag = (cv2.IMREAD_REDUCED_COLOR_2 if factor == 2 else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if bgr is None:
        raise _damaged(info, len(data), "the decoder could not read it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def orient(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) as OpenCV's ``imread`` does: the result is upright."""
    if orientation <= 1 or orientation > 8:
        return rgb
    import cv2

    if orientation == 2:
        return cv2.flip(rgb, 1)
    if orientation == 3:
        return cv2.rotate(rgb, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(rgb, 0)
    if orientation == 5:
        return cv2.transpose(rgb)
    if orientation == 6:
        return cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(rgb), -1)
    return cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
