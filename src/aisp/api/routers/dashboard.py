"""The dashboard: the page at ``/``, its assets under ``/static/``, and the live feed ``/ws/live``.

The page and its assets are open (they hold no data); every piece of data comes from the API
with the user's key. ``/ws/live`` is authenticated by the gate (a single-use ``?ticket=`` from
``POST /api/auth/ticket``, ``X-API-Key`` or a bearer token: :mod:`aisp.api.gate`) and then
pushes one summary per second
(:func:`aisp.api.routers.dashboard_summary.build_summary`, shared by all open pages through
:class:`~aisp.api.routers.dashboard_summary.SharedSummary`), so the page updates with no reload
and no polling.

Why a WebSocket and not Server-Sent Events: uvicorn closes open WebSockets (code 1012) when it
shuts down, whereas an endless SSE response would hold a graceful shutdown open until its
timeout. The feed also ends when ``ctx.stopping`` is set.

The key is checked again before each summary, so revoking it ends an open feed within the
authenticator's cache TTL. Close codes the page understands: 4401 (missing, wrong or revoked
key: ask for another), 1013 (the server is still starting: retry), 1001 (the server is going
away: retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from aisp import __version__
from aisp.api.auth import Principal, authorize_websocket
from aisp.api.context import AppContext
from aisp.api.routers.dashboard_summary import SharedSummary
from aisp.errors import AISPError, NotFoundError, UnauthorizedError

__all__ = ["router", "STATIC_DIR", "LIVE_INTERVAL_S", "CSP"]

log = logging.getLogger("aisp.api")

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: Seconds between two summaries on ``/ws/live``.
LIVE_INTERVAL_S = 1.0

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
_NO_CACHE = {"Cache-Control": "no-cache"}  # revalidate (ETag) so an upgrade is seen at once
#: The page may load and connect to this server only: no CDN, no inline script, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; "  # HLS through Media Source Extensions plays from a blob: URL
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
_PAGE_HEADERS = {
    **_NO_CACHE,
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["dashboard"])


@router.get("/", include_in_schema=False)
async def index(request: Request) -> HTMLResponse:
    """The dashboard page. ``data-auth`` tells it whether to ask for a key before any request;
    ``data-history`` whether this server has ``GET /api/history`` (the store's router)."""
    html = await anyio.to_thread.run_sync((STATIC_DIR / "index.html").read_text, "utf-8")
    auth = request.app.state.ctx.settings.auth
    history = "on" if _has_route(request.app, "/api/history") else "off"
    html = html.replace("{{AUTH}}", auth).replace("{{VERSION}}", __version__).replace("{{HISTORY}}", history)
    return HTMLResponse(html, headers=_PAGE_HEADERS)


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def static(path: str) -> FileResponse:
    """A file from the bundled ``static`` folder (never outside it)."""
    target = (STATIC_DIR / path).resolve()
    if not path or not target.is_relative_to(STATIC_DIR) or not target.is_file():
        raise NotFoundError(f"no dashboard asset named {path!r}", kind="static file", key=path)
    media = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return FileResponse(target, media_type=media, headers=_NO_CACHE)


@router.websocket("/ws/live")
async def live(websocket: WebSocket) -> None:
    """One dashboard summary per second until the client leaves or the server stops."""
    ctx: AppContext = websocket.app.state.ctx
    await websocket.accept()
    try:
        principal = await authorize_websocket(websocket)  # a store lookup runs off the loop
    except UnauthorizedError as exc:
        await websocket.close(code=4401, reason=_reason(exc.message))
        return
    except AISPError as exc:  # the store is still opening: the page retries
        await websocket.close(code=1013, reason=_reason(exc.message))
        return
    log.debug("live feed opened (role=%s)", principal.role)
    receiver = asyncio.create_task(_drain(websocket))
    try:
        await _push(websocket, ctx, receiver, principal)
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver
        if websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(code=1001 if ctx.stopping.is_set() else 1000)
        log.debug("live feed closed")


async def _push(
    websocket: WebSocket, ctx: AppContext, receiver: asyncio.Task[None], principal: Principal
) -> None:
    loop = asyncio.get_running_loop()
    while not ctx.stopping.is_set() and not receiver.done():
        started = loop.time()
        try:  # a key revoked meanwhile ends the feed (within the authenticator's cache TTL)
            await ctx.auth.ensure_active(principal)
        except UnauthorizedError as exc:
            with contextlib.suppress(Exception):
                await websocket.close(code=4401, reason=_reason(exc.message))
            return
        except AISPError:  # the store is briefly away: keep serving what is known
            log.debug("live feed: key check unavailable", exc_info=True)
        try:
            summary = await anyio.to_thread.run_sync(_shared(websocket.app).get)
        except Exception:  # noqa: BLE001 - log it, keep the feed alive; the next second may work
            log.exception("dashboard summary failed")
            summary = None
        if summary is not None:
            try:
                await websocket.send_json(summary)
            except (WebSocketDisconnect, RuntimeError, OSError):
                return
        wait = max(0.05, LIVE_INTERVAL_S - (loop.time() - started))
        # Wake early when the client leaves.
        await asyncio.wait({receiver}, timeout=wait)


def _shared(app: FastAPI) -> SharedSummary:
    shared = getattr(app.state, "dashboard_summary", None)
    if shared is None:  # created on the event loop thread only: no race
        shared = app.state.dashboard_summary = SharedSummary(app.state.ctx, max_age_s=LIVE_INTERVAL_S / 2)
    return shared


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client messages; returns when the client disconnects."""
    while True:
        message = await websocket.receive()
        if message.get("type") == "websocket.disconnect":
            return


def _has_route(app: FastAPI, path: str) -> bool:
    """Whether the app serves ``path`` (read from its OpenAPI schema, which FastAPI caches)."""
    try:
        return path in (app.openapi().get("paths") or {})
    except Exception:  # noqa: BLE001 - a broken schema must not break the page
        log.warning("cannot read the OpenAPI schema to look for %s", path, exc_info=True)
        return False


def _reason(message: str) -> str:
    data = message.encode("utf-8")[:120]  # a close reason is at most 123 bytes
    return data.decode("utf-8", "ignore")
