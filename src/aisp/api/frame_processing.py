"""The work behind ``POST /api/frames/process``: read the upload, guard it, decode, infer.

Order of checks (cheap first, so a bad request costs almost nothing):

1. model names known (404 before reading the body);
2. body size (the middleware: ``Content-Length``, then counted bytes; 413);
3. format and pixel count from the header only (:mod:`aisp.api.imageinfo`; 415, 400 or 413),
   so a decompression bomb is refused before any decoder allocates it; truncated files are
   refused too (decoders would return a half-grey image);
4. then, in the bounded inference pool (503 ``OVERLOADED`` when saturated): decode with OpenCV
   (``IMREAD_COLOR``, BGR to RGB once), run each model on this pool thread's own instance
   (``models.load(name, instance="api<thread index>")`` on the app's
   :class:`~aisp.models.ModelRegistry`, resolved once per request), optionally annotate and
   encode a JPEG.

**Reduced decode.** When the image is a JPEG, no annotated image is asked for, and every
requested model resizes the whole frame to a small network input (``network_input_side``, e.g.
128 for BlazeFace short-range), the JPEG is decoded at half scale by libjpeg's DCT scaling
(``cv2.IMREAD_REDUCED_COLOR_2``: it skips most of the IDCT work, and the model then copies and
resizes a quarter of the pixels), as long as the long side stays at least twice the network
input; the results are then scaled back to the original image's pixel coordinates. The network
sees nearly the same pixels (it downsamples much further anyway); tests/api/test_frames_decode.py
checks that boxes match a full decode. Quarter scale is not used: boxes moved too much
(``docs/PERFORMANCE.md`` has the figures of both). The response's ``decode_scale`` says which
scale was used (1 or 2); ``?reduced_decode=false`` turns it off.

``numpy``, ``cv2`` and :mod:`aisp.models` (which imports numpy) are imported when first needed
(the first request's name check, or the runtime's build), not with this module, so
``import aisp.api.app`` stays light.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from aisp.api import modelops
from aisp.api.context import AppContext
from aisp.api.imageinfo import ImageInfo, probe_image
from aisp.errors import PayloadTooLargeError, UnsupportedMediaError, ValidationError

if TYPE_CHECKING:  # aisp.models imports numpy: the app module stays light until the first frame
    import numpy as np

    from aisp.models import Model, ModelRegistry, ModelResult

__all__ = [
    "read_image",
    "check_image",
    "infer_image",
    "decode_for",
    "finish_results",
    "process_image",
    "json_body",
    "decode_reduction",
    "FrameOutcome",
    "FrameAnswer",
    "RAW_MEDIA_TYPES",
    "is_raw_image_type",
]

RAW_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "application/octet-stream")


def is_raw_image_type(ctype: str) -> bool:
    """Whether a (lower-case, parameter-free) Content-Type means the body is the image itself.
    No Content-Type at all counts as a raw body too."""
    return not ctype or ctype in RAW_MEDIA_TYPES or ctype.startswith("image/")


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
    if not is_raw_image_type(ctype):
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
    results: dict[str, ModelResult]  # model name -> its result, in request order
    decode_ms: float
    total_ms: float
    jpeg: bytes | None = None
    decode_scale: int = 1


def decode_reduction(
    info: ImageInfo, models: Sequence[object], *, annotate: bool, allowed: bool = True
) -> int:
    """The JPEG decode scale divisor, 1 or 2, for these models (see the module doc).

    2 when reduction is ``allowed``, no annotation is wanted, the image is a JPEG, every model
    declares a ``network_input_side`` (:class:`aisp.models.Model`) and half the long
    side is at least twice the largest one.
    """
    if not allowed or annotate or info.format != "jpeg" or not models:
        return 1
    sides = [m.network_input_side for m in models]
    known = [side for side in sides if isinstance(side, int) and side > 0]
    if len(known) != len(sides):
        return 1
    long_side = max(info.width, info.height)
    return 2 if long_side // 2 >= 2 * max(known) else 1


def decode_for(data: bytes, info: ImageInfo, loaded: Sequence[Model], *, annotate: bool,
               reduced_decode: bool = True) -> tuple[np.ndarray, int]:
    """The RGB image of ``data`` for ``loaded`` models, and the decode scale (1 or 2)."""
    import cv2
    import numpy as np

    factor = decode_reduction(info, loaded, annotate=annotate, allowed=reduced_decode)
    flag = cv2.IMREAD_REDUCED_COLOR_2 if factor == 2 else cv2.IMREAD_COLOR
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if bgr is None:
        raise ValidationError(
            f"could not decode the {info.format.upper()} image ({len(data)} bytes); the file is damaged",
            field="file",
            expected=f"a valid {info.format.upper()} image",
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), factor


def finish_results(rgb: np.ndarray, info: ImageInfo, results: dict[str, ModelResult], factor: int,
                   *, annotate: bool) -> tuple[dict[str, ModelResult], bytes | None]:
    """Results in the original image's pixels (undo a reduced decode), and the annotated JPEG."""
    if factor > 1:
        h, w = rgb.shape[:2]
        # OpenCV applies EXIF orientation, which may swap the header's width and height
        full_w, full_h = (info.width, info.height)
        if abs(w * factor - full_w) > factor or abs(h * factor - full_h) > factor:
            full_w, full_h = full_h, full_w
        sx, sy = full_w / w, full_h / h
        results = {name: res.scaled(sx, sy) for name, res in results.items()}
    jpeg = None
    if annotate:
        import cv2

        from aisp.models.annotate import annotate as draw  # aisp.models imports numpy: see above

        out = draw(rgb, results.values())
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:  # pragma: no cover - OpenCV can always encode uint8 RGB
            raise RuntimeError("JPEG encoding of the annotated image failed")
        jpeg = buf.tobytes()
    return results, jpeg


