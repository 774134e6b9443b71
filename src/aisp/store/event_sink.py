""":class:`EventSink`: a pipeline sink that summarises detections per time window.

For each window of ``event_window_seconds`` (aligned to multiples of the window on the wall
clock, so windows of different streams line up) it counts frames, detections per label and
the highest confidence, and hands one :class:`~aisp.store.events.EventSummary` to an
:class:`~aisp.store.events.EventWriter`. ``write()`` does a few additions and, once per
window, one non-blocking ``submit()``: the frame path never waits for the database.

A window is emitted when the first frame of a later window arrives, and on ``close()``.
Labels come from ``Detections.labels`` when the model names them, else ``<model>:<class_id>``;
results without boxes (landmarks only) count under the model's name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from aisp.errors import ValidationError
from aisp.store.events import EventSummary

try:  # the pipeline's base class when present; the sink is duck-typed either way
    from aisp.pipeline.sinks import Sink as _SinkBase
except ImportError:  # pragma: no cover - the pipeline package is optional for the store
    _SinkBase = object  # type: ignore[assignment,misc]

__all__ = ["EventSink", "summarise_into"]


class _Window:
    __slots__ = ("start", "frames", "detections", "labels", "max_confidence")

    def __init__(self, start: float) -> None:
        self.start = start
        self.frames = 0
        self.detections = 0
        self.labels: dict[str, int] = {}
        self.max_confidence: float | None = None


def summarise_into(window: _Window, results: dict[str, Any]) -> None:
    """Add one frame's model results to ``window``."""
    window.frames += 1
    for name, res in results.items():
        det = getattr(res, "detections", None)
        if det is not None and len(det):
            n = len(det)
            labels = det.labels
            if labels is not None:
                keys = labels
            else:
                keys = [f"{name}:{int(c)}" for c in det.class_id]
            for key in keys:
                window.labels[key] = window.labels.get(key, 0) + 1
            conf = float(det.confidence.max())
            if math.isfinite(conf) and (window.max_confidence is None or conf > window.max_confidence):
                window.max_confidence = conf
            window.detections += n
            continue
        n = int(getattr(res, "num_detections", 0) or 0)
        if n:
            window.labels[name] = window.labels.get(name, 0) + n
            window.detections += n


class EventSink(_SinkBase):  # type: ignore[misc,valid-type]
    """Summaries per window -> ``writer.submit()`` (an EventWriter or anything with ``submit``)."""

    needs_image = False

    def __init__(self, writer: Any, *, window_seconds: float | None = None, stream_id: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if window_seconds is None:
            from aisp.settings import get_settings

            window_seconds = get_settings().event_window_seconds
        if not window_seconds > 0:
            raise ValidationError(f"invalid event window: expected > 0 seconds, got {window_seconds!r}",
                                  field="event_window_seconds", value=window_seconds, expected="> 0")
        if not callable(getattr(writer, "submit", None)):
            raise ValidationError("invalid event writer: expected an object with submit()", field="writer",
                                  value=type(writer).__name__, expected="EventWriter")
        self._writer = writer
        self.window_seconds = float(window_seconds)
        self._stream_id = stream_id
        self._clock = clock
        self._win: _Window | None = None
        self._sid: str | None = stream_id
        self.frames = 0
        self.emitted = 0
        self.refused = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"EventSink(window_seconds={self.window_seconds})"

    def open(self) -> None:
        self._closed = False

    def _window_start(self, now: float) -> float:
        return math.floor(now / self.window_seconds) * self.window_seconds

    def write(self, result: Any) -> None:
        now = self._clock()
        if self._sid is None:
            self._sid = result.frame.stream_id
        start = self._window_start(now)
        if self._win is not None and start > self._win.start:
            self._emit()
        if self._win is None:
            self._win = _Window(start)
        summarise_into(self._win, result.results)
        self.frames += 1

    def _emit(self) -> None:
        win, self._win = self._win, None
        if win is None or not win.frames or self._sid is None:
            return
        summary = EventSummary(self._sid, win.start, win.start + self.window_seconds, win.frames,
                               win.detections, dict(win.labels), win.max_confidence)
        if self._writer.submit(summary) is False:
            self.refused += 1
        self.emitted += 1

    def flush(self) -> None:
        """Emit the current window now, even if it has not ended (the next frame starts a new one)."""
        self._emit()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._emit()
