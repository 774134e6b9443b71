"""Requests and responses of ``/api/webhooks`` and ``/api/delivery``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aisp.events import EVENT_TYPES

__all__ = [
    "WebhookCreate", "WebhookUpdate", "WebhookOut", "WebhookCreated", "WebhookList", "DeliveryOut",
    "DeliveryList", "DeliveryStatus",
]

_Name = Field(default="", max_length=200, description="A label for people.")
_Url = Field(min_length=1, max_length=2048, description="http:// or https:// URL; checked against the "
             "source host policy (AISP_SOURCE_HOSTS) now and at every delivery.")
_Filter = Field(default_factory=list, max_length=100)
_Secret = Field(default=None, min_length=16, max_length=256, description="Signing secret (16..256 "
                "printable characters); generated when omitted. Returned once, in this response only.")


def _check_types(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    bad = [v for v in values if v not in EVENT_TYPES]
    if bad:
        raise ValueError(f"unknown event types {bad}; expected some of {sorted(EVENT_TYPES)}")
    return values


def _check_names(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    for v in values:
        if not v or len(v) > 128 or any(ord(ch) < 32 for ch in v):
            raise ValueError(f"expected names of 1..128 printable characters, got {v!r}")
    return values


def _check_secret(value: str | None) -> str | None:
    if value is not None and any(ord(ch) < 33 or ord(ch) > 126 for ch in value):
        raise ValueError("expected printable ASCII characters without spaces")
    return value


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = _Url
    name: str = _Name
    event_types: list[str] = Field(
        default_factory=list, max_length=16,
        description=f"Event types to send; empty: all ({', '.join(sorted(EVENT_TYPES))}).",
    )
    streams: list[str] = Field(default_factory=list, max_length=100, description="Stream ids; empty: all.")
    labels: list[str] = Field(default_factory=list, max_length=100, description="Labels; empty: all.")
    secret: str | None = _Secret
    enabled: bool = True

    _types = field_validator("event_types")(_check_types)
    _names = field_validator("streams", "labels")(_check_names)
    _secret = field_validator("secret")(_check_secret)


class WebhookUpdate(BaseModel):
    """Fields to change; those left out stay. ``rotate_secret: true`` generates a new secret,
    returned in this response only."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    name: str | None = Field(default=None, max_length=200)
    event_types: list[str] | None = Field(default=None, max_length=16)
    streams: list[str] | None = Field(default=None, max_length=100)
    labels: list[str] | None = Field(default=None, max_length=100)
    secret: str | None = _Secret
    rotate_secret: bool = False
    enabled: bool | None = None

    _types = field_validator("event_types")(_check_types)
    _names = field_validator("streams", "labels")(_check_names)
    _secret = field_validator("secret")(_check_secret)


class WebhookOut(BaseModel):
    id: str
    name: str
    url: str
    event_types: list[str]
    streams: list[str]
    labels: list[str]
    enabled: bool
    consecutive_failures: int
    disabled_reason: str | None = None
    created_at: str
    updated_at: str
    delivery: dict[str, Any] | None = Field(default=None, description="Accounting since the server started.")


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret. Shown here only; store it now.")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


DeliveryStatus = Literal["pending", "delivered", "failed", "dropped"]


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str
    event_id: str | None = None
    event_type: str
    status: str
    attempts: int
    response_status: int | None = None
    last_error: str | None = None
    response_excerpt: str | None = None
    duration_ms: float | None = None
    created_at: str
    updated_at: str


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]
