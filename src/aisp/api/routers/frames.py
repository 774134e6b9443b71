"""``POST /api/frames/process``: run models on one JPEG, PNG or WebP image.

This route documents the endpoint and serves every request that :mod:`aisp.api.fastpath`
passes on (multipart uploads, keys not verified yet, and every request it cannot answer exactly
as this route would); the work itself is :func:`aisp.api.frame_processing.process_image` in both,
and the query is :class:`aisp.api.schemas.FramesQuery` in both.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from aisp.api import modelops
from aisp.api.context import AppContext
from aisp.api.frame_processing import process_image, read_image
from aisp.api.schemas import FrameProcessResponse, FramesQuery, error_responses

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
        **error_responses(404, 413, 415, 422),
    },
)
async def process(request: Request, query: Annotated[FramesQuery, Query()]) -> Response:
    ctx: AppContext = request.app.state.ctx
    names = modelops.check_models(query.names(), ctx.settings.resolved_model_dir)
    data = await read_image(request)
    answer = await process_image(
        ctx, data, names, annotate=query.annotate, reduced_decode=query.reduced_decode
    )
    return Response(answer.body, media_type=answer.media_type, headers=answer.headers)
