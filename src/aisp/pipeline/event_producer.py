""":class:`StreamAnalytics`: tracking, zones and lines of one stream, turned into events.

It runs on the stream's sink thread, in frame order, before the sinks (trackers are
sequential)::

    FrameResult ─► ObjectTracker.update (per model that gives detections)
                     │  tracker_id set on each Detections (sinks and the WebSocket see it)
                     ├─► appeared (a track is confirmed) / gone (a track ends)
                     └─► ZoneTracker.update ─► enter / exit / dwell / cross
                                                 (and result.zones: who is inside on this frame)
                 ─► emit(events, frame image)   (the runtime's SnapshotWriter or the bus: never blocks)

Event times: ``time`` is the wall clock of the frame's capture (the engine clock reading
``captured_at`` moved onto the wall clock), ``captured_at`` the engine clock reading itself,
``frame_index`` the source's frame number. Zone dwell times use the media timestamp when the
source has one (a file plays faster or slower than real time), else ``captured_at``.

Zones and lines follow tracks, so a stream with zones or lines always tracks
(:class:`~aisp.pipeline.StreamSpec` turns ``track`` on).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from aisp.events import Event
from aisp.pipeline.frame_types import FrameResult
from aisp.pipeline.tracking import ObjectTracker, TrackInfo
from aisp.pipeline.zones import Happening, TrackedObject, ZoneTracker

__all__ = ["StreamAnalytics", "Emit"]

log = logging.getLogger("aisp.pipeline")

#: Where a frame's events go: ``emit(events, rgb_image_or_None)``.
Emit = Callable[[Sequence[Event], "np.ndarray | None"], None]


class StreamAnalytics:
    """Tracks, zones and lines of one stream (see the module docstring). ``counts()`` and
    ``stats()`` may be read from any thread; everything else runs on the sink thread."""

    def __init__(
        self,
        stream_id: str,
        emit: Emit,
        *,
        zones: ZoneTracker | None = None,
        tracker_factory: Callable[[], ObjectTracker] = ObjectTracker,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.stream_id = stream_id
        self._emit = emit
        self.zones = zones or ZoneTracker()
        self._tracker_factory = tracker_factory
        self._trackers: dict[str, ObjectTracker] = {}
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._by_type: dict[str, int] = {}
        self._last_time: float | None = None
        self._last_frame: int | None = None
        self._track_ms = 0.0
        self._frames = 0
        self._next_zones: ZoneTracker | None = None

    def set_zones(self, zones: ZoneTracker) -> None:
        """Use ``zones`` from the next frame on (any thread); their counts start from zero."""
        self._next_zones = zones

    # --- per frame -------------------------------------------------------------------------
    def process(self, result: FrameResult) -> None:
        """Track ``result``'s detections (setting their ``tracker_id``) and emit its events."""
        t0 = time.perf_counter()
        if self._next_zones is not None:
            self.zones, self._next_zones = self._next_zones, None
        frame = result.frame
        offset = self._wall() - self._clock()
        wall = frame.captured_at + offset
        media_t = frame.pts if frame.pts is not None else frame.captured_at
        self._last_time, self._last_frame = media_t, frame.index
        events: list[Event] = []
        objects: list[TrackedObject] = []
        ended: list[TrackInfo] = []
        for name, res in list(result.results.items()):
            dets = res.detections
            if dets is None:
                continue
            tracker = self._trackers.get(name)
            if tracker is None:
                tracker = self._trackers[name] = self._tracker_factory()
            update = tracker.update(dets)
            result.results[name] = replace(res, detections=dets.with_tracker_id(update.tracker_id))
            labels = dets.label_names
            for i, tid in enumerate(update.tracker_id.tolist()):
                if tid >= 0:
                    x1, y1, x2, y2 = (float(v) for v in dets.xyxy[i])
                    box = (x1, y1, x2, y2)
                    objects.append(TrackedObject(int(tid), labels[i], box, float(dets.confidence[i])))
            for info in update.started:
                events.append(self._event("appeared", info, frame.index, wall, frame.captured_at))
            ended.extend(update.ended)
        if self.zones:
            for h in self.zones.update(objects, media_t, frame.shape):
                events.append(self._happening(h, frame.index, wall, frame.captured_at))
            if self.zones.zones:
                result.zones = self.zones.present  # for the sinks (the clip recorder's post-roll)
        for info in ended:
            for h in self.zones.track_ended(info.track_id, media_t):
                events.append(self._happening(h, frame.index, wall, frame.captured_at))
            events.append(self._event("gone", info, frame.index, wall, frame.captured_at))
        self._count(events, (time.perf_counter() - t0) * 1000.0)
        if events:
            self._emit(events, frame.image)

    def close(self) -> None:
        """The stream ended: every live track ends (``exit`` from its zones, then ``gone``)."""
        events: list[Event] = []
        wall = self._wall()
        now = self._last_time if self._last_time is not None else self._clock()
        for tracker in self._trackers.values():
            for info in tracker.finish():
                for h in self.zones.track_ended(info.track_id, now):
                    events.append(self._happening(h, self._last_frame, wall, None))
                events.append(self._event("gone", info, self._last_frame, wall, None))
        self._count(events, 0.0, frames=0)
        if events:
            self._emit(events, None)

    # --- events ----------------------------------------------------------------------------
    def _event(self, kind: str, info: TrackInfo, index: int | None, wall: float,
               captured: float | None) -> Event:
        return Event(kind, self.stream_id, wall, frame_index=index, label=info.label, track_id=info.track_id,
                     confidence=round(info.confidence, 4), box=info.box, captured_at=captured)

    def _happening(self, h: Happening, index: int | None, wall: float, captured: float | None) -> Event:
        o = h.obj
        return Event(h.type, self.stream_id, wall, frame_index=index, label=o.label, track_id=o.track_id,
                     confidence=round(o.confidence, 4), box=o.box, zone=h.zone, direction=h.direction,
                     seconds=h.seconds, captured_at=captured)

    def _count(self, events: Sequence[Event], ms: float, frames: int = 1) -> None:
        with self._lock:
            self._frames += frames
            self._track_ms += ms
            for e in events:
                self._by_type[e.type] = self._by_type.get(e.type, 0) + 1

    # --- reading ---------------------------------------------------------------------------
    def counts(self) -> dict[str, Any]:
        """Zone and line counters (:meth:`ZoneTracker.counts`)."""
        return self.zones.counts()

    def stats(self) -> dict[str, Any]:
        """Events emitted by type, live tracks, mean analytics time per frame (ms)."""
        with self._lock:
            by_type, frames, ms = dict(self._by_type), self._frames, self._track_ms
        tracks = sum(t.live_count for t in list(self._trackers.values()))
        return {"events": by_type, "tracks": tracks, "analytics_ms": round(ms / frames, 3) if frames else 0.0}
