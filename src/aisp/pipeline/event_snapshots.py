"""Event snapshots: a JPEG of the frame with the event's box drawn, and a thumbnail, per event.

:class:`SnapshotWriter` is the one way a stream's events leave the pipeline when snapshots are
on. Stages::

    emit(events, image)  (a stream's sink thread; never blocks)
        └─► bounded FIFO (``queue_size`` frames)
              └─► one writer thread: per event with a box, draw it, encode the JPEG and the
                  thumbnail, write both (``<dir>/<YYYY-MM-DD>/<id>.jpg``, ``<id>.thumb.jpg``),
                  set ``Event.snapshot``, then ``publish(event)``

so a subscriber that reads ``Event.snapshot`` finds the file. Events of a frame keep their order
(one FIFO). When the FIFO is full, the frame's events are published at once without snapshots
and counted (``skipped``); the frame path never waits on JPEG encoding or the disk.

Retention, on the same thread every ``retention_interval`` seconds: day folders older than
``keep_days`` go, then the oldest files until the total is under ``max_bytes``.

The day folder comes from the event id (its first 12 hex digits are epoch milliseconds, see
:func:`aisp.events.new_event_id`), so :meth:`SnapshotWriter.path` finds a file from the id alone.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from aisp.events import Event

__all__ = ["SnapshotWriter", "SnapshotStats", "SNAPSHOT_TYPES", "EVENT_ID_RE"]

log = logging.getLogger("aisp.pipeline")

#: Event types that get a snapshot (when their object is on the frame).
SNAPSHOT_TYPES = frozenset({"appeared", "enter", "exit", "dwell", "cross"})
#: What an event id looks like (:func:`aisp.events.new_event_id`).
EVENT_ID_RE = re.compile(r"^[0-9a-f]{26}$")
_STOP = object()
_COLOR = (255, 64, 32)  # RGB


@dataclass(frozen=True)
class SnapshotStats:
    written: int
    skipped: int
    failed: int
    queued: int
    deleted: int
    bytes_on_disk: int | None


class SnapshotWriter:
    """Writes event snapshots and publishes the events (see the module docstring). Thread-safe."""

    def __init__(
        self,
        directory: Path,
        publish: Callable[[Event], None],
        *,
        api_prefix: str = "/api/events",
        quality: int = 85,
        thumb_width: int = 320,
        keep_days: float = 7.0,
        max_bytes: int = 1 << 30,
        queue_size: int = 32,
        retention_interval: float = 600.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self._publish = publish
        self._prefix = api_prefix
        self._params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        self.thumb_width = int(thumb_width)
        self.keep_days = float(keep_days)
        self.max_bytes = int(max_bytes)
        self._queue: queue.Queue[object] = queue.Queue(queue_size)
        self._retention_interval = retention_interval
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._written = self._skipped = self._failed = self._deleted = 0
        self._last_bytes: int | None = None

    # --- paths ---------------------------------------------------------------------------------
    def path(self, event_id: str, *, thumb: bool = False) -> Path | None:
        """Where the snapshot of ``event_id`` is (or would be); None for an id that is not one."""
        if not isinstance(event_id, str) or not EVENT_ID_RE.match(event_id):
            return None
        ms = int(event_id[:12], 16)
        day = _dt.datetime.fromtimestamp(ms / 1000.0, _dt.timezone.utc).strftime("%Y-%m-%d")
        return self.directory / day / (f"{event_id}.thumb.jpg" if thumb else f"{event_id}.jpg")

    # --- producer side -------------------------------------------------------------------------
    def emit(self, events: Sequence[Event], image: np.ndarray | None) -> None:
        """Publish ``events`` of one frame, with snapshots of ``image`` (RGB) for those that get one.
        Never blocks."""
        if not events:
            return
        wants = image is not None and any(e.type in SNAPSHOT_TYPES and e.box is not None for e in events)
        if not self._closed:
            self._ensure_thread()
            try:
                self._queue.put_nowait((list(events), image if wants else None))
                return
            except queue.Full:
                with self._lock:
                    self._skipped += sum(1 for e in events if wants and e.type in SNAPSHOT_TYPES)
        for event in events:
            self._publish(event)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="aisp-event-snapshots", daemon=True)
                self._thread.start()

    # --- writer thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        next_retention = time.monotonic()
        while True:
            if time.monotonic() >= next_retention:
                try:
                    self.run_retention()
                except Exception:  # a full or read-only disk must not stop the events
                    log.exception("event snapshot retention failed")
                next_retention = time.monotonic() + self._retention_interval
            try:
                item = self._queue.get(timeout=max(0.01, next_retention - time.monotonic()))
            except queue.Empty:
                continue
            if item is _STOP:
                return
            events, image = item  # type: ignore[misc]
            for event in events:
                if image is not None and event.type in SNAPSHOT_TYPES and event.box is not None:
                    event = self._write(event, image)
                try:
                    self._publish(event)
                except Exception:
                    log.exception("publishing event %s failed", event.id)

    def _write(self, event: Event, image: np.ndarray) -> Event:
        path = self.path(event.id)
        thumb = self.path(event.id, thumb=True)
        assert path is not None and thumb is not None
        try:
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            _draw(bgr, event)
            ok, full = cv2.imencode(".jpg", bgr, self._params)
            h, w = bgr.shape[:2]
            tw = min(self.thumb_width, w)
            small = cv2.resize(bgr, (tw, max(1, round(h * tw / w))), interpolation=cv2.INTER_AREA)
            ok2, small_jpg = cv2.imencode(".jpg", small, self._params)
            if not (ok and ok2):
                raise OSError("JPEG encoding failed")
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(thumb, small_jpg.tobytes())
            _write_atomic(path, full.tobytes())  # last: its presence means both are there
        except Exception as exc:
            with self._lock:
                self._failed += 1
            log.warning("event %s: snapshot not written: %s", event.id, exc)
            return event
        with self._lock:
            self._written += 1
        return replace(event, snapshot=f"{self._prefix}/{event.id}/snapshot")

    def run_retention(self) -> int:
        """Delete day folders older than ``keep_days``, then the oldest files past ``max_bytes``.
        Returns the files deleted."""
        if not self.directory.is_dir():
            return 0
        deleted = 0
        cutoff = _dt.datetime.fromtimestamp(self._wall() - self.keep_days * 86400.0, _dt.timezone.utc)
        files: list[tuple[float, int, Path]] = []
        for day in sorted(self.directory.iterdir()):
            if not day.is_dir() or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day.name):
                continue
            end_of_day = _dt.datetime.strptime(day.name, "%Y-%m-%d").replace(tzinfo=_dt.timezone.utc) \
                + _dt.timedelta(days=1)
            for f in day.iterdir():
                if not f.is_file():
                    continue
                st = f.stat()
                if end_of_day <= cutoff or st.st_mtime < cutoff.timestamp():
                    f.unlink(missing_ok=True)
                    deleted += 1
                else:
                    files.append((st.st_mtime, st.st_size, f))
        total = sum(size for _, size, _ in files)
        if total > self.max_bytes:
            files.sort(key=lambda t: (t[0], t[2].name))
            for _mtime, size, f in files:
                if total <= self.max_bytes:
                    break
                f.unlink(missing_ok=True)
                total -= size
                deleted += 1
        for day in self.directory.iterdir():
            if day.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", day.name) and not any(day.iterdir()):
                day.rmdir()
        with self._lock:
            self._deleted += deleted
            self._last_bytes = total
        if deleted:
            log.info("event snapshot retention deleted %s file(s); %.1f MB kept", deleted, total / 1e6)
        return deleted

    def stats(self) -> SnapshotStats:
        with self._lock:
            return SnapshotStats(self._written, self._skipped, self._failed, self._queue.qsize(),
                                 self._deleted, self._last_bytes)

    def close(self, timeout: float = 5.0) -> None:
        """Write and publish what is queued (within ``timeout``), then stop. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)


def _draw(bgr: np.ndarray, event: Event) -> None:
    assert event.box is not None
    x1, y1, x2, y2 = (int(round(v)) for v in event.box)
    color = _COLOR[::-1]
    thickness = max(2, round(min(bgr.shape[:2]) / 240))
    cv2.rectangle(bgr, (x1, y1), (x2, y2), color, thickness)
    track = f"#{event.track_id}" if event.track_id is not None else None
    text = " ".join(str(p) for p in (event.label, track, event.type, event.zone) if p)
    scale = max(0.4, min(bgr.shape[:2]) / 800)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    ty = y1 - 4 if y1 - th - base - 4 > 0 else y2 + th + 4
    cv2.rectangle(bgr, (x1, ty - th - base), (x1 + tw + 4, ty + base), color, -1)
    cv2.putText(bgr, text, (x1 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
