"""The AISP store: SQLAlchemy 2 with Alembic migrations, SQLite by default, PostgreSQL when
``AISP_DATABASE_URL=postgresql+psycopg://...``.

Persisted: API keys (hashed), batch tasks (a state machine with progress), stream
definitions, detection summaries per window and discrete events (appeared, enter, cross, ...;
both written by non-blocking batched writers), periodic performance snapshots, and webhooks with
their delivery log. See ``docs/store.md``.

This package imports SQLAlchemy; ``import aisp`` never imports it.
"""

from __future__ import annotations

from aisp.store.db import Database, redact_url
from aisp.store.event_records import EventPage, EventRecordRepository
from aisp.store.events import EventRepository, EventSummary, EventWriter, EventWriterStats
from aisp.store.keys import ROLES, KeyRecord, KeyRepository
from aisp.store.migrate import current_revision, head_revision, upgrade
from aisp.store.retention import RetentionResult, RetentionWorker
from aisp.store.snapshots import METRICS, SnapshotPoint, SnapshotRepository, Snapshotter
from aisp.store.store import Store
from aisp.store.stream_positions import StreamPosition, StreamPositionRepository
from aisp.store.stream_repo import StreamRecord, StreamRepository
from aisp.store.task_repo import TASK_STATES, TaskRecord, TaskRepository
from aisp.store.webhook_repo import DELIVERY_STATES, DeliveryRecord, WebhookRecord, WebhookRepository

__all__ = [
    "Store",
    "Database",
    "redact_url",
    "upgrade",
    "current_revision",
    "head_revision",
    "KeyRecord",
    "KeyRepository",
    "ROLES",
    "TaskRecord",
    "TaskRepository",
    "TASK_STATES",
    "StreamRecord",
    "StreamRepository",
    "StreamPosition",
    "StreamPositionRepository",
    "EventSummary",
    "EventRepository",
    "EventWriter",
    "EventWriterStats",
    "EventPage",
    "EventRecordRepository",
    "METRICS",
    "SnapshotPoint",
    "SnapshotRepository",
    "Snapshotter",
    "RetentionResult",
    "RetentionWorker",
    "WebhookRecord",
    "WebhookRepository",
    "DeliveryRecord",
    "DELIVERY_STATES",
]

