"""``create_app()``: the one FastAPI app, its lifespan, middleware, error handlers and routers.

Importing this module is light (FastAPI and pydantic only): numpy, OpenCV, MediaPipe and
SQLAlchemy are imported by the background startup (:mod:`aisp.api.lifecycle`) and inside the
handlers that need them, so ``GET /health`` answers within a second of the process starting.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import Depends, FastAPI

from aisp import __version__
from aisp.api.auth import Authenticator, authorize
from aisp.api.context import AppContext
from aisp.api.errors import install_error_handlers
from aisp.api.fastpath import FramesFastPath
from aisp.api.gate import SecurityGate
from aisp.api.lifecycle import Lifecycle
from aisp.api.middleware import RequestMiddleware
from aisp.api.routers import (
    auth,
    cache,
    clips,
    dashboard,
    docs,
    events,
    frames,
    history,
    hls,
    models,
    status,
    streams,
    tasks,
    webhooks,
)
from aisp.api.routers import cluster as cluster_routes
from aisp.api.schemas import COMMON_ERRORS
from aisp.errors import ConfigError
from aisp.settings import Settings, load_settings

if TYPE_CHECKING:
    from aisp.api.cluster_port import ClusterPort
    from aisp.runtime import StoreFactory

__all__ = ["create_app"]

log = logging.getLogger("aisp.api")

_DESCRIPTION = """Real-time AI vision serving: a warm model cache, a frame pipeline and one API.

Send the API key as `X-API-Key: <key>` or `Authorization: Bearer <key>`; keys are never accepted
in URLs. WebSockets and `<img>` MJPEG views use a single-use ticket instead: `POST /api/auth/ticket`
with `{"path": "/ws/live"}`, then `?ticket=<ticket>`. `viewer` keys may read (GET) and mint
tickets; `admin` keys may do everything. Every error has the
body `{"status": "error", "error": {"code", "name", "message", "timestamp", "details", "path",
"method"}}`; invalid requests are **400 VALIDATION_ERROR**.
"""

_TAGS = [
    {"name": "status", "description": "Liveness, readiness, status, performance and Prometheus metrics."},
    {"name": "models", "description": "The model registry and the warm model cache."},
    {"name": "cache", "description": "Model cache statistics and control."},
    {"name": "frames", "description": "Run models on one uploaded image."},
    {"name": "streams", "description": "Live streams: define, start, stop, watch (MJPEG, WebSocket)."},
    {"name": "tasks", "description": "Batch jobs over a video file or URL, persisted and resumable."},
    {"name": "events", "description": "Discrete events (tracks, zones, lines, stream states): query, "
     "snapshots, live WebSocket."},
    {"name": "auth", "description": "Who am I, and API key management (admin)."},
    {"name": "webhooks", "description": "Events out: webhooks (admin) and MQTT/webhook delivery accounting."},
    {"name": "cluster", "description": "The Ray cluster (AISP_RAY_ADDRESS): nodes, and which streams and "
     "tasks run on each. 404 on a single-machine server."},
]

def create_app(
    settings: Settings | None = None,
    *,
    store_factory: StoreFactory | None = None,
    cluster: ClusterPort | None = None,
) -> FastAPI:
    """Build the app from ``settings`` (default: the environment's). Its services come from one
    :func:`aisp.runtime.build`, run on the start-up thread. ``store_factory(url)`` replaces
    :class:`aisp.store.Store` (tests). ``cluster`` runs streams, tasks and frames on Ray (see
    :mod:`aisp.api.cluster_port`); it is required when ``settings.ray_address`` is set."""
    settings = settings if settings is not None else load_settings()
    if settings.ray_address and cluster is None:
        raise ConfigError(
            "AISP_RAY_ADDRESS is set but no cluster was given: build the app with "
            "aisp.cluster.create_cluster_app(settings) (aisp serve does)",
            field="ray_address", value=settings.ray_address, expected="a cluster service",
        )
    ctx = AppContext(settings)
    ctx.cluster = cluster
    ctx.auth = Authenticator(ctx)
    lifecycle = Lifecycle(ctx, store_factory=store_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lifecycle.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(lifecycle.shutdown)

    app = FastAPI(
        title="AISP",
        version=__version__,
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        lifespan=lifespan,
        docs_url=None,  # served by routers.docs: Swagger UI from a package, no CDN (works offline)
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.lifecycle = lifecycle
    install_error_handlers(app)
    # added first, so it runs inside the gate and RequestMiddleware (ids, upload limit, metrics, 500s)
    app.add_middleware(FramesFastPath, ctx=ctx, enabled=settings.api_fast_path)
    # host, origin, auth and body caps before any body byte is read (aisp.api.gate)
    app.add_middleware(SecurityGate, ctx=ctx, settings=settings)
    app.add_middleware(
        RequestMiddleware, metrics=ctx.metrics, max_body_bytes=int(settings.max_upload_mb * 1024 * 1024)
    )

    app.include_router(status.open_router)
    app.include_router(docs.router)
    protected = {"dependencies": [Depends(authorize)], "responses": COMMON_ERRORS}
    app.include_router(status.router, **protected)
    app.include_router(models.router, **protected)
    app.include_router(cache.router, **protected)
    app.include_router(frames.router, **protected)
    app.include_router(streams.router, **protected)
    app.include_router(streams.streaming_router, responses=COMMON_ERRORS)  # own auth (?ticket=)
    app.include_router(hls.router, **protected)
    app.include_router(clips.router, **protected)
    app.include_router(tasks.router, **protected)
    app.include_router(auth.router, **protected)
    app.include_router(history.router, **protected)
    app.include_router(events.router, **protected)
    app.include_router(events.ws_router, responses=COMMON_ERRORS)  # own auth (WebSocket)
    app.include_router(webhooks.router, **protected)
    app.include_router(webhooks.delivery_router, **protected)
    app.include_router(cluster_routes.router, **protected)
    # the dashboard page is open and asks for the key in JS; its data comes from the API
    app.include_router(dashboard.router)
    return app
