"""Discrete events (table ``events``): what :class:`aisp.events.Event` producers published.

Writes go through an :class:`~aisp.store.events.EventWriter` (batched, on its own thread, never
on the frame path; the store subscribes it to the runtime's event bus); they skip an id already
stored (:func:`insert_events`), so a retried batch is written once. Reads:

- :meth:`EventRecordRepository.query` filters by stream, label, type and a time range, newest
  first, and pages with an opaque cursor (the ``(time, id)`` of the last row returned), so a page
  never repeats or skips a row even while new events arrive;
- :meth:`EventRecordRepository.get` one event by id;
- :meth:`EventRecordRepository.delete_older_than` for retention;
- :meth:`EventRecordRepository.after_seq`, :meth:`~EventRecordRepository.by_seq` and
  :meth:`~EventRecordRepository.max_seq` follow new rows in insertion order (``seq``, migration
  0005), for the cluster's event relay.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from aisp.errors import ValidationError
from aisp.events import Event
from aisp.store.db import Database
from aisp.store.tables import EventRow

__all__ = ["EventPage", "EventRecordRepository", "coerce_event", "decode_cursor", "encode_cursor",
           "insert_events"]

_COLUMNS = ("id", "type", "stream_id", "time", "frame_index", "label", "track_id", "confidence", "box",
            "zone", "direction", "seconds", "state", "snapshot", "message")


def coerce_event(value: Any) -> Event:
    """``value`` when it is an :class:`Event`; a mapping is read with :meth:`Event.from_dict`."""
    if isinstance(value, Event):
        return value
    if isinstance(value, dict):
        return Event.from_dict(value)
    raise ValidationError(f"invalid event: expected an Event, got {type(value).__name__}", field="event",
                          expected="aisp.events.Event")


def _row(event: Event) -> dict[str, Any]:
    return {
        "id": event.id, "type": event.type, "stream_id": event.stream_id[:128], "time": float(event.time),
        "frame_index": event.frame_index, "label": None if event.label is None else event.label[:128],
        "track_id": event.track_id, "confidence": event.confidence,
        "box": None if event.box is None else [round(v, 2) for v in event.box],
        "zone": event.zone, "direction": event.direction, "seconds": event.seconds, "state": event.state,
        "snapshot": event.snapshot, "message": event.message,
    }


def insert_events(session: Session, dialect: str, events: Sequence[Event]) -> int:
    """Insert ``events`` in ``session``'s transaction, skipping ids already stored: a batch retried
    after a lost acknowledgement (the commit went through, the answer did not) inserts nothing twice."""
    if not events:
        return 0
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(EventRow).on_conflict_do_nothing(index_elements=["id"])
    session.execute(stmt, [_row(e) for e in events])
    return len(events)


def _event(row: EventRow) -> Event:
    data = {c: getattr(row, c) for c in _COLUMNS}
    return Event.from_dict(data)


def encode_cursor(time: float, event_id: str) -> str:
    return base64.urlsafe_b64encode(f"{time!r}|{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The ``(time, id)`` in ``cursor``; ``ValidationError`` (field ``cursor``) when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        time_s, event_id = raw.split("|", 1)
        t = float(time_s)
        if not event_id or len(event_id) > 32 or t != t:
            raise ValueError(raw)
        return t, event_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("cursor: not a cursor from a previous page", field="cursor",
                              expected="the next_cursor of a previous response") from None


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    #: pass as ``cursor`` for the next (older) page; None on the last page
    next_cursor: str | None


class EventRecordRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert_many(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        with self._db.session() as s:
            return insert_events(s, self._db.dialect, events)

    def get(self, event_id: str) -> Event | None:
        with self._db.session() as s:
            row = s.get(EventRow, event_id)
            return None if row is None else _event(row)

    def query(
        self,
        *,
        stream_id: str | None = None,
        label: str | None = None,
        types: Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> EventPage:
        """Newest first (``time``, then ``id``), at most ``limit``; see the module docstring."""
        stmt = select(EventRow).order_by(EventRow.time.desc(), EventRow.id.desc()).limit(limit + 1)
        if stream_id is not None:
            stmt = stmt.where(EventRow.stream_id == stream_id)
        if label is not None:
            stmt = stmt.where(EventRow.label == label)
        if types:
            stmt = stmt.where(EventRow.type.in_(list(types)))
        if since is not None:
            stmt = stmt.where(EventRow.time >= since)
        if until is not None:
            stmt = stmt.where(EventRow.time < until)
        if cursor is not None:
            t, last_id = decode_cursor(cursor)
            stmt = stmt.where(or_(EventRow.time < t, and_(EventRow.time == t, EventRow.id < last_id)))
        with self._db.session() as s:
            rows = list(s.scalars(stmt))
            events = [_event(r) for r in rows[:limit]]
        more = len(rows) > limit
        return EventPage(events, encode_cursor(events[-1].time, events[-1].id) if more and events else None)

    def max_seq(self) -> int:
        """The newest ``seq`` (0 when the table is empty)."""
        with self._db.session() as s:
            return int(s.scalar(select(func.max(EventRow.seq))) or 0)

    def after_seq(self, seq: int, limit: int) -> list[tuple[int, Event]]:
        """Up to ``limit`` rows with ``seq`` above ``seq``, in ``seq`` order, as ``(seq, event)``."""
        stmt = select(EventRow).where(EventRow.seq > seq).order_by(EventRow.seq).limit(limit)
        with self._db.session() as s:
            return [(r.seq, _event(r)) for r in s.scalars(stmt)]

    def by_seq(self, seqs: Sequence[int]) -> list[tuple[int, Event]]:
        """The rows among ``seqs`` that exist now, in ``seq`` order (asked 1000 at a time)."""
        out: list[tuple[int, Event]] = []
        wanted = sorted(seqs)
        with self._db.session() as s:
            for i in range(0, len(wanted), 1000):
                stmt = select(EventRow).where(EventRow.seq.in_(wanted[i:i + 1000])).order_by(EventRow.seq)
                out.extend((r.seq, _event(r)) for r in s.scalars(stmt))
        return out

    def count(self, *, stream_id: str | None = None) -> int:
        stmt = select(func.count()).select_from(EventRow)
        if stream_id is not None:
            stmt = stmt.where(EventRow.stream_id == stream_id)
        with self._db.session() as s:
            return int(s.scalar(stmt) or 0)

    def delete_older_than(self, cutoff: float) -> int:
        with self._db.session() as s:
            return int(s.execute(delete(EventRow).where(EventRow.time < cutoff)).rowcount or 0)
