"""Liveness (``/health``), readiness (``/ready``), ``/api/status``, ``/api/status/performance``
and ``/metrics``. ``/health`` and ``/ready`` are open (no key) and never touch a heavy module.

A failed component's reason (:mod:`aisp.api.reasons`): ``/ready`` and viewer keys get its type
only; an admin key gets the full text in ``/api/status``, passwords hidden."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from aisp import __version__
from aisp.api.auth import Principal, authorize
from aisp.api.context import AppContext
from aisp.api.metrics import CONTENT_TYPE_LATEST
from aisp.api.reasons import public_reason, reasons_for
from aisp.api.schemas import (
    HealthResponse,
    PerformanceResponse,
    ReadyResponse,
    StatusResponse,
    StreamPerf,
)

open_router = APIRouter(tags=["status"])
router = APIRouter(tags=["status"])


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx


@open_router.get("/health", response_model=HealthResponse, summary="Liveness: the process answers.")
async def health(request: Request) -> HealthResponse:
    return HealthResponse(uptime_s=round(_ctx(request).uptime_s(), 3))


__all__ = ["open_router", "public_reason", "router"]


@open_router.get(
    "/ready",
    response_model=ReadyResponse,
    summary="Readiness: 200 once the store is open and prewarm is done, else 503 listing what is pending.",
    responses={503: {"model": ReadyResponse, "description": "Still starting; `pending` says what."}},
)
async def ready(request: Request) -> Any:
    ctx = _ctx(request)
    body = ReadyResponse(
        ready=ctx.is_ready(),
        pending=ctx.pending(),
        components=dict(ctx.components),
        errors={name: public_reason(text) for name, text in dict(ctx.errors).items()},
        timings_ms=dict(ctx.timings_ms),
    )
    if body.ready:
        return body
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "1"})


@router.get("/api/status", response_model=StatusResponse, summary="Version, uptime, components, warm state "
            "(a failed component's reason: its type for a viewer, the text without passwords for an admin).")
async def status(request: Request, principal: Principal = Depends(authorize)) -> StatusResponse:
    ctx = _ctx(request)
    runtime = ctx.runtime
    warm = runtime.system.warm() if runtime is not None else None
    return StatusResponse(
        version=__version__,
        uptime_s=round(ctx.uptime_s(), 3),
        started_at=datetime.fromtimestamp(ctx.started_wall, timezone.utc).isoformat(),
        ready=ctx.is_ready(),
        auth=ctx.settings.auth,
        components=dict(ctx.components),
        errors=reasons_for(dict(ctx.errors), principal.role),
        warm=warm.warm if warm is not None else not ctx.settings.prewarm,
        warmed_models=list(warm.warmed_models) if warm is not None else [],
        prewarm=list(ctx.settings.prewarm),
        streams=len(ctx.streams()),
        timings_ms=dict(ctx.timings_ms),
        cpu_plan=ctx.cpu_plan.to_dict(),
        delivery=ctx.delivery.stats() if ctx.delivery is not None else None,
    )


def _performance(ctx: AppContext) -> PerformanceResponse:
    runtime = ctx.require_runtime()
    proc = runtime.system.process()
    streams = [
        StreamPerf(
            id=view.id,
            state=view.state,
            input_fps=view.stats.input_fps,
            processed_fps=view.stats.processed_fps,
            dropped=view.stats.dropped,
            latency_p99_ms=view.stats.latency_ms.p99,
            stats=view.stats.to_dict(),
        )
        for view in ctx.streams()
    ]
    pool = ctx.inference
    return PerformanceResponse(
        cpu_percent=proc.cpu_percent,
        rss_mb=proc.rss_mb,
        threads=proc.threads,
        system_memory_percent=proc.system_memory_percent,
        inference_inflight=pool.inflight if pool else 0,
        inference_capacity=pool.capacity if pool else 0,
        streams=streams,
        cache=runtime.cache.get_stats().to_dict(),
    )


@router.get(
    "/api/status/performance",
    response_model=PerformanceResponse,
    summary="CPU, RSS, per-stream FPS, latency and drops, cache summary.",
)
async def performance(request: Request) -> PerformanceResponse:
    return await anyio.to_thread.run_sync(_performance, _ctx(request))


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format).",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request) -> Response:
    ctx = _ctx(request)
    payload = await anyio.to_thread.run_sync(ctx.metrics.render)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
