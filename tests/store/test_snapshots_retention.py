from __future__ import annotations

import threading

import pytest

from aisp.errors import ValidationError
from aisp.store import RetentionWorker, Snapshotter, Store
from aisp.store.snapshots import SnapshotPoint, _downsample


def test_add_and_query(store):
    first = {"fps": 10, "latency_p99": 12.5, "hit_rate": 0.9, "rss": 100, "cpu": 50, "x": 1}
    store.snapshots.add(first, ts=1.0)
    store.snapshots.add({"fps": 20, "rss": float("nan"), "cpu": "bad"}, ts=2.0)
    store.snapshots.add({"fps": None, "rss": 120}, ts=3.0)
    assert store.snapshots.query("fps", 0) == [SnapshotPoint(1.0, 10.0), SnapshotPoint(2.0, 20.0)]
    assert store.snapshots.query("rss", 0) == [SnapshotPoint(1.0, 100.0), SnapshotPoint(3.0, 120.0)]
    assert store.snapshots.query("fps", 1.5) == [SnapshotPoint(2.0, 20.0)]
    assert store.snapshots.query("latency_p99", 0, until=1.5) == [SnapshotPoint(1.0, 12.5)]
    with pytest.raises(ValidationError) as info:
        store.snapshots.query("latency", 0)
    assert info.value.field == "metric"


def test_query_downsamples(store):
    for i in range(100):
        store.snapshots.add({"fps": i}, ts=float(i))
    pts = store.snapshots.query("fps", 0, max_points=10)
    assert len(pts) == 10
    assert pts[0] == SnapshotPoint(4.5, 4.5) and pts[-1].value == pytest.approx(94.5)
    assert len(store.snapshots.query("fps", 0, max_points=None)) == 100


def test_downsample_keeps_every_point_in_some_bucket():
    pts = [SnapshotPoint(float(i), 1.0) for i in range(7)]
    out = _downsample(pts, 3)
    assert len(out) == 3 and all(p.value == 1.0 for p in out)


def test_snapshotter_takes_one_per_tick_without_sleeping():
    taken: list[tuple[float, dict]] = []
    ticks = iter([False, False, False, True])  # wait() returns True when told to stop
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return next(ticks)

    clock = iter([1.0, 2.0, 3.0])
    s = Snapshotter(lambda: {"fps": 1.0}, lambda m, ts: taken.append((ts, m)), interval=5.0,
                    clock=lambda: next(clock), wait=wait)
    s.run()
    assert waits == [5.0] * 4
    assert taken == [(1.0, {"fps": 1.0}), (2.0, {"fps": 1.0}), (3.0, {"fps": 1.0})] and s.taken == 3


def test_snapshotter_survives_failures(caplog):
    calls = {"n": 0}

    def gather():
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return {"fps": 2.0}

    s = Snapshotter(gather, lambda m, ts: None, interval=1.0, clock=lambda: 0.0)
    assert s.take() is False and s.take() is True
    assert (s.errors, s.taken) == (1, 1)
    assert "boom" in caplog.text
    with pytest.raises(ValidationError):
        Snapshotter(gather, lambda m, ts: None, interval=0)


def test_snapshotter_thread_stops_promptly(store):
    got = threading.Event()

    def gather():
        got.set()
        return {"fps": 3.0, "cpu": 1.0}

    snap = store.start_snapshots(gather, interval=0.01)
    assert got.wait(5)
    snap.stop()
    assert snap.taken >= 1 and store.snapshots.query("fps", 0)[0].value == 3.0


def test_retention_deletes_only_old_rows(db_url, settings):
    now = [10 * 3600.0]
    with Store(db_url, settings=settings, clock=lambda: now[0]) as store:
        for h in range(10):
            store.events.submit({"stream_id": "s", "window_start": h * 3600.0, "window_end": h * 3600.0 + 1})
            store.snapshots.add({"fps": h}, ts=h * 3600.0)
        assert store.events.flush(10)
        worker = RetentionWorker(store.event_log.delete_older_than, store.snapshots.delete_older_than,
                                 event_retention_hours=3, snapshot_retention_hours=5, clock=lambda: now[0])
        res = worker.run_once()
        assert (res.events_deleted, res.snapshots_deleted) == (7, 5)
        assert [e.window_start for e in store.event_log.query()] == [h * 3600.0 for h in (7, 8, 9)]
        assert [p.value for p in store.snapshots.query("fps", 0)] == [5, 6, 7, 8, 9]
        assert worker.run_once().events_deleted == 0


def test_retention_thread_runs_and_stops():
    ran = threading.Event()

    def delete(cutoff: float) -> int:
        ran.set()
        return 0

    w = RetentionWorker(delete, delete, event_retention_hours=1, snapshot_retention_hours=1, interval=3600)
    w.start()
    assert ran.wait(5)
    w.stop(timeout=5)  # returns at once although the interval is an hour
    assert w.runs >= 1
    with pytest.raises(ValidationError, match="event_retention_hours"):
        RetentionWorker(delete, delete, event_retention_hours=0, snapshot_retention_hours=1)


def test_store_uses_retention_settings(tmp_path):
    from aisp.settings import load_settings

    s = load_settings(environ={}, data_dir=tmp_path, event_retention_hours=2, snapshot_retention_hours=4)
    with Store(settings=s) as store:
        assert store.retention.event_retention_s == 7200 and store.retention.snapshot_retention_s == 14400
