"""``/api/auth``: who am I (for the dashboard), URL tickets, and API key management (admin only)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field

from aisp.api.auth import Principal, authorize, require_admin
from aisp.api.schemas import KeyCreate, KeyCreated, KeyListResponse, KeyOut, WhoAmI, error_responses
from aisp.api.tickets import check_ticket_path

if TYPE_CHECKING:  # the store imports SQLAlchemy, opened by the start-up thread
    from aisp.store.keys import KeyRecord

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _key_out(rec: KeyRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "role": rec.role,
        "name": rec.name,
        "created_at": _iso(rec.created_at),
        "last_used_at": _iso(rec.last_used_at),
        "revoked": rec.revoked_at is not None,
    }


@router.get("/whoami", response_model=WhoAmI, summary="The caller's role, and whether auth is on.")
async def whoami(request: Request, principal: Principal = Depends(authorize)) -> WhoAmI:
    return WhoAmI(
        role=principal.role,
        auth=request.app.state.ctx.settings.auth,  # type: ignore[arg-type]
        key_id=principal.key_id,
        name=principal.name,
    )


class TicketCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(
        max_length=512,
        description="The path the ticket opens (`/ws/live`, `/api/streams/cam1/mjpeg`), or a prefix "
        "ending in `/` (`/api/streams/cam1/`).",
        examples=["/ws/live"],
    )


class TicketOut(BaseModel):
    ticket: str = Field(description="Send it once as `?ticket=<ticket>` on a GET or WebSocket to `path`.")
    path: str
    expires_at: str = Field(description="UTC, ISO 8601.")
    expires_in_s: float


@router.post(
    "/ticket",
    response_model=TicketOut,
    status_code=status.HTTP_201_CREATED,
    summary="A short-lived, single-use URL ticket for a WebSocket or an <img> view (viewer keys too).",
    responses=error_responses(400),
)
async def create_ticket(request: Request, body: TicketCreate,
                        principal: Principal = Depends(authorize)) -> TicketOut:
    path = check_ticket_path(body.path)
    token, ttl = request.app.state.ctx.auth.mint_ticket(principal, path)
    expires = datetime.fromtimestamp(time.time() + ttl, timezone.utc).isoformat()
    return TicketOut(ticket=token, path=path, expires_at=expires, expires_in_s=ttl)


@router.get(
    "/keys",
    response_model=KeyListResponse,
    summary="Every API key (never the key itself).",
    dependencies=[Depends(require_admin)],
)
async def list_keys(request: Request) -> KeyListResponse:
    store = request.app.state.ctx.require_store()
    recs = await anyio.to_thread.run_sync(store.keys.list)
    return KeyListResponse(keys=[KeyOut(**_key_out(r)) for r in recs])


@router.post(
    "/keys",
    response_model=KeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a key; the plain key is in this response only.",
    dependencies=[Depends(require_admin)],
)
async def create_key(request: Request, body: KeyCreate) -> KeyCreated:
    store = request.app.state.ctx.require_store()
    rec, token = await anyio.to_thread.run_sync(lambda: store.keys.create(body.role, body.name))
    return KeyCreated(**_key_out(rec), key=token)


@router.delete(
    "/keys/{key_id}",
    response_model=KeyOut,
    summary="Revoke a key (takes effect at once here).",
    dependencies=[Depends(require_admin)],
    responses=error_responses(404),
)
async def revoke_key(request: Request, key_id: str = Path(max_length=32)) -> KeyOut:
    ctx = request.app.state.ctx
    store = ctx.require_store()
    rec = await anyio.to_thread.run_sync(store.keys.revoke, key_id)
    ctx.auth.forget()
    ctx.auth.tickets.revoke_where(lambda p: p.key_id == rec.id)
    return KeyOut(**_key_out(rec))
