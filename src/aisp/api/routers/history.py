"""``/api/history``: stored performance snapshots for charts, and the detection events.

``GET /api/history?metric=fps&since=3600`` returns the points of one metric (``fps``,
``latency_p99``, ``hit_rate``, ``rss``, ``cpu``) from ``since`` on. ``since`` is an ISO 8601
time (``2026-01-01T12:00:00Z``) or a number of seconds back from now (default one hour).
Long ranges are averaged into at most ``max_points`` buckets.
``GET /api/history/events?stream_id=cam1&since=600`` returns the per-window event summaries.

This module stays light to import (no SQLAlchemy): the store does the queries, in a thread.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from aisp.api.context import AppContext
from aisp.errors import ValidationError

if TYPE_CHECKING:  # SQLAlchemy: imported by the start-up thread, not by the app module
    from aisp.store import Store

__all__ = ["router", "parse_since"]

router = APIRouter(prefix="/api/history", tags=["status"])

_METRICS = ("fps", "latency_p99", "hit_rate", "rss", "cpu")
_UNITS = {"fps": "frames/s", "latency_p99": "ms", "hit_rate": "ratio", "rss": "MiB", "cpu": "%"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid metric, since or until (VALIDATION_ERROR)."},
    503: {"description": "The store is not available (STORE_ERROR)."},
}


class HistoryPoint(BaseModel):
    t: str = Field(description="ISO 8601 time (UTC).")
    ts: float = Field(description="The same time as Unix epoch seconds.")
    value: float


class HistoryResponse(BaseModel):
    metric: str
    unit: str
    since: str
    until: str | None = None
    points: list[HistoryPoint]


class EventOut(BaseModel):
    stream_id: str
    window_start: str
    window_end: str
    frames: int
    detections: int
    labels: dict[str, int]
    max_confidence: float | None = None


class EventsResponse(BaseModel):
    since: str
    events: list[EventOut]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def parse_since(value: str | None, *, now: float, field: str = "since", default_seconds: float | None = 3600.0
                ) -> float | None:
    """Epoch seconds from an ISO 8601 time or a number of seconds back from ``now``."""
    if value is None or value == "":
        return None if default_seconds is None else now - default_seconds
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValidationError(
                f"invalid {field}: expected seconds >= 0 or an ISO 8601 time, got {value!r}",
                field=field, value=value, expected="seconds >= 0 or ISO 8601")
        return _clamp(now - seconds)
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return _clamp(parsed.timestamp())
    except (ValueError, OverflowError):
        raise ValidationError(
            f"invalid {field}: expected an ISO 8601 time (2026-01-01T12:00:00Z) or seconds back from now, "
            f"got {value!r}", field=field, value=value, expected="ISO 8601 or seconds") from None


_MAX_TS = 253402300799.0  # 9999-12-31T23:59:59Z, the last time datetime can render


def _clamp(ts: float) -> float:
    """Times before 1970 or after 9999 select nothing more; keep them renderable."""
    return min(max(ts, 0.0), _MAX_TS)


def _store(request: Request) -> Store:
    ctx: AppContext = request.app.state.ctx
    return ctx.require_store()


@router.get("", response_model=HistoryResponse, responses=_ERRORS,
            summary="Performance history of one metric (fps, latency_p99, hit_rate, rss, cpu) for charts.")
async def history(
    request: Request,
    metric: str = Query(..., description="One of: " + ", ".join(_METRICS) + ".", max_length=32),
    since: str | None = Query(None, description="ISO 8601 time, or seconds back from now (default 3600).",
                              max_length=64),
    until: str | None = Query(None, description="ISO 8601 time, or seconds back from now (default: now).",
                              max_length=64),
    max_points: int = Query(500, ge=1, le=5000, description="Average into at most this many points."),
) -> HistoryResponse:
    if metric not in _METRICS:
        raise ValidationError(f"invalid metric {metric!r}: expected one of {', '.join(_METRICS)}",
                              field="metric", value=metric, expected="|".join(_METRICS))
    now = time.time()
    t_since = parse_since(since, now=now)
    t_until = parse_since(until, now=now, field="until", default_seconds=None)
    assert t_since is not None
    store = _store(request)
    points = await anyio.to_thread.run_sync(
        lambda: store.snapshots.query(metric, t_since, until=t_until, max_points=max_points))
    return HistoryResponse(
        metric=metric, unit=_UNITS[metric], since=_iso(t_since),
        until=None if t_until is None else _iso(t_until),
        points=[HistoryPoint(t=_iso(p.ts), ts=round(p.ts, 3), value=p.value) for p in points],
    )


@router.get("/events", response_model=EventsResponse, responses=_ERRORS,
            summary="Detection events per stream and window: frames, detections per label, max confidence.")
async def events(
    request: Request,
    stream_id: str | None = Query(None, description="Only this stream.", max_length=128),
    since: str | None = Query(None, description="ISO 8601 time, or seconds back from now (default 3600).",
                              max_length=64),
    limit: int = Query(1000, ge=1, le=10_000),
) -> EventsResponse:
    t_since = parse_since(since, now=time.time())
    assert t_since is not None
    store = _store(request)
    rows = await anyio.to_thread.run_sync(
        lambda: store.event_log.query(stream_id=stream_id, since=t_since, limit=limit))
    return EventsResponse(
        since=_iso(t_since),
        events=[EventOut(stream_id=e.stream_id, window_start=_iso(e.window_start),
                         window_end=_iso(e.window_end), frames=e.frames, detections=e.detections,
                         labels=e.labels,
                         max_confidence=e.max_confidence) for e in rows],
    )
