"""The work behind ``POST /api/frames/process``: read the upload, guard it, decode, infer.

Order of checks (cheap first, so a bad request costs almost nothing):

1. model names known, ``onnx:`` files present and plausible (404/422 before reading the body);
2. body size (the middleware: ``Content-Length``, then counted bytes; 413);
3. format and pixel count from the header only (:mod:`aisp.api.imageinfo`; 415, 400 or 413),
   so a decompression bomb is refused before any decoder allocates it; files without their end
   are refused too (decoders would return a half-grey image);
4. the megapixel budget (:class:`aisp.api.pixel_budget.PixelBudget`): the image's pixels are
   held while it is decoded and processed; 413 when it is larger than the whole budget, 503
   ``OVERLOADED`` after waiting too long;
5. then, in the bounded inference pool (503 ``OVERLOADED`` when saturated): decode
   (:func:`aisp.api.decode.decode_rgb`: a JPEG whose data ends early or is corrupt is a 400, EXIF
   orientation applied as ``cv2.imread`` does), run each model on this pool thread's own instance
   (``models.load(name, instance="api<thread index>")`` on the app's
   :class:`~aisp.models.ModelRegistry`, resolved once per request), optionally annotate and
   encode a JPEG. ONNX models that take batches go through the app's dynamic batcher instead
   (:mod:`aisp.api.batcher`): the image is decoded on a pool thread, then run in one
   ``infer_batch`` with the concurrent requests for the same model.

**Full decode by default.** The image is decoded in full, so the answer is what
``model.infer()`` gives on the same image (``tests/api/test_frames_equality.py`` checks every
built-in model that gives boxes or landmarks).

**Reduced decode (opt-in).** ``?reduced_decode=true`` (or ``AISP_FRAMES_REDUCED_DECODE=true`` for
the default) allows, when the image is a JPEG, no annotated image is asked for, and every
requested model resizes the whole frame to a small network input (``network_input_side``, e.g.
128 for BlazeFace short-range), decoding the JPEG at half scale by libjpeg's DCT scaling (it skips
most of the IDCT work, and the model then copies and resizes a quarter of the pixels), as long as
the long side stays at least twice the network input; the results are then scaled back to the
original image's pixel coordinates. Boxes move slightly against a full decode (IoU 0.87 to 0.98
on scikit-image's photos), which is why it is not the default. The response's ``decode_scale``
says which scale was used (1 or 2).

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
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request

from aisp.api import modelops
from aisp.api.context import AppContext
from aisp.api.decode import decode_rgb
from aisp.api.imageinfo import ImageInfo, probe_image
from aisp.errors import ModelLoadError, PayloadTooLargeError, UnsupportedMediaError, ValidationError

if TYPE_CHECKING:  # aisp.models imports numpy: the app module stays light until the first frame
    import numpy as np

    from aisp.api.pixel_budget import Lease
    from aisp.models import Model, ModelRegistry, ModelResult

__all__ = [
    "read_image",
    "check_image",
    "infer_image",
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


def infer_image(
    data: bytes,
    info: ImageInfo,
    names: Sequence[str],
    *,
    models: ModelRegistry,
    instance: int,
    annotate: bool,
    reduced_decode: bool = False,
    model_dir: Path | None = None,
) -> FrameOutcome:
    """Decode and run the models (called on an inference pool thread).

    ``instance`` is the pool thread's index: each model is this thread's own instance
    (``api<instance>``) from ``models``, so non-thread-safe models are never shared. A failing
    ``onnx:`` file is reported relative to ``model_dir`` (:func:`aisp.api.modelops.public_load_error`).
    """
    import cv2

    loaded = _load_models(models, names, instance, model_dir)
    factor = decode_reduction(info, loaded, annotate=annotate, allowed=reduced_decode)
    t0 = time.perf_counter()
    rgb = decode_rgb(data, info, factor)
    t1 = time.perf_counter()
    results = {name: model.infer(rgb) for name, model in zip(names, loaded, strict=True)}
    results = _full_scale(results, rgb, info, factor)
    jpeg = None
    if annotate:
        from aisp.models.annotate import annotate as draw  # aisp.models imports numpy: see above

        out = draw(rgb, results.values())
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:  # pragma: no cover - OpenCV can always encode uint8 RGB
            raise RuntimeError("JPEG encoding of the annotated image failed")
        jpeg = buf.tobytes()
    t2 = time.perf_counter()
    return FrameOutcome(results, (t1 - t0) * 1000, (t2 - t0) * 1000, jpeg, factor)


def _load_models(models: ModelRegistry, names: Sequence[str], instance: int,
                 model_dir: Path | None) -> list[Model]:
    loaded: list[Model] = []
    for name in names:
        try:
            loaded.append(models.load(name, instance=modelops.api_instance(instance)))
        except ModelLoadError as exc:
            raise modelops.public_load_error(exc, name, model_dir) from None
    return loaded


def _full_scale(results: dict[str, ModelResult], rgb: np.ndarray, info: ImageInfo,
                factor: int) -> dict[str, ModelResult]:
    """Results in the original image's pixels (undo a reduced decode)."""
    if factor <= 1:
        return results
    h, w = rgb.shape[:2]
    # the EXIF orientation (applied by the decode) may swap the header's width and height
    full_w, full_h = (info.height, info.width) if info.orientation >= 5 else (info.width, info.height)
    sx, sy = full_w / w, full_h / h
    return {name: res.scaled(sx, sy) for name, res in results.items()}


