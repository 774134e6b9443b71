""":class:`EventSink`: a sink that summarises detections per time window and hands the summaries
to a writer.

For each window of ``window_seconds`` (aligned to multiples of the window on the wall clock, so
windows of different streams line up) it counts frames, detections per label and the highest
confidence, and hands one summary to ``writer.submit()``. ``write()`` does a few additions and,
once per window, one ``submit()``: the writer must not block (the store's
:class:`~aisp.store.events.EventWriter` queues and writes in batches on its own thread), so the
frame path never waits for a database.

The sink belongs to the pipeline and knows nothing of the store: the writer is any object with
``submit(summary) -> bool`` (:class:`SummaryWriter`), and a summary is a plain mapping::

    {"stream_id": str, "window_start": float, "window_end": float, "frames": int,
     "detections": int, "labels": {label: count}, "max_confidence": float | None}

(the fields of the store's ``EventSummary``, which ``EventWriter.submit`` accepts as a mapping).
``submit`` returning False counts as a refusal (``refused``).

A window is emitted when the first frame of a later window arrives, and on ``close()``.
Labels come from ``Detections.labels`` when the model names them, else ``<model>:<class_id>``;
results without boxes (landmarks only) count under the model's name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Protocol

from aisp.errors import ValidationError
from aisp.models import ModelResult
from aisp.pipeline.frame_types import FrameResult
from aisp.pipeline.sinks import Sink
from aisp.pipeline.stats import Clock

__all__ = ["EventSink", "SummaryWriter", "Window", "summarise_into"]


class SummaryWriter(Protocol):
    """Where :class:`EventSink` hands its summaries: must return at once; False means refused."""

    def submit(self, summary: Mapping[str, object], /) -> bool: ...


class Window:
    """The running totals of one window (``start`` in the sink clock's seconds)."""

    __slots__ = ("start", "frames", "detections", "labels", "max_confidence")

    def __init__(self, start: float) -> None:
        self.start = start
        self.frames = 0
        self.detections = 0
        self.labels: dict[str, int] = {}
        self.max_confidence: float | None = None


def summarise_into(window: Window, results: Mapping[str, ModelResult]) -> None:
    """Add one frame's model results to ``window``."""
    window.frames += 1
    for name, res in results.items():
        det = res.detections
        if det is not None and len(det):
            n = len(det)
            labels = det.labels
            keys = labels if labels is not None else [f"{name}:{int(c)}" for c in det.class_id]
            for key in keys:
                window.labels[key] = window.labels.get(key, 0) + 1
            conf = float(det.confidence.max())
            if math.isfinite(conf) and (window.max_confidence is None or conf > window.max_confidence):
                window.max_confidence = conf
            window.detections += n
            continue
        n = int(res.num_detections or 0)
        if n:
            window.labels[name] = window.labels.get(name, 0) + n
            window.detections += n


class EventSink(Sink):
    """Summaries per window of ``window_seconds`` -> ``writer.submit()``.

    ``stream_id`` names the stream in the summaries (default: the first frame's stream);
    ``clock`` is the wall clock the windows are aligned on (injectable for tests).
    """

    needs_image = False

    def __init__(self, writer: SummaryWriter, *, window_seconds: float, stream_id: str | None = None,
                 clock: Clock = time.time) -> None:
        if isinstance(window_seconds, bool) or not isinstance(window_seconds, (int, float)) \
                or not window_seconds > 0:
            raise ValidationError(f"invalid event window: expected > 0 seconds, got {window_seconds!r}",
                                  field="event_window_seconds", value=window_seconds, expected="> 0")
        if not callable(getattr(writer, "submit", None)):
            raise ValidationError("invalid event writer: expected an object with submit()", field="writer",
                                  value=type(writer).__name__, expected="an object with submit(summary)")
        self._writer = writer
        self.window_seconds = float(window_seconds)
        self._clock = clock
        self._win: Window | None = None
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

    def write(self, result: FrameResult) -> None:
        now = self._clock()
        if self._sid is None:
            self._sid = result.frame.stream_id
        start = self._window_start(now)
        if self._win is not None and start > self._win.start:
            self._emit()
        if self._win is None:
            self._win = Window(start)
        summarise_into(self._win, result.results)
        self.frames += 1

    def _emit(self) -> None:
        win, self._win = self._win, None
        if win is None or not win.frames or self._sid is None:
            return
        summary: dict[str, object] = {
            "stream_id": self._sid,
            "window_start": win.start,
            "window_end": win.start + self.window_seconds,
            "frames": win.frames,
            "detections": win.detections,
            "labels": dict(win.labels),
            "max_confidence": win.max_confidence,
        }
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
