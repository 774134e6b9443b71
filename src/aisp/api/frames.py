"""The work behind ``POST /api/frames/process``: read the upload, guard it, decode, infer.

Order of checks (cheap first, so a bad request costs almost nothing):

1. model names known (404 before reading the body);
2. body size (the middleware: ``Content-Length``, then counted bytes; 413);
3. format and pixel count from the header only (:mod:`aisp.api.imageinfo`; 415, 400 or 413),
   so a decompression bomb is refused before any decoder allocates it; truncated files are
   refused too (decoders would return a half-grey image);
4. then, in the bounded inference pool (503 ``OVERLOADED`` when saturated): decode with OpenCV
   (``IMREAD_COLOR``, BGR to RGB once), run each model on this pool thread's own instance
   (``load_model(name, instance=thread_index)``), optionally annotate and encode a JPEG.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from aisp.api.imageinfo import ImageInfo, probe_image
from aisp.errors import PayloadTooLargeError, UnsupportedMediaError, ValidationError

__all__ = ["read_image", "check_image", "infer_image", "FrameOutcome", "RAW_MEDIA_TYPES"]

RAW_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "application/octet-stream")


async def read_image(request: Request) -> bytes:
    """The image bytes from a raw body or a multipart ``file`` field."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=8)
        except Exception as exc:  # python-multipart / starlette parse errors
            raise ValidationError(
                f"invalid multipart body: {exc}",
                field="file",
                expected="multipart/form-data with a 'file' field",
            ) from None
        try:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ValidationError(
                    "missing multipart field 'file': expected the image as a file part named 'file'",
                    field="file",
                    expected="a file part named 'file'",
                )
            return await upload.read()
        finally:
            await form.close()
    if ctype and ctype not in RAW_MEDIA_TYPES and not ctype.startswith("image/"):
        raise UnsupportedMediaError(
            f"unsupported content type {ctype!r}: expected image/jpeg, image/png, image/webp, "
            "application/octet-stream or multipart/form-data with a 'file' field",
            media_type=ctype,
        )
    return body


def check_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    info = probe_image(data)
    if info.pixels > max_pixels:
        raise PayloadTooLargeError(
            f"image too large: {info.width}x{info.height} = {info.pixels} pixels, limit {max_pixels} "
            "(setting max_pixels)",
            limit=max_pixels,
            actual=info.pixels,
            details={"width": info.width, "height": info.height},
        )
    if not info.complete:
        raise ValidationError(
            f"truncated {info.format.upper()} image ({len(data)} bytes): the end of the image is missing",
            field="file",
            expected=f"a complete {info.format.upper()} image",
        )
    return info


@dataclass
class FrameOutcome:
    results: dict[str, Any]  # model name -> ModelResult
    decode_ms: float
    total_ms: float
    jpeg: bytes | None = None


def infer_image(
    data: bytes, info: ImageInfo, names: list[str], *, annotate: bool, instance: int
) -> FrameOutcome:
    """Decode and run the models (called on an inference pool thread)."""
    import cv2
    import numpy as np

    from aisp.models import load_model

    t0 = time.perf_counter()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValidationError(
            f"could not decode the {info.format.upper()} image ({len(data)} bytes); the file is damaged",
            field="file",
            expected=f"a valid {info.format.upper()} image",
        )
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    t1 = time.perf_counter()
    results: dict[str, Any] = {}
    for name in names:
        model = load_model(name, instance=f"api{instance}")
        results[name] = model.infer(rgb)
    jpeg = None
    if annotate:
        from aisp.models.annotate import annotate as draw

        out = draw(rgb, results.values())
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:  # pragma: no cover - OpenCV can always encode uint8 RGB
            raise RuntimeError("JPEG encoding of the annotated image failed")
        jpeg = buf.tobytes()
    t2 = time.perf_counter()
    return FrameOutcome(results, (t1 - t0) * 1000, (t2 - t0) * 1000, jpeg)
