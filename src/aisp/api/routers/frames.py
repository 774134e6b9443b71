"""``POST /api/frames/process``: run models on one JPEG, PNG or WebP image."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from aisp.api import modelops
from aisp.api.context import AppContext
from aisp.api.frames import check_image, infer_image, read_image
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
) -> Any:
    ctx: AppContext = request.app.state.ctx
    names = modelops.parse_model_list(models)
    modelops.check_models(names)
    data = await read_image(request)
    info = check_image(data, max_pixels=ctx.settings.max_pixels)
    pool = ctx.inference
    assert pool is not None
    outcome = await pool.run(
        lambda: infer_image(data, info, names, annotate=annotate, instance=pool.thread_index())
    )
    for name, res in outcome.results.items():
        ctx.metrics.observe_inference(name, float(getattr(res, "inference_ms", 0.0)), "api")
    if annotate:
        return Response(
            outcome.jpeg, media_type="image/jpeg", headers={"X-Inference-Ms": f"{outcome.total_ms:.2f}"}
        )
    return FrameProcessResponse(
        width=info.width,
        height=info.height,
        format=info.format,
        models={name: res.to_dict() for name, res in outcome.results.items()},
        inference_ms={name: round(float(res.inference_ms), 3) for name, res in outcome.results.items()},
        decode_ms=round(outcome.decode_ms, 3),
        total_ms=round(outcome.total_ms, 3),
    )
