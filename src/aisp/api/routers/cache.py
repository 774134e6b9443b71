"""``/api/cache``: detailed statistics, export (JSON, CSV, Prometheus) and clear."""

from __future__ import annotations

from typing import Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from aisp.api.schemas import CacheClearResponse, CacheStatsResponse
from aisp.cache import ModelCache

router = APIRouter(prefix="/api/cache", tags=["cache"])

_MEDIA = {"json": "application/json", "csv": "text/csv", "prometheus": "text/plain; version=0.0.4"}


def _cache(request: Request) -> ModelCache:
    return request.app.state.ctx.cache


@router.get("/stats", response_model=CacheStatsResponse, summary="Detailed cache statistics (per model too).")
async def stats(request: Request) -> Any:
    cache = _cache(request)
    report = await anyio.to_thread.run_sync(cache.get_detailed_stats)
    return report.to_dict()


@router.get(
    "/stats/export",
    summary="Statistics as JSON, CSV or Prometheus text.",
    response_class=Response,
    responses={200: {"content": {m: {} for m in _MEDIA.values()}, "description": "The export."}},
)
async def export(
    request: Request,
    format: Literal["json", "csv", "prometheus"] = Query("json", description="json, csv or prometheus"),
) -> Response:
    cache = _cache(request)
    text = await anyio.to_thread.run_sync(cache.export_stats, format)
    ext = "txt" if format == "prometheus" else format
    headers = {"Content-Disposition": f'attachment; filename="aisp-cache-stats.{ext}"'}
    return Response(text, media_type=_MEDIA[format], headers=headers)


@router.post("/clear", response_model=CacheClearResponse, summary="Remove every model from the cache.")
async def clear(request: Request) -> CacheClearResponse:
    cache = _cache(request)

    def _clear() -> int:
        before = len(cache.keys())
        cache.clear()
        return before

    return CacheClearResponse(cleared=await anyio.to_thread.run_sync(_clear))