def infer_image(
    data: bytes,
    info: ImageInfo,
    names: Sequence[str],
    *,
    models: ModelRegistry,
    instance: int,
    annotate: bool,
    reduced_decode: bool = True,
) -> FrameOutcome:
    """Decode and run the models (called on an inference pool thread).

    ``instance`` is the pool thread's index: each model is this thread's own instance
    (``api<instance>``) from ``models``, so non-thread-safe models are never shared.
    """
    loaded: list[Model] = [models.load(name, instance=modelops.api_instance(instance)) for name in names]
    t0 = time.perf_counter()
    rgb, factor = decode_for(data, info, loaded, annotate=annotate, reduced_decode=reduced_decode)
    t1 = time.perf_counter()
    results = {name: model.infer(rgb) for name, model in zip(names, loaded, strict=True)}
    results, jpeg = finish_results(rgb, info, results, factor, annotate=annotate)
    t2 = time.perf_counter()
    return FrameOutcome(results, (t1 - t0) * 1000, (t2 - t0) * 1000, jpeg, factor)


@dataclass
class FrameAnswer:
    """What ``POST /api/frames/process`` answers with on success."""

    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


async def process_image(
    ctx: AppContext, data: bytes, names: Sequence[str], *, annotate: bool, reduced_decode: bool
) -> FrameAnswer:
    """Check the image (on the event loop: header only), then decode, infer and build the answer
    on an inference pool thread, so the event loop stays free for I/O. ``names`` must have been
    checked (:func:`aisp.api.modelops.check_models`). Raises :class:`aisp.errors.AISPError`s
    (503 ``OVERLOADED`` while the app's models are not built yet). Models that take batches go
    through the app's dynamic batcher when it is on (:mod:`aisp.api.batcher`)."""
    info = check_image(data, max_pixels=ctx.settings.max_pixels)
    models = ctx.models  # once per request
    pool = ctx.inference
    if pool is None:  # pragma: no cover - the context creates it
        raise RuntimeError("the inference pool is not running")
    batcher = ctx.batcher
    # only ONNX models are batched (FrameBatcher.batchable): other requests keep the one-hop path
    if batcher is not None and batcher.enabled and not annotate and any(
        name.startswith(modelops.ONNX_PREFIX) for name in names
    ):
        outcome = await _process_batched(ctx, data, info, names, models, reduced_decode)
        body: bytes | None = json_body(info, outcome)
    else:

        def job() -> tuple[FrameOutcome, bytes | None]:
            outcome = infer_image(
                data,
                info,
                names,
                models=models,
                instance=pool.thread_index(),
                annotate=annotate,
                reduced_decode=reduced_decode,
            )
            return outcome, None if annotate else json_body(info, outcome)

        outcome, body = await pool.run(job)
    for name, res in outcome.results.items():
        ctx.metrics.observe_inference(name, res.inference_ms, "api")
    if body is None:
        assert outcome.jpeg is not None
        return FrameAnswer(outcome.jpeg, "image/jpeg", {"X-Inference-Ms": f"{outcome.total_ms:.2f}"})
    return FrameAnswer(body, "application/json")


async def _process_batched(ctx: AppContext, data: bytes, info: ImageInfo, names: Sequence[str],
                           models: ModelRegistry, reduced_decode: bool) -> FrameOutcome:
    """Decode (and run the models that do not batch) on a pool thread, then hand the frame to the
    batcher for each model that does; the answer is the one :func:`infer_image` gives."""
    pool, batcher = ctx.inference, ctx.batcher
    assert pool is not None and batcher is not None

    def decode_job() -> tuple[np.ndarray, int, float, dict[str, ModelResult], list[str]]:
        loaded = [models.load(name, instance=modelops.api_instance(pool.thread_index())) for name in names]
        t0 = time.perf_counter()
        rgb, factor = decode_for(data, info, loaded, annotate=False, reduced_decode=reduced_decode)
        decode_ms = (time.perf_counter() - t0) * 1000
        alone = {n: m.infer(rgb) for n, m in zip(names, loaded, strict=True) if not batcher.batchable(m)}
        batched = [n for n, m in zip(names, loaded, strict=True) if batcher.batchable(m)]
        return rgb, factor, decode_ms, alone, batched

    t0 = time.perf_counter()
    rgb, factor, decode_ms, alone, batched = await pool.run(decode_job)
    together = await asyncio.gather(*(batcher.infer(pool, models, name, rgb) for name in batched))
    found = {**alone, **dict(zip(batched, together, strict=True))}
    results, _ = finish_results(rgb, info, {name: found[name] for name in names}, factor, annotate=False)
    return FrameOutcome(results, decode_ms, (time.perf_counter() - t0) * 1000, None, factor)


def json_body(info: ImageInfo, outcome: FrameOutcome) -> bytes:
    """The FrameProcessResponse (documented by the route's ``response_model``) as JSON bytes,
    built from plain dicts and serialised once: skipping FastAPI's validation and re-encoding
    of the response model on this hot path."""
    results = outcome.results
    body = {
        "width": info.width,
        "height": info.height,
        "format": info.format,
        "models": {name: res.to_dict() for name, res in results.items()},
        "inference_ms": {name: round(float(res.inference_ms), 3) for name, res in results.items()},
        "decode_ms": round(outcome.decode_ms, 3),
        "decode_scale": outcome.decode_scale,
        "total_ms": round(outcome.total_ms, 3),
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
