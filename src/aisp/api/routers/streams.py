"""``/api/streams``: define, list, start, stop and delete live streams; watch them as MJPEG
(``GET /api/streams/{id}/mjpeg``) or as JSON over a WebSocket (``/ws/streams/{id}``).

The watch routes also take a single-use ``?ticket=`` (an ``<img>`` or a browser ``WebSocket``
cannot send headers; :mod:`aisp.api.tickets`). Their blocking waits run on a dedicated thread
limiter, so many viewers cannot starve the other routes' worker threads; each wait is at most one
second, so a viewer notices a shutdown or a deleted stream within a second, and its key is
re-checked about once a second, so revoking the key ends the view within the authenticator's
cache TTL.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Path, Request, WebSocket, WebSocketDisconnect, status
from fastapi.responses import Response, StreamingResponse

from aisp.api.auth import Principal, authorize_streaming, authorize_websocket
from aisp.api.context import AppContext
from aisp.api.schemas import StreamCreate, StreamListResponse, StreamOut, ZonesUpdate, error_responses
from aisp.api.stream_manager import StreamManager
from aisp.errors import AISPError, NotFoundError, UnauthorizedError

router = APIRouter(prefix="/api/streams", tags=["streams"])
streaming_router = APIRouter(tags=["streams"])

_ID = Path(description="Stream id.", max_length=128)
_WAIT_S = 1.0
#: Blocking waits of viewers (MJPEG, WebSocket) running at once, per app.
_WATCHERS = 256


def _limiter(app: FastAPI) -> anyio.CapacityLimiter:
    """This app's limiter for viewers' waits, made on its event loop by the first viewer (each app,
    and so each test client's loop, has its own)."""
    limiter: anyio.CapacityLimiter | None = getattr(app.state, "watch_limiter", None)
    if limiter is None:  # only the event loop thread gets here: no race
        limiter = app.state.watch_limiter = anyio.CapacityLimiter(_WATCHERS)
    return limiter


def _mgr(request: Request | WebSocket) -> StreamManager:
    return StreamManager.of(request.app.state.ctx)


@router.get("", response_model=StreamListResponse, summary="Every stream with its state and statistics.")
async def list_streams(request: Request) -> StreamListResponse:
    mgr = _mgr(request)
    if request.app.state.ctx.engine is None:
        return StreamListResponse(streams=[])
    items = await anyio.to_thread.run_sync(mgr.describe_all)
    return StreamListResponse(streams=[StreamOut(**d) for d in items])


@router.post(
    "",
    response_model=StreamOut,
    status_code=status.HTTP_201_CREATED,
    summary="Define a stream (persisted) and start it unless start=false.",
    responses=error_responses(404, 409, 422),
)
async def create_stream(request: Request, body: StreamCreate) -> StreamOut:
    mgr = _mgr(request)
    data = body.model_dump()
    start = data.pop("start")
    out = await anyio.to_thread.run_sync(lambda: mgr.create(data, start=start))
    return StreamOut(**out)


@router.get("/{stream_id}", response_model=StreamOut, summary="One stream.", responses=error_responses(404))
async def get_stream(request: Request, stream_id: str = _ID) -> StreamOut:
    return StreamOut(**await anyio.to_thread.run_sync(_mgr(request).describe, stream_id))


@router.delete(
    "/{stream_id}", status_code=204, summary="Stop and delete a stream.", responses=error_responses(404)
)
async def delete_stream(request: Request, stream_id: str = _ID) -> Response:
    await anyio.to_thread.run_sync(_mgr(request).delete, stream_id)
    return Response(status_code=204)


@router.post(
    "/{stream_id}/start",
    response_model=StreamOut,
    summary="Start a stream.",
    responses=error_responses(404, 422),
)
async def start_stream(request: Request, stream_id: str = _ID) -> StreamOut:
    return StreamOut(**await anyio.to_thread.run_sync(_mgr(request).start, stream_id))


@router.post(
    "/{stream_id}/stop",
    response_model=StreamOut,
    summary="Stop a stream (drains its sinks).",
    responses=error_responses(404),
)
async def stop_stream(request: Request, stream_id: str = _ID) -> StreamOut:
    return StreamOut(**await anyio.to_thread.run_sync(_mgr(request).stop, stream_id))


@router.put(
    "/{stream_id}/zones",
    response_model=StreamOut,
    summary="Replace a stream's zones and lines (admin). A tracking stream applies them at its next "
    "frame; another one is restarted with tracking on. Counts start over.",
    responses=error_responses(404),
)
async def put_zones(request: Request, body: ZonesUpdate, stream_id: str = _ID) -> StreamOut:
    zones = [z.model_dump() for z in body.zones]
    lines = [ln.model_dump() for ln in body.lines]
    return StreamOut(**await anyio.to_thread.run_sync(_mgr(request).set_zones, stream_id, zones, lines))


async def _follow(
    ctx: AppContext, mgr: StreamManager, stream_id: str, which: str, limiter: anyio.CapacityLimiter,
    principal: Principal,
) -> AsyncIterator[tuple[int, Any, Any]]:
    """Yield ``(seq, value, stream)`` for each new value of the stream's ``latest``/``mjpeg`` sink.

    Follows a stream that is rebuilt by a restart (new object, sequence numbers start over);
    ends when the stream is deleted or the server is stopping. Raises ``UnauthorizedError`` when
    the viewer's key is revoked (checked at most once per ``_WAIT_S``).
    """
    seq, current = 0, None
    checked = time.monotonic()
    while not ctx.stopping.is_set():
        now = time.monotonic()
        if now - checked >= _WAIT_S:
            checked = now
            try:
                await ctx.auth.ensure_active(principal)
            except UnauthorizedError:
                raise
            except AISPError:  # the store is briefly away: keep serving what is known
                pass
        if stream_id not in mgr.ids():
            return
        try:
            stream = mgr.get(stream_id)
        except AISPError:
            return
        if stream is not current:
            seq, current = 0, stream
        sink = getattr(stream, which)
        if sink is None:
            return
        got = await anyio.to_thread.run_sync(sink.wait_next, seq, _WAIT_S, limiter=limiter)
        if got is None:
            if stream.done:  # closed sink: wait_next returns at once; poll gently until restarted
                await anyio.sleep(_WAIT_S)
            continue
        seq, value = got
        yield seq, value, stream


@streaming_router.get(
    "/api/streams/{stream_id}/mjpeg",
    summary="The annotated live view as multipart/x-mixed-replace JPEG frames (key header or ?ticket=).",
    response_class=StreamingResponse,
    dependencies=[Depends(authorize_streaming)],
    responses={
        200: {"content": {"multipart/x-mixed-replace": {}}, "description": "MJPEG stream."},
        **error_responses(401, 403, 404),
    },
)
async def mjpeg(request: Request, stream_id: str = _ID) -> StreamingResponse:
    ctx: AppContext = request.app.state.ctx
    mgr = _mgr(request)
    stream = mgr.get(stream_id)
    if stream.mjpeg is None:
        raise NotFoundError(f"stream '{stream_id}' has no MJPEG view", kind="mjpeg", key=stream_id)

    principal: Principal = request.state.principal

    async def frames() -> AsyncIterator[bytes]:
        views = _follow(ctx, mgr, stream_id, "mjpeg", _limiter(request.app), principal)
        try:
            async for _seq, jpeg, _stream in views:
                yield (
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(jpeg)).encode()
                    + b"\r\n\r\n"
                    + jpeg
                    + b"\r\n"
                )
        except UnauthorizedError:  # the key was revoked: end the view
            return

    return StreamingResponse(
        frames(),
        media_type="multipart/x-mixed-replace; boundary=frame",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


@streaming_router.websocket("/ws/streams/{stream_id}")
async def ws_stream(websocket: WebSocket, stream_id: str) -> None:
    """Live results of a stream as JSON messages ``{"type": "result", "stream", "seq", ...}``.

    Errors (bad key, unknown stream) are sent as one unified error body, then the socket is
    closed with code ``4000 + HTTP status`` (4401, 4404).
    """
    ctx: AppContext = websocket.app.state.ctx
    mgr = _mgr(websocket)
    try:
        principal = await authorize_websocket(websocket)
        mgr.get(stream_id)
    except AISPError as exc:
        await websocket.accept()
        await websocket.send_text(json.dumps(exc.to_body(path=websocket.url.path, method="GET")))
        await websocket.close(code=4000 + exc.status_code)
        return
    await websocket.accept()
    try:
        views = _follow(ctx, mgr, stream_id, "latest", _limiter(websocket.app), principal)
        async for seq, result, stream in views:
            payload = {
                "type": "result",
                "stream": stream_id,
                "seq": seq,
                "state": stream.state,
                **result.to_dict(),
            }
            await websocket.send_text(json.dumps(payload, default=_jsonable))
        await websocket.send_text(json.dumps({"type": "end", "stream": stream_id}))
        await websocket.close()
    except UnauthorizedError as exc:  # the key was revoked: say so, then close with 4401
        try:
            await websocket.send_text(json.dumps(exc.to_body(path=websocket.url.path, method="GET")))
            await websocket.close(code=4401)
        except (WebSocketDisconnect, RuntimeError):
            return
    except (WebSocketDisconnect, RuntimeError):
        return
