"""Per-stream statistics with an injected clock: FPS meters, drops, latency percentiles.

Every timestamp comes from the one clock the engine was given, so a test moves a fake
clock and reads exact figures; nothing here sleeps or reads the wall clock by itself.

Two kinds of object live here: the *meters* that the stages update while frames flow
(:class:`FpsMeter`, :class:`Percentiles`, and :class:`StreamMeter`, which bundles one stream's
meters and counters), and the frozen *snapshots* they hand out (:class:`StreamStats`,
:class:`LatencySummary`). Consumers (the API, ``/metrics``, the store's snapshotter, job
summaries) read the snapshot's typed fields; ``to_dict()`` gives the JSON shape of the API.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["Clock", "FpsMeter", "LatencySummary", "Percentiles", "StreamMeter", "StreamStats", "percentile"]

Clock = Callable[[], float]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty list)."""
    if not sorted_values:
        return 0.0
    if not 0 <= q <= 100:
        raise ValueError(f"percentile expected 0..100, got {q!r}")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return float(sorted_values[rank - 1])


class FpsMeter:
    """Events per second over a sliding window of ``window`` seconds."""

    def __init__(self, clock: Clock = time.monotonic, window: float = 5.0, max_events: int = 4096) -> None:
        if window <= 0:
            raise ValueError(f"window expected > 0, got {window!r}")
        self._clock = clock
        self._window = window
        self._times: deque[float] = deque(maxlen=max_events)
        self._lock = threading.Lock()
        self.total = 0

    def tick(self, n: int = 1, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        with self._lock:
            for _ in range(n):
                self._times.append(now)
            self.total += n
            self._trim(now)

    def _trim(self, now: float) -> None:
        limit = now - self._window
        while self._times and self._times[0] < limit:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds: the nearest-rank p50/p95/p99, the mean and the maximum (all 0 when empty)."""

    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    mean: float = 0.0
    max: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {"p50": self.p50, "p95": self.p95, "p99": self.p99, "mean": self.mean, "max": self.max}


@dataclass(frozen=True)
class StreamStats:
    """One reading of a stream's statistics (:meth:`StreamMeter.snapshot`).

    ``queue_depths`` holds ``input`` (frames queued), ``inflight`` (taken by workers, not yet
    released to the sinks), ``capacity`` (of the input queue) and ``reorder`` (results waiting
    for an earlier frame); it is read-only.
    """

    input_fps: float = 0.0
    processed_fps: float = 0.0
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    errors: int = 0
    detections: int = 0
    queue_depths: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    latency_ms: LatencySummary = LatencySummary()
    inference_ms: LatencySummary = LatencySummary()

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of the API's ``stats`` objects (key order included)."""
        return {
            "input_fps": self.input_fps,
            "processed_fps": self.processed_fps,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "errors": self.errors,
            "detections": self.detections,
            "queue_depths": dict(self.queue_depths),
            "latency_ms": self.latency_ms.to_dict(),
            "inference_ms": self.inference_ms.to_dict(),
        }


class Percentiles:
    """Keeps the last ``size`` samples and reports p50/p95/p99/mean/max."""

    def __init__(self, size: int = 2048) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(float(value))
            self.count += 1

    def summary(self) -> LatencySummary:
        with self._lock:
            values = sorted(self._values)
        if not values:
            return LatencySummary()
        return LatencySummary(
            p50=round(percentile(values, 50), 3),
            p95=round(percentile(values, 95), 3),
            p99=round(percentile(values, 99), 3),
            mean=round(sum(values) / len(values), 3),
            max=round(values[-1], 3),
        )


class StreamMeter:
    """Counters and meters of one stream, updated by its stages; :meth:`snapshot` reads them.

    ``queue_depths`` is a callable the engine sets once the stream's queue exists.
    """

    def __init__(self, clock: Clock = time.monotonic, window: float = 5.0) -> None:
        self.clock = clock
        self.input = FpsMeter(clock, window)
        self.processed = FpsMeter(clock, window)
        self.latency_ms = Percentiles()
        self.inference_ms = Percentiles()
        self._lock = threading.Lock()
        self.dropped = 0
        self.detections = 0
        self.errors = 0
        self.queue_depths: Callable[[], Mapping[str, int]] = dict

    def record_input(self, now: float | None = None) -> None:
        self.input.tick(now=now)

    def record_drop(self, n: int = 1) -> None:
        with self._lock:
            self.dropped += n

    def record_output(
        self, captured_at: float, inference_ms: float, detections: int, error: bool = False
    ) -> None:
        now = self.clock()
        self.processed.tick(now=now)
        self.latency_ms.add(max(0.0, (now - captured_at) * 1000.0))
        self.inference_ms.add(inference_ms)
        with self._lock:
            self.detections += detections
            if error:
                self.errors += 1

    def snapshot(self) -> StreamStats:
        now = self.clock()
        with self._lock:
            dropped, detections, errors = self.dropped, self.detections, self.errors
        return StreamStats(
            input_fps=round(self.input.rate(now), 3),
            processed_fps=round(self.processed.rate(now), 3),
            frames_in=self.input.total,
            frames_out=self.processed.total,
            dropped=dropped,
            errors=errors,
            detections=detections,
            queue_depths=MappingProxyType(dict(self.queue_depths())),
            latency_ms=self.latency_ms.summary(),
            inference_ms=self.inference_ms.summary(),
        )
