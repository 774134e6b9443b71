"""``/api/events``: the discrete events (appeared, gone, enter, exit, dwell, cross, stream), stored
and live.

- ``GET /api/events?stream=&label=&type=&since=&until=&limit=&cursor=`` newest first; ``type``
  takes a comma-separated list; ``since``/``until`` an ISO 8601 time or seconds back from now;
  pages with ``cursor`` (the previous page's ``next_cursor``);
- ``GET /api/events/{id}``; ``GET /api/events/{id}/snapshot`` (JPEG with the box drawn;
  ``?thumb=1`` for the thumbnail) and ``GET /api/events/{id}/thumbnail``;
- ``WS /ws/events?stream=&label=&type=``: each event as ``{"type": "event", "event": {...}}``
  (filters as for the list), authorised as ``/ws/streams/{id}`` is (header or ticket).

Reads need a viewer key; the WebSocket checks the key before it does anything else, and again
about once a second while it is open (:meth:`aisp.api.auth.Authenticator.ensure_active`): a
revoked key gets the error body and a 4401 close, as on ``/ws/streams/{id}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

from aisp.api.auth import authorize_websocket
from aisp.api.context import AppContext
from aisp.api.event_fanout import EventFilter, parse_types
from aisp.api.routers.history import parse_since
from aisp.api.schemas import EventRecordList, EventRecordOut, error_responses
from aisp.errors import AISPError, NotFoundError, UnauthorizedError, ValidationError

if TYPE_CHECKING:
    from aisp.events import Event

__all__ = ["router", "ws_router"]

router = APIRouter(prefix="/api/events", tags=["events"])
ws_router = APIRouter(tags=["events"])

_ID = Path(description="Event id (26 hex digits).", pattern=r"^[0-9a-f]{26}$")
_STREAM = Query(None, description="Only this stream.", max_length=128)
_LABEL = Query(None, description="Only this label.", max_length=128)
_TYPE = Query(None, description="Only these types, comma separated (appeared, gone, enter, exit, dwell, "
              "cross, stream).", max_length=200)
_JPEG = {200: {"content": {"image/jpeg": {}}, "description": "JPEG image."}}
#: how often an open ``/ws/events`` waits for an event before it checks the key and shutdown
_WAIT_S = 1.0


def _out(event: Event) -> EventRecordOut:
    return EventRecordOut(**event.to_dict())


@router.get("", response_model=EventRecordList, summary="Stored events, newest first, filtered and paged.",
            responses=error_responses(400, 503))
async def list_events(
    request: Request,
    stream: str | None = _STREAM,
    label: str | None = _LABEL,
    type: str | None = _TYPE,  # noqa: A002 - the query parameter's public name
    since: str | None = Query(None, description="ISO 8601 time, or seconds back from now.", max_length=64),
    until: str | None = Query(None, description="ISO 8601 time, or seconds back from now.", max_length=64),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, description="next_cursor of the previous page.", max_length=200),
) -> EventRecordList:
    types = parse_types(type)
    now = time.time()
    t_since = parse_since(since, now=now, default_seconds=None)
    t_until = parse_since(until, now=now, field="until", default_seconds=None)
    if t_since is not None and t_until is not None and t_until < t_since:
        raise ValidationError("until: must not be before since", field="until", value=until,
                              expected="a time after since")
    store = request.app.state.ctx.require_store()
    page = await anyio.to_thread.run_sync(lambda: store.event_records.query(
        stream_id=stream, label=label, types=types, since=t_since, until=t_until, limit=limit, cursor=cursor))
    return EventRecordList(events=[_out(e) for e in page.events], next_cursor=page.next_cursor)


async def _get(request: Request, event_id: str) -> Event:
    store = request.app.state.ctx.require_store()
    event = await anyio.to_thread.run_sync(store.event_records.get, event_id)
    if event is None:
        raise NotFoundError(f"no event {event_id!r}", kind="event", key=event_id)
    return event


@router.get("/{event_id}", response_model=EventRecordOut, summary="One event.",
            responses=error_responses(400, 404, 503))
async def get_event(request: Request, event_id: str = _ID) -> EventRecordOut:
    return _out(await _get(request, event_id))


async def _snapshot(request: Request, event_id: str, thumb: bool) -> FileResponse:
    event = await _get(request, event_id)
    ctx: AppContext = request.app.state.ctx
    writer = ctx.runtime.snapshots if ctx.runtime is not None else None
    path: FsPath | None = None
    if event.snapshot is not None and writer is not None:
        path = writer.path(event.id, thumb=thumb)
    if path is None or not await anyio.to_thread.run_sync(path.is_file):
        what = "thumbnail" if thumb else "snapshot"
        raise NotFoundError(f"event {event_id!r} has no {what} (none was taken, or retention removed it)",
                            kind="snapshot", key=event_id)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/{event_id}/snapshot", response_class=FileResponse, responses={**_JPEG, **error_responses(404)},
            summary="The event's JPEG snapshot with its box drawn (thumb=1: the thumbnail).")
async def get_snapshot(request: Request, event_id: str = _ID,
                       thumb: bool = Query(False, description="The thumbnail instead.")) -> FileResponse:
    return await _snapshot(request, event_id, thumb)


@router.get("/{event_id}/thumbnail", response_class=FileResponse, responses={**_JPEG, **error_responses(404)},
            summary="The event's thumbnail JPEG.")
async def get_thumbnail(request: Request, event_id: str = _ID) -> FileResponse:
    return await _snapshot(request, event_id, True)


def _ws_filter(websocket: WebSocket) -> EventFilter:
    q = websocket.query_params
    for name in ("stream", "label"):
        value = q.get(name)
        if value is not None and len(value) > 128:
            raise ValidationError(f"{name}: at most 128 characters", field=name, expected="<= 128 characters")
    if len(q.get("type") or "") > 200:
        raise ValidationError("type: at most 200 characters", field="type", expected="<= 200 characters")
    return EventFilter(q.get("stream") or None, q.get("label") or None, parse_types(q.get("type")))


@ws_router.websocket("/ws/events")
async def ws_events(websocket: WebSocket) -> None:
    """Live events as ``{"type": "event", "event": {...}}``; ``{"type": "dropped", "count": n}`` when
    this client fell behind. Errors (bad key, bad filter) are sent as one unified error body, then
    the socket is closed with code ``4000 + HTTP status``."""
    ctx: AppContext = websocket.app.state.ctx
    try:
        principal = await authorize_websocket(websocket)
        flt = _ws_filter(websocket)
    except AISPError as exc:
        await websocket.accept()
        await websocket.send_text(json.dumps(exc.to_body(path=websocket.url.path, method="GET")))
        await websocket.close(code=4000 + exc.status_code)
        return
    await websocket.accept()
    listener = ctx.event_fanout.listen(flt)
    revoked: UnauthorizedError | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_disconnect, websocket, tg.cancel_scope)
            checked = time.monotonic()
            while not ctx.stopping.is_set():
                if time.monotonic() - checked >= _WAIT_S:  # a revoked key ends the feed
                    checked = time.monotonic()
                    try:
                        await ctx.auth.ensure_active(principal)
                    except UnauthorizedError as exc:
                        revoked = exc
                        break
                    except AISPError:  # the store is briefly away: keep serving what is known
                        pass
                got = None
                # wait at most until the next key check: notice a shutdown or a revocation within a second
                with anyio.move_on_after(max(0.05, _WAIT_S - (time.monotonic() - checked))):
                    got = await listener.next()
                if got is None:
                    continue
                event, dropped = got
                if dropped:
                    await websocket.send_text(json.dumps({"type": "dropped", "count": dropped}))
                payload: dict[str, Any] = {"type": "event", "event": event.to_dict()}
                await websocket.send_text(json.dumps(payload))
            tg.cancel_scope.cancel()
        if revoked is not None:  # the key was revoked: say so, then close with 4401
            await websocket.send_text(json.dumps(revoked.to_body(path=websocket.url.path, method="GET")))
            await websocket.close(code=4401)
        else:
            await websocket.close()
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        ctx.event_fanout.remove(listener)


async def _until_disconnect(websocket: WebSocket, scope: anyio.CancelScope) -> None:
    """Read (and ignore) what the client sends; end the connection's scope when it goes."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    finally:
        scope.cancel()
