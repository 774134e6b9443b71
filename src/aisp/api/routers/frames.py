"""``POST /api/frames/process``: run models on one JPEG, PNG or WebP image."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from aisp.api import modelops
from aisp.api.context import AppContext
from aisp.api.frames import FrameOutcome, check_image, infer_image, read_image
from aisp.api.imageinfo import ImageInfo
from aisp.api.schemas import FrameProcessResponse, error_responses

router = APIRouter(prefix="/api/frames", tags=["frames"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image: the raw body (JPEG, PNG or WebP), or multipart/form-data with a "
        "`file` part.",
        "content": {
            "image/jpeg": _BINARY,
            "image/png": _BINARY,
            "image/webp": _BINARY,
            "application/octet-stream": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post(
    "/process",
    response_model=FrameProcessResponse,
    summary="Run models on an uploaded image; JSON results, or an annotated JPEG with annotate=true.",
    openapi_extra=_REQUEST_BODY,
    responses={
        200: {
            "content": {"image/jpeg": {}},
            "description": "JSON results, or image/jpeg when annotate=true.",
        },
        **error_responses(404, 413, 415),
    },
)
async def process(
    request: Request,
    models: str = Query(
        ..., description="Comma-separated model names, e.g. face_detection,hands.", max_length=1000
    ),
    annotate: bool = Query(False, description="Return the annotated image as image/jpeg."),
    reduced_decode: bool = Query(
        True,
        description="Allow decoding a JPEG at half scale when every model resizes the "
        "frame to a much smaller network input (results are in the original pixels either way; "
        "`decode_scale` in the response says which scale was used). false: always decode in full.",
    ),
) -> Any:
    ctx: AppContext = request.app.state.ctx
    names = modelops.parse_model_list(models)
    modelops.check_models(names)
    data = await read_image(request)
    info = check_image(data, max_pixels=ctx.settings.max_pixels)
    pool = ctx.inference
    assert pool is not None

    def job() -> tuple[FrameOutcome, bytes | None]:
        outcome = infer_image(
            data, info, names, annotate=annotate, instance=pool.thread_index(), reduced_decode=reduced_decode
        )
        return outcome, None if annotate else _json_body(info, outcome)

    # the JSON is built on the pool thread too, keeping the event loop free for I/O
    outcome, body = await pool.run(job)
    for name, res in outcome.results.items():
        ctx.metrics.observe_inference(name, float(getattr(res, "inference_ms", 0.0)), "api")
    if body is None:
        return Response(
            outcome.jpeg, media_type="image/jpeg", headers={"X-Inference-Ms": f"{outcome.total_ms:.2f}"}
        )
    return Response(body, media_type="application/json")


def _json_body(info: ImageInfo, outcome: FrameOutcome) -> bytes:
    """The FrameProcessResponse (documented by ``response_model``) as JSON bytes, built from
    plain dicts and serialised once: returning a ``Response`` skips FastAPI's validation and
    re-encoding of the response model on this hot path."""
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
