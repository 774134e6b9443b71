"""SnapshotWriter: the JPEG and thumbnail exist before the event is published, events keep their
order, a full queue publishes without snapshots (counted), retention by age and by total size."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from aisp.events import Event, new_event_id
from aisp.pipeline.event_snapshots import SnapshotWriter

DAY = 86400.0


class Published:
    def __init__(self, writer_ref: list) -> None:
        self.events: list[Event] = []
        self.files_at_publish: list[bool] = []
        self.cond = threading.Condition()
        self.writer_ref = writer_ref

    def __call__(self, event: Event) -> None:
        writer = self.writer_ref[0]
        path = writer.path(event.id)
        with self.cond:
            self.files_at_publish.append(path is not None and path.is_file())
            self.events.append(event)
            self.cond.notify_all()

    def wait(self, n: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.events) >= n, 30)


def _writer(tmp_path: Path, **kwargs) -> tuple[SnapshotWriter, Published]:
    ref: list = []
    pub = Published(ref)
    writer = SnapshotWriter(tmp_path / "events", pub, **kwargs)
    ref.append(writer)
    return writer, pub


def _image() -> np.ndarray:
    img = np.zeros((120, 160, 3), np.uint8)
    img[40:80, 60:100] = (0, 200, 0)
    return img


def test_snapshot_written_before_publish_and_order_kept(tmp_path: Path) -> None:
    writer, pub = _writer(tmp_path, thumb_width=40)
    try:
        a = Event("appeared", "s", time.time(), track_id=1, label="x", box=(60, 40, 100, 80))
        b = Event("gone", "s", time.time(), track_id=2, label="x", box=(1, 1, 5, 5))
        c = Event("stream", "s", time.time(), state="running")
        writer.emit([a, b], _image())
        writer.emit([c], None)
        assert pub.wait(3)
    finally:
        writer.close()
    assert [e.id for e in pub.events] == [a.id, b.id, c.id]
    assert pub.events[0].snapshot == f"/api/events/{a.id}/snapshot" and pub.files_at_publish[0] is True
    assert pub.events[1].snapshot is None and pub.events[2].snapshot is None  # gone, stream: none
    full = cv2.imread(str(writer.path(a.id)))
    thumb = cv2.imread(str(writer.path(a.id, thumb=True)))
    assert full.shape == (120, 160, 3) and thumb.shape == (30, 40, 3)
    assert full[60, 60, 2] > 180  # the box's left edge is drawn in the box colour (BGR red channel)
    assert writer.stats().written == 1


def test_a_full_queue_publishes_without_snapshots(tmp_path: Path) -> None:
    gate = threading.Event()
    released: list[Event] = []

    def slow(event: Event) -> None:
        if threading.current_thread().name == "aisp-event-snapshots":
            assert gate.wait(30)  # the writer thread is stuck: the queue fills up
        released.append(event)

    writer = SnapshotWriter(tmp_path / "ev", slow, queue_size=1)
    events = [Event("enter", "s", time.time(), track_id=i, box=(1, 1, 9, 9)) for i in range(4)]
    try:
        for e in events:
            writer.emit([e], _image())  # never blocks, although nothing is consumed
        stats = writer.stats()
        assert stats.skipped >= 2
    finally:
        gate.set()
        writer.close()
    assert sorted(e.track_id for e in released) == [0, 1, 2, 3]
    assert sum(1 for e in released if e.snapshot is None) == writer.stats().skipped


def test_paths_only_for_event_ids(tmp_path: Path) -> None:
    writer = SnapshotWriter(tmp_path, lambda e: None)
    for bad in ("../../etc/passwd", "0" * 25, "G" * 26, "", "0" * 26 + "/"):
        assert writer.path(bad) is None
    eid = new_event_id(now=0.0)
    assert writer.path(eid) == tmp_path / "1970-01-01" / f"{eid}.jpg"


def _put(writer: SnapshotWriter, when: float, size: int) -> Path:
    eid = new_event_id(now=when)
    path = writer.path(eid)
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (when, when))
    return path


def test_retention_by_age_then_by_total_size(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    writer = SnapshotWriter(tmp_path, lambda e: None, keep_days=2, max_bytes=2500, wall_clock=lambda: now[0])
    old = _put(writer, now[0] - 5 * DAY, 100)
    mid = [_put(writer, now[0] - DAY + i, 1000) for i in range(3)]
    new = _put(writer, now[0] - 10, 1000)
    (tmp_path / "not-a-day").mkdir()
    assert writer.run_retention() == 3  # the old file by age, then the two oldest by size
    assert not old.exists() and not old.parent.exists()
    assert [p.exists() for p in mid] == [False, False, True] and new.exists()
    assert (tmp_path / "not-a-day").exists()
    assert writer.stats().bytes_on_disk == 2000
