"""The ORM tables (SQLAlchemy 2 typed declarative mapping).

Times are stored as UTC epoch seconds (``float``): they come from the store's injectable
clock, compare and subtract the same way on SQLite and PostgreSQL, and make retention a
single ``<`` comparison. The API renders them as ISO 8601.

Schema changes go through Alembic (``migrations/versions``); these classes and the newest
migration must describe the same schema (a test checks it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Identity, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base", "ApiKeyRow", "TaskRow", "StreamRow", "StreamPositionRow", "EventWindowRow", "EventRow",
    "SnapshotRow", "WebhookRow", "WebhookDeliveryRow",
]

JSONType = JSON().with_variant(JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only


class Base(DeclarativeBase):
    pass


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the whole token
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_state", "state"), Index("ix_tasks_created_at", "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="video")
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    models: Mapped[list[str]] = mapped_column(JSONType)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    frames_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class StreamRow(Base):
    __tablename__ = "streams"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    desired_state: Mapped[str] = mapped_column(String(16), default="running")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class StreamPositionRow(Base):
    """Where a stream resumes (migration 0004): the next frame index of its source, committed in one
    transaction with the discrete events of the frames before it (see ``stream_positions.py``)."""

    __tablename__ = "stream_positions"

    stream_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    #: frames emitted so far over every run (a moved stream goes on counting)
    frames: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[float] = mapped_column(Float)


class EventWindowRow(Base):
    """Detections of one stream summarised over one window (the history charts)."""

    __tablename__ = "event_windows"
    __table_args__ = (
        Index("ix_event_windows_stream_window", "stream_id", "window_start"),
        Index("ix_event_windows_window_start", "window_start"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stream_id: Mapped[str] = mapped_column(String(128))
    window_start: Mapped[float] = mapped_column(Float)
    window_end: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    detections: Mapped[int] = mapped_column(Integer)
    labels: Mapped[dict[str, int]] = mapped_column(JSONType)
    max_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)


class EventRow(Base):
    """One discrete event (:class:`aisp.events.Event`): appeared, gone, enter, exit, dwell, cross,
    stream. ``id`` sorts by creation time; ``time`` is the wall clock of the frame's capture;
    ``seq`` (migration 0005) is numbered by the database at insert, so a reader can follow new rows
    (:mod:`aisp.cluster.event_relay`); it may have gaps (rolled-back or skipped inserts)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_time", "time"),
        Index("ix_events_stream_time", "stream_id", "time"),
        Index("ix_events_type_time", "type", "time"),
        Index("ix_events_label_time", "label", "time"),
        Index("ix_events_seq", "seq"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    stream_id: Mapped[str] = mapped_column(String(128))
    time: Mapped[float] = mapped_column(Float)
    frame_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    track_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    box: Mapped[list[float] | None] = mapped_column(JSONType, nullable=True)
    zone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    direction: Mapped[str | None] = mapped_column(String(8), nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    snapshot: Mapped[str | None] = mapped_column(String(256), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: set by the database (an identity on PostgreSQL, a trigger on SQLite)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), nullable=False)


class SnapshotRow(Base):
    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_ts", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[float] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p99: Mapped[float | None] = mapped_column(Float, nullable=True)
    hit_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    rss: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu: Mapped[float | None] = mapped_column(Float, nullable=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


class WebhookRow(Base):
    """An admin-defined webhook (migration 0003). ``secret`` signs deliveries; the API returns it
    once, at creation (or rotation), and never again."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(256))
    event_types: Mapped[list[str]] = mapped_column(JSONType)
    streams: Mapped[list[str]] = mapped_column(JSONType)
    labels: Mapped[list[str]] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class WebhookDeliveryRow(Base):
    """One delivery of one event (or test) to one webhook: the delivery log."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_hook_created", "webhook_id", "created_at"),
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    event_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
