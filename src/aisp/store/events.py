"""Detection summaries (table ``event_windows``): one row per stream per time window, written off
the frame path. Discrete events (table ``events``) are in :mod:`aisp.store.event_records`.

:class:`EventWriter` is the only way events reach the database. Its stages::

    submit() (any thread, O(1), never blocks)
        └─► bounded buffer (deque, ``buffer_size``)
              └─► writer thread: batches of up to ``batch_size`` ─► ``write_batch`` (one transaction)

When a write fails (database down), the batch goes back to the front of the buffer, the thread
waits with exponential backoff (``retry_initial`` .. ``retry_max`` seconds) and tries again;
accepted events stay buffered meanwhile. When the buffer is full, new events are refused and
counted as ``dropped`` with a rate-limited WARNING. When the database returns, writing
resumes and the backlog drains. Counters: ``submitted``, ``written``, ``buffered`` (now),
``max_buffered``, ``dropped``, ``write_errors``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select

from aisp.errors import ValidationError
from aisp.store.db import Database
from aisp.store.tables import EventWindowRow

__all__ = ["EventSummary", "EventRepository", "EventWriter", "EventWriterStats"]

log = logging.getLogger("aisp.store")


@dataclass(frozen=True)
class EventSummary:
    """Detections of one stream over one window ``[window_start, window_end)`` (epoch seconds)."""

    stream_id: str
    window_start: float
    window_end: float
    frames: int
    detections: int
    labels: dict[str, int] = field(default_factory=dict)
    max_confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def coerce(cls, value: EventSummary | Mapping[str, Any]) -> EventSummary:
        if isinstance(value, EventSummary):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError(
                f"invalid event: expected EventSummary or a mapping, got {type(value).__name__}",
                field="event", value=value, expected="EventSummary or mapping")
        try:
            return cls(
                stream_id=str(value["stream_id"]),
                window_start=float(value["window_start"]),
                window_end=float(value.get("window_end", value["window_start"])),
                frames=int(value.get("frames", 0)),
                detections=int(value.get("detections", 0)),
                labels={str(k): int(v) for k, v in dict(value.get("labels") or {}).items()},
                max_confidence=None if value.get("max_confidence") is None
                else float(value["max_confidence"]),
            )
        except KeyError as exc:
            raise ValidationError(f"invalid event: missing field {exc.args[0]!r}", field=str(exc.args[0]),
                                  expected="stream_id and window_start") from None
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"invalid event: {exc}", field="event", value=dict(value)) from None


class EventRepository:
    def __init__(self, db: Database):
        self._db = db

    def insert_many(self, events: Sequence[EventSummary]) -> int:
        if not events:
            return 0
        with self._db.session() as s:
            s.execute(insert(EventWindowRow), [e.to_dict() for e in events])
        return len(events)

    def query(self, *, stream_id: str | None = None, since: float | None = None, until: float | None = None,
              limit: int = 1000) -> list[EventSummary]:
        """Oldest first."""
        stmt = select(EventWindowRow).order_by(EventWindowRow.window_start, EventWindowRow.id).limit(limit)
        if stream_id is not None:
            stmt = stmt.where(EventWindowRow.stream_id == stream_id)
        if since is not None:
            stmt = stmt.where(EventWindowRow.window_start >= since)
        if until is not None:
            stmt = stmt.where(EventWindowRow.window_start < until)
        with self._db.session() as s:
            return [
                EventSummary(r.stream_id, r.window_start, r.window_end, r.frames, r.detections,
                             dict(r.labels), r.max_confidence)
                for r in s.scalars(stmt)
            ]

    def count(self, *, stream_id: str | None = None) -> int:
        stmt = select(func.count()).select_from(EventWindowRow)
        if stream_id is not None:
            stmt = stmt.where(EventWindowRow.stream_id == stream_id)
        with self._db.session() as s:
            return int(s.scalar(stmt) or 0)

    def delete_older_than(self, cutoff: float) -> int:
        with self._db.session() as s:
            stmt = delete(EventWindowRow).where(EventWindowRow.window_end < cutoff)
            return int(s.execute(stmt).rowcount or 0)


@dataclass(frozen=True)
class EventWriterStats:
    submitted: int
    written: int
    buffered: int
    max_buffered: int
    dropped: int
    write_errors: int
    healthy: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventWriter:
    """Batched, non-blocking event writer (see the module docstring). ``coerce`` checks and
    converts what :meth:`submit` is given (the discrete events' writer hands in its own)."""

    def __init__(
        self,
        write_batch: Callable[[Sequence[Any]], Any],
        *,
        coerce: Callable[[Any], Any] = EventSummary.coerce,
        buffer_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
        warn_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "aisp-event-writer",
    ) -> None:
        if buffer_size < 1 or batch_size < 1:
            raise ValidationError(f"buffer_size and batch_size must be >= 1, got {buffer_size}, {batch_size}",
                                  field="buffer_size", value=buffer_size, expected=">= 1")
        self._write_batch = write_batch
        self._coerce = coerce
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._warn_interval = warn_interval
        self._clock = clock
        self._name = name
        self._buf: collections.deque[Any] = collections.deque()
        self._inflight = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._healthy = True
        self._submitted = self._written = self._dropped = self._errors = self._max_buffered = 0
        self._dropped_since_warn = 0
        self._last_warn: float | None = None

    # --- producer side ---------------------------------------------------------------------
    def submit(self, event: Any) -> bool:
        """Queue one event (``coerce``-d: an :class:`EventSummary` or a mapping by default); never
        blocks. Returns False when it was dropped (buffer full)."""
        ev = self._coerce(event)
        with self._cond:
            self._submitted += 1
            pending = len(self._buf) + self._inflight
            if pending >= self.buffer_size:
                self._dropped += 1
                self._dropped_since_warn += 1
                now = self._clock()
                warn = self._last_warn is None or now - self._last_warn >= self._warn_interval
                if warn:
                    self._last_warn = now
                    n, self._dropped_since_warn = self._dropped_since_warn, 0
            else:
                self._buf.append(ev)
                self._max_buffered = max(self._max_buffered, pending + 1)
                if len(self._buf) >= self.batch_size:
                    self._cond.notify_all()
                return True
        if warn:
            log.warning("event buffer full (%s events): dropped %s event(s), %s dropped in total",
                        self.buffer_size, n, self._dropped)
        return False

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> EventWriter:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything accepted so far is written; False on timeout."""
        with self._cond:
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._buf and self._inflight == 0, timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is buffered (within ``timeout``), then stop the thread. Idempotent.

        Returns False when events were still buffered at the deadline (they are counted as dropped).
        """
        flushed = True
        if self.running:
            flushed = self.flush(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, timeout))
        with self._cond:
            left = len(self._buf)
            if left:
                self._dropped += left
                self._buf.clear()
        if left:
            log.warning("event writer closed with %s unwritten event(s); counted as dropped", left)
        return flushed and not left

    def stats(self) -> EventWriterStats:
        with self._cond:
            return EventWriterStats(self._submitted, self._written, len(self._buf) + self._inflight,
                                    self._max_buffered, self._dropped, self._errors, self._healthy)

    def wait_for(self, predicate: Callable[[EventWriterStats], bool], timeout: float) -> bool:
        """Wait until ``predicate(stats)`` holds (checked after every write attempt); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._stats_locked()), timeout)

    def _stats_locked(self) -> EventWriterStats:
        return EventWriterStats(self._submitted, self._written, len(self._buf) + self._inflight,
                                self._max_buffered, self._dropped, self._errors, self._healthy)

    # --- writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        delay = self._retry_initial
        while True:
            with self._cond:
                if not self._buf:
                    if self._stop:
                        return
                    self._cond.wait(self._flush_interval)
                    if not self._buf:
                        continue
                batch = [self._buf.popleft() for _ in range(min(self.batch_size, len(self._buf)))]
                self._inflight = len(batch)
            try:
                self._write_batch(batch)
            except Exception as exc:  # the database is away; keep the batch and back off
                with self._cond:
                    self._buf.extendleft(reversed(batch))
                    self._inflight = 0
                    self._errors += 1
                    was_healthy, self._healthy = self._healthy, False
                    self._cond.notify_all()
                if was_healthy:
                    log.warning("event writes failing, buffering (up to %s events) and retrying: %s",
                                self.buffer_size, exc)
                else:
                    log.debug("event write retry failed: %s", exc)
                with self._cond:  # submit() notifies too: wait out the whole delay unless stopping
                    if self._cond.wait_for(lambda: self._stop, delay):
                        return
                delay = min(self._retry_max, delay * 2)
                continue
            delay = self._retry_initial
            with self._cond:
                self._inflight = 0
                self._written += len(batch)
                recovered, self._healthy = not self._healthy, True
                self._cond.notify_all()
            if recovered:
                log.info("event writes resumed; %s event(s) still buffered", len(self._buf))
