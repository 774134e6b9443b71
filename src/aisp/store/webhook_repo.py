"""Webhooks and their delivery log (tables ``webhooks`` and ``webhook_deliveries``, migration 0003).

A webhook is a URL, an event filter (event types, streams, labels; an empty list matches
everything), a signing secret and an ``enabled`` flag. The secret is kept so that deliveries can
be signed; :class:`WebhookRecord` never shows it in ``repr`` or :meth:`WebhookRecord.to_dict`,
and the API returns it only once, when it is created or rotated.

:meth:`WebhookRepository.record_outcome` counts consecutive failed deliveries in one transaction
and disables the webhook when the count reaches the bound, so two workers finishing at once
cannot both miss the bound.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select

from aisp.errors import NotFoundError, ValidationError
from aisp.store.db import Database
from aisp.store.tables import WebhookDeliveryRow, WebhookRow

__all__ = ["WebhookRecord", "DeliveryRecord", "WebhookRepository", "DELIVERY_STATES", "new_secret"]

#: pending: not settled yet (waiting for a retry); the rest are final
DELIVERY_STATES = ("pending", "delivered", "failed", "dropped")
_EXCERPT = 512


def new_secret() -> str:
    """A signing secret: 32 random bytes, URL-safe base64 (43 characters), prefixed ``whsec_``."""
    return "whsec_" + secrets.token_urlsafe(32)


def new_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class WebhookRecord:
    id: str
    name: str
    url: str
    event_types: tuple[str, ...]
    streams: tuple[str, ...]
    labels: tuple[str, ...]
    enabled: bool
    consecutive_failures: int
    disabled_reason: str | None
    created_at: float
    updated_at: float
    secret: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the secret."""
        return {
            "id": self.id, "name": self.name, "url": self.url, "event_types": list(self.event_types),
            "streams": list(self.streams), "labels": list(self.labels), "enabled": self.enabled,
            "consecutive_failures": self.consecutive_failures, "disabled_reason": self.disabled_reason,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }

    @classmethod
    def from_row(cls, r: WebhookRow) -> WebhookRecord:
        return cls(r.id, r.name, r.url, tuple(r.event_types), tuple(r.streams), tuple(r.labels),
                   bool(r.enabled), r.consecutive_failures, r.disabled_reason, r.created_at, r.updated_at,
                   r.secret)


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    webhook_id: str
    event_id: str | None
    event_type: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    response_excerpt: str | None
    duration_ms: float | None
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_row(cls, r: WebhookDeliveryRow) -> DeliveryRecord:
        return cls(r.id, r.webhook_id, r.event_id, r.event_type, r.status, r.attempts, r.response_status,
                   r.last_error, r.response_excerpt, r.duration_ms, r.created_at, r.updated_at)


def _strings(name: str, values: Iterable[str]) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValidationError(f"{name}: expected a list of strings", field=name)
    out = []
    for v in values:
        if not isinstance(v, str) or not v or len(v) > 128:
            raise ValidationError(f"{name}: expected strings of 1..128 characters, got {v!r}", field=name)
        if v not in out:
            out.append(v)
    if len(out) > 100:
        raise ValidationError(f"{name}: at most 100 entries, got {len(out)}", field=name)
    return out


