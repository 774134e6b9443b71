"""``/api/webhooks`` (admin only, reads included: URLs may carry tokens) and ``/api/delivery``.

A webhook's URL is checked against the source host policy when it is created or changed (403
``SOURCE_NOT_ALLOWED``: loopback, link-local and metadata addresses are refused unless listed in
``AISP_SOURCE_HOSTS``) and again at every delivery. The signing secret is returned once, by the
create (or ``rotate_secret``) response, and never again.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import Response

from aisp.api.auth import require_admin
from aisp.api.context import AppContext
from aisp.api.schemas import error_responses
from aisp.api.webhook_schemas import (
    DeliveryList,
    DeliveryOut,
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
)
from aisp.errors import ValidationError
from aisp.netpolicy import SourcePolicy

if TYPE_CHECKING:
    from aisp.store.webhook_repo import DeliveryRecord, WebhookRecord

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"], dependencies=[Depends(require_admin)])
delivery_router = APIRouter(tags=["webhooks"])

_ID = Path(description="Webhook id.", max_length=32, pattern=r"^[0-9a-f]{1,32}$")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def _dispatcher(ctx: AppContext) -> Any:
    service = ctx.delivery
    return None if service is None else service.webhooks


def _out(ctx: AppContext, rec: WebhookRecord) -> dict[str, Any]:
    d = rec.to_dict()
    d["created_at"], d["updated_at"] = _iso(rec.created_at), _iso(rec.updated_at)
    dispatcher = _dispatcher(ctx)
    if dispatcher is not None:
        ledger = next((x for x in dispatcher.ledgers() if x.target == f"webhook:{rec.id}"), None)
        d["delivery"] = ledger.snapshot().to_dict() if ledger is not None else None
    return d


def _delivery_out(rec: DeliveryRecord) -> DeliveryOut:
    d = rec.to_dict()
    d["created_at"], d["updated_at"] = _iso(rec.created_at), _iso(rec.updated_at)
    return DeliveryOut(**d)


def _check_url(ctx: AppContext, url: str) -> str:
    """The URL if the policy allows it (resolves the host: call off the event loop)."""
    url = url.strip()
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise ValidationError("url: spaces and control characters are not allowed", field="url")
    if "#" in url:
        raise ValidationError("url: a fragment (#...) is not allowed", field="url")
    try:
        urlsplit(url).port  # noqa: B018 - raises on a port that is not a number in 0..65535
    except ValueError as exc:
        raise ValidationError(f"url: {exc}", field="url") from None
    return SourcePolicy.from_settings(ctx.settings).check_url(
        url, schemes=("http", "https"), setting_for_scheme="webhook URL (http or https)"
    )


def _reload(ctx: AppContext) -> None:
    dispatcher = _dispatcher(ctx)
    if dispatcher is not None:
        dispatcher.reload()


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a webhook; its signing secret is in this response only.",
    responses=error_responses(400, 403, 503),
)
async def create_webhook(request: Request, body: WebhookCreate) -> WebhookCreated:
    ctx = _ctx(request)
    store = ctx.require_store()

    def work() -> tuple[WebhookRecord, str]:
        from aisp.store.webhook_repo import new_secret

        url = _check_url(ctx, body.url)
        secret = body.secret or new_secret()
        rec = store.webhooks.create(url, secret=secret, name=body.name, event_types=body.event_types,
                                    streams=body.streams, labels=body.labels, enabled=body.enabled)
        _reload(ctx)
        return rec, secret

    rec, secret = await anyio.to_thread.run_sync(work)
    return WebhookCreated(**_out(ctx, rec), secret=secret)


@router.get("", response_model=WebhookList, summary="Every webhook (never its secret).")
async def list_webhooks(request: Request) -> WebhookList:
    ctx = _ctx(request)
    recs = await anyio.to_thread.run_sync(ctx.require_store().webhooks.list)
    return WebhookList(webhooks=[WebhookOut(**_out(ctx, r)) for r in recs])


@router.get("/{webhook_id}", response_model=WebhookOut, summary="One webhook.",
            responses=error_responses(404))
async def get_webhook(request: Request, webhook_id: str = _ID) -> WebhookOut:
    ctx = _ctx(request)
    rec = await anyio.to_thread.run_sync(ctx.require_store().webhooks.get, webhook_id)
    return WebhookOut(**_out(ctx, rec))


@router.patch(
    "/{webhook_id}",
    response_model=WebhookOut | WebhookCreated,
    summary="Change a webhook. Enabling it clears its failure count; rotate_secret returns the new "
    "secret once.",
    responses=error_responses(400, 403, 404),
)
async def update_webhook(request: Request, body: WebhookUpdate, webhook_id: str = _ID) -> Any:
    ctx = _ctx(request)
    store = ctx.require_store()
    if body.rotate_secret and body.secret is not None:
        raise ValidationError("give either secret or rotate_secret, not both", field="rotate_secret")

    def work() -> tuple[WebhookRecord, str | None]:
        from aisp.store.webhook_repo import new_secret

        changes = body.model_dump(exclude_unset=True, exclude={"rotate_secret"})
        changes = {k: v for k, v in changes.items() if v is not None}
        if "url" in changes:
            changes["url"] = _check_url(ctx, changes["url"])
        new = new_secret() if body.rotate_secret else changes.get("secret")
        if new is not None:
            changes["secret"] = new
        rec = store.webhooks.update(webhook_id, **changes)
        _reload(ctx)
        return rec, new

    rec, secret = await anyio.to_thread.run_sync(work)
    if secret is not None:
        return WebhookCreated(**_out(ctx, rec), secret=secret)
    return WebhookOut(**_out(ctx, rec))


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook and its delivery log.",
               responses=error_responses(404))
async def delete_webhook(request: Request, webhook_id: str = _ID) -> Response:
    ctx = _ctx(request)
    store = ctx.require_store()

    def work() -> None:
        from aisp.errors import NotFoundError

        if not store.webhooks.delete(webhook_id):
            raise NotFoundError(f"webhook '{webhook_id}' not found", kind="webhook", key=webhook_id)
        _reload(ctx)

    await anyio.to_thread.run_sync(work)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/test",
    response_model=DeliveryOut,
    summary="Send one signed test delivery now (no retry) and return its log entry.",
    responses=error_responses(404, 503),
)
async def test_webhook(request: Request, webhook_id: str = _ID) -> DeliveryOut:
    ctx = _ctx(request)
    ctx.require_store()
    dispatcher = _dispatcher(ctx)
    if dispatcher is None:
        from aisp.errors import OverloadedError

        raise OverloadedError("webhook delivery is not started yet; retry shortly", retry_after=1)
    rec = await anyio.to_thread.run_sync(dispatcher.fire_test, webhook_id)
    return _delivery_out(rec)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    summary="The webhook's delivery log, newest first.",
    responses=error_responses(400, 404),
)
async def list_deliveries(
    request: Request,
    webhook_id: str = _ID,
    limit: int = Query(100, ge=1, le=1000),
    status: DeliveryStatus | None = Query(None, description="Only deliveries in this state."),
) -> DeliveryList:
    store = _ctx(request).require_store()
    recs = await anyio.to_thread.run_sync(lambda: store.webhooks.deliveries(webhook_id, limit=limit,
                                                                            status=status))
    return DeliveryList(deliveries=[_delivery_out(r) for r in recs])


@delivery_router.get(
    "/api/delivery",
    summary="Events out: MQTT and webhook delivery accounting (delivered, retried, dropped, failed, "
    "pending).",
)
async def delivery_status(request: Request) -> dict[str, Any]:
    service = _ctx(request).delivery
    if service is None:
        return {"mqtt": None, "webhooks": None}
    return await anyio.to_thread.run_sync(service.stats)
