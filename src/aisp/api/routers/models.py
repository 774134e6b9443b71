"""``/api/models``: list, load, unload, prewarm. Loading runs in a worker thread."""

from __future__ import annotations

import time

import anyio.to_thread
from fastapi import APIRouter, Path

from aisp.api import modelops
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


def _list() -> ModelListResponse:
    from aisp.models import list_models

    return ModelListResponse(models=[ModelInfoOut(**info.to_dict()) for info in list_models()])


@router.get("", response_model=ModelListResponse, summary="Every registered model and its status.")
async def list_all() -> ModelListResponse:
    return await anyio.to_thread.run_sync(_list)


@router.post(
    "/{name}/load",
    response_model=ModelLoadResponse,
    summary="Load a model into the cache (a no-op when it is already warm).",
    responses=error_responses(404, 501),
)
async def load(name: str = _NAME) -> ModelLoadResponse:
    ms, keys = await anyio.to_thread.run_sync(modelops.load, name)
    return ModelLoadResponse(name=name, loaded=True, load_ms=round(ms, 2), cached=keys)


@router.delete(
    "/{name}",
    response_model=ModelUnloadResponse,
    summary="Unload a model: remove it (and its per-thread instances) from the cache.",
    responses=error_responses(404),
)
async def unload(name: str = _NAME) -> ModelUnloadResponse:
    removed = await anyio.to_thread.run_sync(modelops.unload, name)
    return ModelUnloadResponse(name=name, unloaded=removed)


@router.post(
    "/prewarm",
    response_model=PrewarmResponse,
    summary="Load several models now; reports the ones that failed.",
    responses=error_responses(404),
)
async def prewarm(body: PrewarmRequest) -> PrewarmResponse:
    await anyio.to_thread.run_sync(modelops.check_models, body.models)
    t0 = time.perf_counter()
    loaded, failed = await anyio.to_thread.run_sync(modelops.prewarm_models, body.models)
    return PrewarmResponse(
        loaded=loaded, failed=failed, duration_ms=round((time.perf_counter() - t0) * 1000, 2)
    )