class WebhookRepository:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    # --- webhooks -----------------------------------------------------------------------------
    def create(
        self,
        url: str,
        *,
        secret: str,
        name: str = "",
        event_types: Iterable[str] = (),
        streams: Iterable[str] = (),
        labels: Iterable[str] = (),
        enabled: bool = True,
    ) -> WebhookRecord:
        now = self._clock()
        row = WebhookRow(
            id=new_id(), name=name, url=url, secret=secret, event_types=_strings("event_types", event_types),
            streams=_strings("streams", streams), labels=_strings("labels", labels), enabled=bool(enabled),
            consecutive_failures=0, disabled_reason=None, created_at=now, updated_at=now,
        )
        with self._db.session() as s:
            s.add(row)
            s.flush()
            return WebhookRecord.from_row(row)

    def get(self, webhook_id: str) -> WebhookRecord:
        with self._db.session() as s:
            row = s.get(WebhookRow, webhook_id)
            if row is None:
                raise NotFoundError(f"webhook '{webhook_id}' not found", kind="webhook", key=webhook_id)
            return WebhookRecord.from_row(row)

    def list(self) -> list[WebhookRecord]:
        with self._db.session() as s:
            rows = s.scalars(select(WebhookRow).order_by(WebhookRow.created_at, WebhookRow.id))
            return [WebhookRecord.from_row(r) for r in rows]

    def update(self, webhook_id: str, **changes: Any) -> WebhookRecord:
        """Change ``name``, ``url``, ``secret``, ``event_types``, ``streams``, ``labels``, ``enabled``.
        Enabling a webhook clears its failure count and the reason it was disabled."""
        allowed = {"name", "url", "secret", "event_types", "streams", "labels", "enabled"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValidationError(f"webhook: unknown fields {sorted(unknown)}", field=sorted(unknown)[0])
        with self._db.session() as s:
            row = s.get(WebhookRow, webhook_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"webhook '{webhook_id}' not found", kind="webhook", key=webhook_id)
            for key, value in changes.items():
                if key in ("event_types", "streams", "labels"):
                    value = _strings(key, value)
                setattr(row, key, value)
            if changes.get("enabled") is True:
                row.consecutive_failures = 0
                row.disabled_reason = None
            row.updated_at = self._clock()
            s.flush()
            return WebhookRecord.from_row(row)

    def delete(self, webhook_id: str) -> bool:
        """Delete a webhook and its delivery log; False when there was none."""
        with self._db.session() as s:
            row = s.get(WebhookRow, webhook_id)
            if row is None:
                return False
            s.delete(row)
            s.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.webhook_id == webhook_id))
            return True

    def record_outcome(self, webhook_id: str, *, success: bool, disable_after: int) -> WebhookRecord | None:
        """Reset (success) or bump (failure) the consecutive failure count; disable at the bound.
        None when the webhook was deleted meanwhile."""
        with self._db.session() as s:
            row = s.get(WebhookRow, webhook_id, with_for_update=True)
            if row is None:
                return None
            if success:
                row.consecutive_failures = 0
            else:
                row.consecutive_failures += 1
                if row.enabled and row.consecutive_failures >= disable_after:
                    row.enabled = False
                    row.disabled_reason = (f"disabled after {row.consecutive_failures} consecutive failed "
                                           "deliveries (webhook_disable_after)")
            row.updated_at = self._clock()
            s.flush()
            return WebhookRecord.from_row(row)

    # --- the delivery log ---------------------------------------------------------------------
    def log_delivery(
        self,
        delivery_id: str,
        webhook_id: str,
        *,
        event_id: str | None,
        event_type: str,
        status: str,
        attempts: int,
        response_status: int | None = None,
        last_error: str | None = None,
        response_excerpt: str | None = None,
        duration_ms: float | None = None,
        created_at: float | None = None,
    ) -> DeliveryRecord:
        """Insert or update the row of ``delivery_id``."""
        if status not in DELIVERY_STATES:
            raise ValidationError(f"delivery status: expected one of {DELIVERY_STATES}, got {status!r}",
                                  field="status")
        now = self._clock()
        with self._db.session() as s:
            row = s.get(WebhookDeliveryRow, delivery_id)
            if row is None:
                row = WebhookDeliveryRow(id=delivery_id, webhook_id=webhook_id, event_id=event_id,
                                         event_type=event_type, created_at=created_at or now)
                s.add(row)
            row.status = status
            row.attempts = attempts
            row.response_status = response_status
            row.last_error = None if last_error is None else last_error[:_EXCERPT]
            row.response_excerpt = None if response_excerpt is None else response_excerpt[:_EXCERPT]
            row.duration_ms = duration_ms
            row.updated_at = now
            s.flush()
            return DeliveryRecord.from_row(row)

    def deliveries(
        self, webhook_id: str, *, limit: int = 100, status: str | None = None
    ) -> list[DeliveryRecord]:
        """The newest deliveries of a webhook first."""
        if status is not None and status not in DELIVERY_STATES:
            raise ValidationError(f"status: expected one of {DELIVERY_STATES}, got {status!r}",
                                  field="status")
        with self._db.session() as s:
            if s.get(WebhookRow, webhook_id) is None:
                raise NotFoundError(f"webhook '{webhook_id}' not found", kind="webhook", key=webhook_id)
            q = select(WebhookDeliveryRow).where(WebhookDeliveryRow.webhook_id == webhook_id)
            if status is not None:
                q = q.where(WebhookDeliveryRow.status == status)
            q = q.order_by(WebhookDeliveryRow.created_at.desc(), WebhookDeliveryRow.id.desc()).limit(limit)
            return [DeliveryRecord.from_row(r) for r in s.scalars(q)]

    def delete_deliveries_older_than(self, cutoff: float) -> int:
        with self._db.session() as s:
            result = s.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.updated_at < cutoff))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
