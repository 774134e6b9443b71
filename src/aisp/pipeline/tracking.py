"""Multi-object tracking: a stable ``track_id`` per detection across a stream's frames.

:class:`ObjectTracker` wraps `Norfair <https://github.com/tryolabs/norfair>`_ (a maintained,
Kalman-filter tracker with pure numpy/scipy dependencies: it installs beside MediaPipe without
a second OpenCV wheel, unlike supervision or ``trackers``). Boxes are tracked as two points
(top-left, bottom-right) with Norfair's IoU distance, per label (a face never takes a person's
track), with a constant-velocity Kalman filter that carries a track through a crossing.

A track is *confirmed* after ``min_hits`` matched frames (Norfair's ``initialization_delay``);
detections of unconfirmed tracks get ``tracker_id == -1``. A track that goes unmatched for
``max_lost_frames`` frames ends. Each :meth:`ObjectTracker.update` returns a
:class:`TrackUpdate`: the ids aligned with the detections, the tracks that started (were
confirmed) on this frame and the tracks that ended, with their last box, label and confidence.

Trackers are sequential: one per stream, fed in frame order by the stream's sink thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aisp._lazy import require
from aisp.errors import ValidationError
from aisp.models.results import Detections

__all__ = ["ObjectTracker", "TrackInfo", "TrackUpdate"]


@dataclass(frozen=True)
class TrackInfo:
    """The last known state of one track."""

    track_id: int
    label: str
    box: tuple[float, float, float, float]
    confidence: float
    #: frames this track was matched
    hits: int = 1


@dataclass(frozen=True)
class TrackUpdate:
    """What one frame did to the tracks."""

    #: (n,) track id per detection of the frame, -1 while its track is not confirmed
    tracker_id: np.ndarray
    #: tracks confirmed on this frame (their first appearance as a track)
    started: list[TrackInfo] = field(default_factory=list)
    #: tracks that ended on this frame (unmatched for ``max_lost_frames``), last state
    ended: list[TrackInfo] = field(default_factory=list)


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValidationError(f"{name}: expected an integer >= {low}, got {value!r}", field=name,
                              value=value, expected=f"an integer >= {low}")
    return value


class ObjectTracker:
    """A Norfair tracker for one stream (not thread-safe; one caller, frames in order).

    Args:
        min_hits: matched frames before a track is confirmed and gets an id (>= 1).
        max_lost_frames: unmatched frames before a track ends (>= 1).
        max_distance: Norfair's IoU distance threshold, ``1 - IoU`` (0..1): a detection whose box
            overlaps a track's predicted box by less than ``1 - max_distance`` starts a new track.
    """

    def __init__(self, *, min_hits: int = 2, max_lost_frames: int = 15, max_distance: float = 0.9) -> None:
        self.min_hits = _check_int("track_min_hits", min_hits, 1)
        self.max_lost_frames = _check_int("track_max_lost_frames", max_lost_frames, 1)
        if not 0.0 < float(max_distance) <= 1.0:
            raise ValidationError(f"track_max_distance: expected 0 < d <= 1, got {max_distance!r}",
                                  field="track_max_distance", value=max_distance, expected="0 < d <= 1")
        norfair = require("norfair")
        # Norfair: a new object is confirmed once its hit counter exceeds initialization_delay;
        # every match adds 1 up to hit_counter_max, every miss removes 1, and < 0 ends it.
        self._tracker = norfair.Tracker(
            distance_function="iou",
            distance_threshold=float(max_distance),
            hit_counter_max=self.max_lost_frames,
            initialization_delay=min(self.min_hits - 1, self.max_lost_frames - 1),
            pointwise_hit_counter_max=self.max_lost_frames,
        )
        self._detection_cls = norfair.Detection
        self._live: dict[int, TrackInfo] = {}
        self.frames = 0

    @property
    def active(self) -> dict[int, TrackInfo]:
        """Confirmed tracks that have not ended, by id (the last state of each)."""
        return dict(self._live)

    @property
    def live_count(self) -> int:
        """How many confirmed tracks are live (safe to read from another thread)."""
        return len(self._live)

    def update(self, detections: Detections) -> TrackUpdate:
        """Match this frame's ``detections`` to the tracks; see :class:`TrackUpdate`."""
        self.frames += 1
        n = len(detections)
        labels = detections.label_names
        boxes = detections.xyxy.astype(np.float64)
        conf = detections.confidence
        frame_dets = []
        for i in range(n):
            box = boxes[i]
            if not (box[2] > box[0] and box[3] > box[1]):  # a degenerate box has no IoU with anything
                continue
            frame_dets.append(self._detection_cls(box.reshape(2, 2), scores=np.array([conf[i], conf[i]]),
                                                  data=i, label=labels[i]))
        active = self._tracker.update(frame_dets)
        matched = {id(d): d.data for d in frame_dets}
        tracker_id = np.full(n, -1, np.int64)
        started: list[TrackInfo] = []
        seen: set[int] = set()
        for obj in active:
            tid = int(obj.id)
            seen.add(tid)
            det = obj.last_detection
            i = matched.get(id(det))
            if i is None:  # coasting: not matched on this frame
                continue
            tracker_id[i] = tid
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            prev = self._live.get(tid)
            hits = 1 if prev is None else prev.hits + 1
            info = TrackInfo(tid, labels[i], (x1, y1, x2, y2), float(conf[i]), hits)
            if prev is None:
                started.append(info)
            self._live[tid] = info
        ended = [self._live.pop(tid) for tid in sorted(set(self._live) - seen)]
        return TrackUpdate(tracker_id, started, ended)

    def finish(self) -> list[TrackInfo]:
        """End every live track (the stream stopped); returns them."""
        ended = [self._live[tid] for tid in sorted(self._live)]
        self._live.clear()
        return ended
