"""Discrete events in the store (SQLite and PostgreSQL): migration 0002 keeps the window
summaries (renamed to event_windows), the batched writer, filters, cursor pages, retention."""

from __future__ import annotations

import pytest

from aisp.errors import ValidationError
from aisp.events import Event
from aisp.store import Database, Store, upgrade
from aisp.store.event_records import decode_cursor, encode_cursor


def test_migration_0002_keeps_the_window_summaries(db_url, settings) -> None:
    import time

    from sqlalchemy import text

    now = time.time()  # recent: the store's retention must not take the row
    db = Database(db_url)
    try:
        assert upgrade(db, "0001") == (None, "0001")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO events (stream_id, window_start, window_end, frames, detections, "
                              "labels) VALUES ('cam', :t, :t, 5, 2, '{\"face\": 2}')"), {"t": now})
        assert upgrade(db, "0002") == ("0001", "0002")
    finally:
        db.dispose()
    with Store(db_url, settings=settings) as store:
        rows = store.event_log.query(stream_id="cam", since=0)
        assert [(r.frames, r.detections, r.labels) for r in rows] == [(5, 2, {"face": 2})]
        assert store.event_records.count() == 0


def _ev(i: int, **kw) -> Event:
    base = {"type": "enter", "stream_id": "cam1", "time": 1000.0 + i // 2, "label": "person", "track_id": i,
            "zone": "door", "box": (1, 2, 3, 4), "confidence": 0.5}
    base.update(kw)
    return Event(**base)


def test_writer_filters_and_pages(store) -> None:
    events = [_ev(i) for i in range(10)] + [
        _ev(10, type="cross", direction="in", zone="gate"),
        _ev(11, stream_id="cam2", label="car"),
        Event("stream", "cam1", 1006.5, state="failed", message="source gone"),
    ]
    for e in events:
        assert store.event_writer.submit(e)
    with pytest.raises(ValidationError):
        store.event_writer.submit("not an event")
    assert store.event_writer.flush(10)
    assert store.event_records.get(events[10].id) == events[10]
    assert store.event_records.get(events[12].id).message == "source gone"
    assert store.event_records.get("0" * 26) is None
    page = store.event_records.query(stream_id="cam1", types=["enter"], limit=100)
    assert len(page.events) == 10 and page.next_cursor is None
    assert [e.track_id for e in store.event_records.query(label="car").events] == [11]
    kinds = {e.type for e in store.event_records.query(types=["cross", "stream"]).events}
    assert kinds == {"cross", "stream"}
    assert len(store.event_records.query(since=1003.0, until=1005.0).events) == 4
    # pages of 3 over rows that share times: every row once, newest first
    ids, cursor = [], None
    while True:
        page = store.event_records.query(stream_id="cam1", limit=3, cursor=cursor)
        ids += [e.id for e in page.events]
        cursor = page.next_cursor
        if cursor is None:
            break
    cam1 = sorted((e for e in events if e.stream_id == "cam1"), key=lambda e: (e.time, e.id), reverse=True)
    assert ids == [e.id for e in cam1]
    assert store.event_records.delete_older_than(1003.0) == 6
    assert store.event_records.count() == len(events) - 6


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor(12.5, "abc")) == (12.5, "abc")
    for bad in ("", "!!", "bm9waXBl", encode_cursor(1.0, "x" * 40)):
        with pytest.raises(ValidationError) as info:
            decode_cursor(bad)
        assert info.value.details["field"] == "cursor"


def test_retention_worker_deletes_old_discrete_events() -> None:
    from aisp.store import RetentionWorker

    cutoffs: dict[str, float] = {}

    def rec(name: str):
        def delete(cutoff: float) -> int:
            cutoffs[name] = cutoff
            return 2 if name == "records" else 0
        return delete

    worker = RetentionWorker(rec("windows"), rec("snapshots"), event_retention_hours=1,
                             snapshot_retention_hours=2, clock=lambda: 1_000_000.0,
                             delete_records_before=rec("records"), records_retention_days=3)
    result = worker.run_once()
    assert result.records_deleted == 2
    assert cutoffs == {"windows": 1_000_000.0 - 3600, "snapshots": 1_000_000.0 - 7200,
                       "records": 1_000_000.0 - 3 * 86400}
    with pytest.raises(ValidationError):
        RetentionWorker(rec("w"), rec("s"), event_retention_hours=1, snapshot_retention_hours=1,
                        records_retention_days=0)