@dataclass
class FrameAnswer:
    """What ``POST /api/frames/process`` answers with on success."""

    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


async def process_image(
    ctx: AppContext, data: bytes, names: Sequence[str], *, annotate: bool, reduced_decode: bool | None
) -> FrameAnswer:
    """Check the image (on the event loop: header only), hold its pixels of the megapixel budget,
    then decode, infer and build the answer on an inference pool thread, so the event loop stays
    free for I/O. ``names`` must have been checked (:func:`aisp.api.modelops.check_models`);
    ``reduced_decode`` None means the setting ``frames_reduced_decode``. Raises
    :class:`aisp.errors.AISPError`s (503 ``OVERLOADED`` while the app's models are not built yet).
    ONNX models go through the app's dynamic batcher when it is on (:mod:`aisp.api.batcher`).
    With a cluster whose ``frames`` part is up, the checked bytes go to a Ray Serve replica instead,
    which runs this same function on its own context (:mod:`aisp.cluster.frames`)."""
    settings = ctx.settings
    info = check_image(data, max_pixels=settings.max_pixels)
    remote = ctx.cluster.frames if ctx.cluster is not None else None
    if remote is not None:  # a Ray Serve replica decodes and infers (aisp.api.cluster_port.FramesPort)
        answer: FrameAnswer = await remote.process(data, names, annotate=annotate,
                                                   reduced_decode=reduced_decode)
        return answer
    reduced = settings.frames_reduced_decode if reduced_decode is None else reduced_decode
    models = ctx.models  # once per request
    pool = ctx.inference
    budget = ctx.pixel_budget
    if pool is None or budget is None:  # pragma: no cover - the context creates them
        raise RuntimeError("the inference pool is not running")
    model_dir = settings.resolved_model_dir
    lease = await budget.lease(info.pixels)
    batcher = ctx.batcher
    # only ONNX models are batched (FrameBatcher.batchable): other requests keep the one-hop path
    if batcher is not None and batcher.enabled and not annotate and any(
        name.startswith(modelops.ONNX_PREFIX) for name in names
    ):
        outcome = await _process_batched(ctx, lease, data, info, names, models, reduced, model_dir)
        for name, res in outcome.results.items():
            ctx.metrics.observe_inference(name, res.inference_ms, "api")
        return FrameAnswer(json_body(info, outcome), "application/json")

    def job() -> tuple[FrameOutcome, bytes | None] | None:
        if not lease.start():  # the request was abandoned before its turn: nothing to do
            return None
        try:
            outcome = infer_image(
                data,
                info,
                names,
                models=models,
                instance=pool.thread_index(),
                annotate=annotate,
                reduced_decode=reduced,
                model_dir=model_dir,
            )
            return outcome, None if annotate else json_body(info, outcome)
        finally:
            lease.release()

    try:
        done = await pool.run(job)
    except BaseException:
        lease.abandon()
        raise
    assert done is not None  # the lease started: this request did not abandon it
    outcome, body = done
    for name, res in outcome.results.items():
        ctx.metrics.observe_inference(name, res.inference_ms, "api")
    if body is None:
        assert outcome.jpeg is not None
        return FrameAnswer(outcome.jpeg, "image/jpeg", {"X-Inference-Ms": f"{outcome.total_ms:.2f}"})
    return FrameAnswer(body, "application/json")


async def _process_batched(ctx: AppContext, lease: Lease, data: bytes, info: ImageInfo, names: Sequence[str],
                           models: ModelRegistry, reduced: bool, model_dir: Path | None) -> FrameOutcome:
    """Decode (and run the models that are not batched) on a pool thread, then hand the frame to
    the batcher for each model that is; the answer is the one :func:`infer_image` gives. The
    image's pixels stay held of the budget until its results are in."""
    pool, batcher = ctx.inference, ctx.batcher
    assert pool is not None and batcher is not None

    def decode_job() -> tuple[np.ndarray, int, float, dict[str, ModelResult], list[str]] | None:
        if not lease.start():  # the request was abandoned before its turn: nothing to do
            return None
        try:
            loaded = _load_models(models, names, pool.thread_index(), model_dir)
            factor = decode_reduction(info, loaded, annotate=False, allowed=reduced)
            t0 = time.perf_counter()
            rgb = decode_rgb(data, info, factor)
            decode_ms = (time.perf_counter() - t0) * 1000
            alone = {n: m.infer(rgb) for n, m in zip(names, loaded, strict=True) if not batcher.batchable(m)}
            batched = [n for n, m in zip(names, loaded, strict=True) if batcher.batchable(m)]
        except BaseException:
            lease.release()
            raise
        return rgb, factor, decode_ms, alone, batched

    t0 = time.perf_counter()
    try:
        done = await pool.run(decode_job)
    except BaseException:
        lease.abandon()
        raise
    assert done is not None  # the lease started: this request did not abandon it
    try:
        rgb, factor, decode_ms, alone, batched = done
        together = await asyncio.gather(*(batcher.infer(pool, models, name, rgb) for name in batched))
        found = {**alone, **dict(zip(batched, together, strict=True))}
        results = _full_scale({name: found[name] for name in names}, rgb, info, factor)
    finally:
        lease.release()
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
