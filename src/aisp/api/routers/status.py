"""Liveness (``/health``), readiness (``/ready``), ``/api/status``, ``/api/status/performance``
and ``/metrics``. ``/health`` and ``/ready`` are open (no key) and never touch a heavy module."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from aisp import __version__
from aisp.api.context import AppContext
from aisp.api.metrics import CONTENT_TYPE_LATEST
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
        errors=dict(ctx.errors),
        timings_ms=dict(ctx.timings_ms),
    )
    if body.ready:
        return body
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "1"})


def _warm_state(ctx: AppContext) -> tuple[bool, list[str]]:
    wanted = list(ctx.settings.prewarm)
    stats = ctx.cache_stats()
    if not stats:
        return (not wanted), []
    cache = ctx.cache
    warmed = list(cache.get_warmed_models()) if hasattr(cache, "get_warmed_models") else []
    held = set(cache.names())
    if not wanted:
        return True, warmed
    return all(n in held or any(k.startswith(f"{n}#") for k in held) for n in wanted), warmed


@router.get("/api/status", response_model=StatusResponse, summary="Version, uptime, components, warm state.")
async def status(request: Request) -> StatusResponse:
    ctx = _ctx(request)
    warm, warmed = _warm_state(ctx)
    return StatusResponse(
        version=__version__,
        uptime_s=round(ctx.uptime_s(), 3),
        started_at=datetime.fromtimestamp(ctx.started_wall, timezone.utc).isoformat(),
        ready=ctx.is_ready(),
        auth=ctx.settings.auth,
        components=dict(ctx.components),
        errors=dict(ctx.errors),
        warm=warm,
        warmed_models=warmed,
        prewarm=list(ctx.settings.prewarm),
        streams=len(ctx.stream_snapshots()),
        timings_ms=dict(ctx.timings_ms),
    )


_proc: Any = None


def _process() -> Any:
    """One ``psutil.Process`` kept between calls: ``cpu_percent`` measures since the last call."""
    global _proc
    if _proc is None:
        import psutil

        _proc = psutil.Process()
        _proc.cpu_percent(None)
    return _proc


def _performance(ctx: AppContext) -> PerformanceResponse:
    import psutil

    proc = _process()
    with proc.oneshot():
        cpu = proc.cpu_percent(interval=None)
        rss = proc.memory_info().rss / (1024 * 1024)
        threads = proc.num_threads()
    streams = []
    for sid, snap in ctx.stream_snapshots().items():
        stats = snap.get("stats") or {}
        lat = stats.get("latency_ms") or {}
        streams.append(
            StreamPerf(
                id=sid,
                state=str(snap.get("state")),
                input_fps=stats.get("input_fps"),
                processed_fps=stats.get("processed_fps"),
                dropped=stats.get("dropped"),
                latency_p99_ms=lat.get("p99") if isinstance(lat, dict) else None,
                stats=stats,
            )
        )
    pool = ctx.inference
    return PerformanceResponse(
        cpu_percent=cpu,
        rss_mb=round(rss, 1),
        threads=threads,
        system_memory_percent=psutil.virtual_memory().percent,
        inference_inflight=pool.inflight if pool else 0,
        inference_capacity=pool.capacity if pool else 0,
        streams=streams,
        cache=ctx.cache_stats(),
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
