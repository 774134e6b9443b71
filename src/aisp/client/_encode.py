"""Images in, request bodies out: a path, bytes, a PIL image or a numpy RGB array.

* a path (``str`` or ``os.PathLike``) or ``bytes``: sent as they are when they are a JPEG, PNG or
  WebP (told by their first bytes; the server reads nothing else), so a file is never re-encoded;
* a PIL image: encoded by PIL (converted to RGB first when it has another mode);
* a numpy array: ``uint8`` RGB ``(H, W, 3)``, RGBA ``(H, W, 4)`` (alpha dropped) or grey
  ``(H, W)``, encoded with OpenCV after converting RGB to OpenCV's BGR once, here.

``format`` picks JPEG (default, ``quality`` 90) or PNG (lossless) for what has to be encoded.
numpy, OpenCV and PIL are imported only when such an image is passed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aisp.errors import UnsupportedMediaError, ValidationError

__all__ = ["encode_image", "sniff", "ImageInput"]

#: what :func:`encode_image` accepts
ImageInput = Any  # str | os.PathLike | bytes | PIL.Image.Image | numpy.ndarray

_MEDIA = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def sniff(data: bytes) -> str | None:
    """``"jpeg"``, ``"png"`` or ``"webp"`` from the first bytes, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _check_format(fmt: str, quality: int) -> str:
    fmt = fmt.lower()
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt not in ("jpeg", "png"):
        raise ValidationError(f"format: expected 'jpeg' or 'png', got {fmt!r}", field="format", value=fmt)
    if not 1 <= int(quality) <= 100:
        raise ValidationError(f"quality: expected 1..100, got {quality}", field="quality", value=quality)
    return fmt


def encode_image(image: ImageInput, *, format: str = "jpeg", quality: int = 90) -> tuple[bytes, str]:
    """``(body, content type)`` for ``image`` (see the module doc)."""
    fmt = _check_format(format, quality)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _as_is(bytes(image), "bytes")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValidationError(
                f"image: cannot read {str(path)!r}: {exc.strerror or exc}", field="image", value=str(path)
            ) from None
        return _as_is(data, str(path))
    module = type(image).__module__
    if module.startswith("PIL."):
        return _encode_pil(image, fmt, quality)
    if module == "numpy":
        return _encode_array(image, fmt, quality)
    raise ValidationError(
        f"image: expected a path, bytes, a PIL image or a numpy RGB array, got {type(image).__name__}",
        field="image",
        expected="path | bytes | PIL.Image.Image | numpy.ndarray",
    )


def _as_is(data: bytes, what: str) -> tuple[bytes, str]:
    fmt = sniff(data)
    if fmt is None:
        raise UnsupportedMediaError(
            f"image: {what} is not a JPEG, PNG or WebP image (the server reads only those); "
            "pass a decoded image (PIL or numpy) to have it encoded",
            media_type="unknown",
        )
    return data, _MEDIA[fmt]


def _encode_pil(image: Any, fmt: str, quality: int) -> tuple[bytes, str]:
    import io

    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buf = io.BytesIO()
    if fmt == "jpeg":
        image.save(buf, format="JPEG", quality=int(quality))
    else:
        image.save(buf, format="PNG")
    return buf.getvalue(), _MEDIA[fmt]


def _encode_array(array: Any, fmt: str, quality: int) -> tuple[bytes, str]:
    import cv2
    import numpy as np

    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise ValidationError(
            f"image: expected a uint8 array, got dtype {a.dtype}", field="image", expected="uint8"
        )
    if a.size == 0:
        raise ValidationError("image: the array is empty", field="image", expected="a non-empty image")
    if a.ndim == 3 and a.shape[2] == 4:
        bgr = cv2.cvtColor(a, cv2.COLOR_RGBA2BGR)
    elif a.ndim == 3 and a.shape[2] == 3:
        bgr = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    elif a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
        bgr = a.reshape(a.shape[0], a.shape[1])
    else:
        raise ValidationError(
            f"image: expected shape (H, W, 3) RGB, (H, W, 4) RGBA or (H, W), got {tuple(a.shape)}",
            field="image",
            expected="(H, W, 3)",
        )
    ext, params = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)]) if fmt == "jpeg" else (".png", [])
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValidationError(f"image: OpenCV could not encode it as {fmt}", field="image")
    return buf.tobytes(), _MEDIA[fmt]


def decode_jpeg_rgb(data: bytes) -> Any:
    """An RGB ``uint8`` array from JPEG/PNG bytes (the annotated image)."""
    import cv2
    import numpy as np

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValidationError("the server's image could not be decoded", field="image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
