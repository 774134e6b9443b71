"""The :class:`Store` facade: one database, its repositories and its background workers.

::

    store = Store(settings.resolved_database_url, settings=settings).open()   # migrates
    record, token = store.keys.create("admin", "first key")
    task = store.tasks.create(source="video.mp4", models=["fake"])
    store.events.submit(summary)          # EventWriter: never blocks
    store.event_writer.submit(event)      # discrete events (aisp.events.Event), never blocks
    store.event_records.query(stream_id="cam1", types=["enter"])
    store.snapshots.query("fps", since)   # charts
    store.webhooks.create(url, secret=...) # webhooks and their delivery log
    store.close()

``open()`` applies the Alembic migrations, then starts the event writer and the retention
worker. The periodic snapshotter needs a metrics source, so the server starts it with
:meth:`Store.start_snapshots`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aisp.errors import StoreError
from aisp.settings import Settings
from aisp.store.db import Database, redact_url
from aisp.store.event_records import EventRecordRepository, coerce_event
from aisp.store.events import EventRepository, EventWriter
from aisp.store.keys import KeyRepository
from aisp.store.migrate import current_revision, head_revision, upgrade
from aisp.store.retention import RetentionWorker
from aisp.store.snapshots import SnapshotRepository, Snapshotter
from aisp.store.stream_positions import StreamPositionRepository
from aisp.store.stream_repo import StreamRepository
from aisp.store.task_repo import TaskRepository
from aisp.store.webhook_repo import WebhookRepository

__all__ = ["Store"]

log = logging.getLogger("aisp.store")


class Store:
    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        retention_interval: float = 600.0,
        event_batch_size: int = 500,
        event_flush_interval: float = 0.5,
        event_retry_max: float = 5.0,
    ) -> None:
        self.settings = settings
        self.url = url or settings.resolved_database_url
        self._clock = clock
        self._retention_interval = retention_interval
        self._event_opts = {"batch_size": event_batch_size, "flush_interval": event_flush_interval,
                            "retry_max": event_retry_max}
        self.db: Database | None = None
        self._keys: KeyRepository | None = None
        self._tasks: TaskRepository | None = None
        self._streams: StreamRepository | None = None
        self._positions: StreamPositionRepository | None = None
        self._event_log: EventRepository | None = None
        self._snapshots: SnapshotRepository | None = None
        self._webhooks: WebhookRepository | None = None
        self._events: EventWriter | None = None
        self._event_records: EventRecordRepository | None = None
        self._event_writer: EventWriter | None = None
        self.retention: RetentionWorker | None = None
        self.snapshotter: Snapshotter | None = None

    def __repr__(self) -> str:
        return f"Store(url={redact_url(self.url)!r}, open={self.is_open})"

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Store:
        return cls(None, settings=settings, **kwargs)

    # --- lifecycle ------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.db is not None

    def open(self, *, migrate: bool = True, background: bool = True) -> Store:
        """Connect, apply migrations and start the event writer and retention (idempotent)."""
        if self.db is not None:
            return self
        t0 = time.perf_counter()
        db = Database(self.url)
        try:
            if migrate:
                upgrade(db)
        except BaseException:
            db.dispose()
            raise
        self.db = db
        self._keys = KeyRepository(db, clock=self._clock)
        self._tasks = TaskRepository(db, clock=self._clock)
        self._streams = StreamRepository(db, clock=self._clock)
        self._positions = StreamPositionRepository(db, clock=self._clock)
        self._event_log = EventRepository(db)
        self._snapshots = SnapshotRepository(db, clock=self._clock)
        self._webhooks = WebhookRepository(db, clock=self._clock)
        s = self.settings
        self._events = EventWriter(self._event_log.insert_many, buffer_size=s.event_buffer_size,
                                   **self._event_opts)
        self._event_records = EventRecordRepository(db)
        self._event_writer = EventWriter(self._event_records.insert_many, coerce=coerce_event,
                                         buffer_size=s.event_buffer_size, name="aisp-event-records",
                                         **self._event_opts)
        self.retention = RetentionWorker(
            self._event_log.delete_older_than, self._snapshots.delete_older_than,
            event_retention_hours=s.event_retention_hours,
            snapshot_retention_hours=s.snapshot_retention_hours,
            interval=self._retention_interval, clock=self._clock,
            delete_records_before=self._event_records.delete_older_than,
            records_retention_days=s.events_keep_days,
        )
        if background:
            self._events.start()
            self._event_writer.start()
            self.retention.start()
        log.info("store open: %s (%s) in %.0f ms", redact_url(self.url), db.dialect,
                 (time.perf_counter() - t0) * 1000)
        return self

    def start_snapshots(self, gather: Callable[[], Mapping[str, Any]], *, interval: float | None = None
                        ) -> Snapshotter:
        """Start taking a snapshot every ``interval`` (default ``snapshot_interval_seconds``)."""
        if self.snapshotter is not None:
            self.snapshotter.stop()
        self.snapshotter = Snapshotter(gather, self.snapshots.add,
                                       interval=interval or self.settings.snapshot_interval_seconds,
                                       clock=self._clock).start()
        return self.snapshotter

    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers, write buffered events (within ``timeout``) and disconnect. Idempotent."""
        if self.db is None:
            return
        if self.snapshotter is not None:
            self.snapshotter.stop(timeout)
        if self.retention is not None:
            self.retention.stop(timeout)
        for name, writer in (("event writer", self._events), ("event record writer", self._event_writer)):
            if writer is not None:
                writer.close(timeout)
                st = writer.stats()
                log.info("%s closed: written=%s dropped=%s write_errors=%s", name, st.written, st.dropped,
                         st.write_errors)
        self.db.dispose()
        self.db = None

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- parts -------------------------------------------------------------------------------
    def _need(self, part: Any) -> Any:
        if part is None:
            raise StoreError("the store is not open; call Store.open() first")
        return part

    @property
    def keys(self) -> KeyRepository:
        return self._need(self._keys)

    @property
    def tasks(self) -> TaskRepository:
        return self._need(self._tasks)

    @property
    def streams(self) -> StreamRepository:
        return self._need(self._streams)

    @property
    def stream_positions(self) -> StreamPositionRepository:
        """Where streams on a cluster resume (committed with their events; ``docs/cluster.md``)."""
        return self._need(self._positions)

    @property
    def events(self) -> EventWriter:
        return self._need(self._events)

    @property
    def event_writer(self) -> EventWriter:
        """Writes discrete events (:class:`aisp.events.Event`) in batches; never blocks."""
        return self._need(self._event_writer)

    @property
    def event_records(self) -> EventRecordRepository:
        """Reads discrete events (table ``events``)."""
        return self._need(self._event_records)

    @property
    def event_log(self) -> EventRepository:
        return self._need(self._event_log)

    @property
    def snapshots(self) -> SnapshotRepository:
        return self._need(self._snapshots)

    @property
    def webhooks(self) -> WebhookRepository:
        return self._need(self._webhooks)

    # --- status ----------------------------------------------------------------------------------
    def ping(self) -> bool:
        return self.db is not None and self.db.ping()

    def revision(self) -> str | None:
        return current_revision(self._need(self.db))

    def status(self) -> dict[str, Any]:
        """For ``/api/status``: dialect, reachability, schema revision, event writer counters."""
        db = self.db
        reachable = db is not None and db.ping()
        rev = None
        if reachable:
            try:
                rev = self.revision()
            except StoreError:
                reachable = False
        return {
            "open": db is not None,
            "url": redact_url(self.url),
            "dialect": db.dialect if db else None,
            "reachable": reachable,
            "revision": rev,
            "head": head_revision(),
            "events": self._events.stats().to_dict() if self._events else None,
            "event_records": self._event_writer.stats().to_dict() if self._event_writer else None,
        }
