"""Frame counts for MQTT: each stream's detections per label in its latest frame, fed to the
delivery's :class:`~aisp.delivery.CountFeed` (``<prefix>/<stream>/<label>``).

Used when ``AISP_MQTT_COUNTS=frames`` (the default; ``events`` counts tracks instead). Labels are
named as in the store's event summaries (``Detections.labels``, else ``<model>:<class id>``, else
the model name with its ``num_detections``). A stream sends at most one update per
``mqtt_count_interval_seconds``, and only when a count changed, so a detector flickering at
30 FPS does not flood the broker; the feed runs on the stream's sink thread and never blocks
(the MQTT publish only queues).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from aisp.delivery import CountFeed

__all__ = ["FrameCountFeed", "frame_counts"]


def frame_counts(results: Mapping[str, Any]) -> dict[str, int]:
    """Detections per label in one frame's model results."""
    counts: dict[str, int] = {}
    for name, res in results.items():
        det = getattr(res, "detections", None)
        if det is not None and len(det):
            labels = det.labels
            keys = labels if labels is not None else [f"{name}:{int(c)}" for c in det.class_id]
            for key in keys:
                counts[str(key)] = counts.get(str(key), 0) + 1
            continue
        n = int(getattr(res, "num_detections", 0) or 0)
        if n:
            counts[name] = counts.get(name, 0) + n
    return counts


class FrameCountFeed:
    """A stream sink callback: ``feed(result)`` for each frame result of ``stream_id``."""

    def __init__(self, target: CountFeed, stream_id: str, *, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._target = target
        self._stream_id = stream_id
        self._interval = interval
        self._clock = clock
        self._sent: dict[str, int] | None = None
        self._last = float("-inf")

    def __call__(self, result: Any) -> None:
        counts = frame_counts(result.results)
        if counts == self._sent:
            return
        now = self._clock()
        if now - self._last < self._interval:
            return  # a later frame sends the change
        self._last = now
        self._sent = counts
        self._target.set_counts(self._stream_id, counts)
