"""``/api/models``: list, load, unload, prewarm. Loading runs in a worker thread."""

from __future__ import annotations

import time

import anyio.to_thread
from fastapi import APIRouter, Path, Request

from aisp.api import modelops
from aisp.api.context import AppContext
from aisp.api.schemas import (
    ModelInfoOut,
    ModelListResponse,
    ModelLoadResponse,
    ModelUnloadResponse,
    PrewarmRequest,
    PrewarmResponse,
    error_responses,
)

router = APIRouter(prefix="/api/models", tags=["models"])

_NAME = Path(description="Model name, as listed by GET /api/models.", max_length=200)


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def _list(ctx: AppContext) -> ModelListResponse:
    return ModelListResponse(models=[ModelInfoOut(**info.to_dict()) for info in ctx.models.list()])


@router.get("", response_model=ModelListResponse, summary="Every registered model and its status.")
async def list_all(request: Request) -> ModelListResponse:
    return await anyio.to_thread.run_sync(_list, _ctx(request))


@router.post(
    "/{name}/load",
    response_model=ModelLoadResponse,
    summary="Load a model into the cache (a no-op when it is already warm).",
    responses=error_responses(404, 422, 501),
)
async def load(request: Request, name: str = _NAME) -> ModelLoadResponse:
    ms, keys = await anyio.to_thread.run_sync(modelops.load, _ctx(request).require_runtime(), name)
    return ModelLoadResponse(name=name, loaded=True, load_ms=round(ms, 2), cached=keys)


@router.delete(
    "/{name}",
    response_model=ModelUnloadResponse,
    summary="Unload a model: remove it (and its per-thread instances) from the cache.",
    responses=error_responses(404),
)
async def unload(request: Request, name: str = _NAME) -> ModelUnloadResponse:
    removed = await anyio.to_thread.run_sync(modelops.unload, _ctx(request).require_runtime(), name)
    return ModelUnloadResponse(name=name, unloaded=removed)


@router.post(
    "/prewarm",
    response_model=PrewarmResponse,
    summary="Load several models now; reports the ones that failed.",
    responses=error_responses(404, 422),
)
async def prewarm(request: Request, body: PrewarmRequest) -> PrewarmResponse:
    runtime = _ctx(request).require_runtime()
    await anyio.to_thread.run_sync(modelops.check_models, body.models, runtime.settings.resolved_model_dir)
    t0 = time.perf_counter()
    loaded, failed = await anyio.to_thread.run_sync(modelops.prewarm_models, runtime, body.models)
    return PrewarmResponse(
        loaded=loaded, failed=failed, duration_ms=round((time.perf_counter() - t0) * 1000, 2)
    )
