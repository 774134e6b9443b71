"""``/api/auth``: who am I (for the dashboard), and API key management (admin only)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request, status

from aisp.api.auth import Principal, authorize, require_admin
from aisp.api.schemas import KeyCreate, KeyCreated, KeyListResponse, KeyOut, WhoAmI, error_responses

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
    return KeyOut(**_key_out(rec))
