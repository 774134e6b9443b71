"""Performance snapshots: FPS, latency p99, cache hit rate, RSS and CPU, taken periodically.

:class:`Snapshotter` calls a ``gather()`` callable every ``interval`` seconds and stores what
it returns through :meth:`SnapshotRepository.add`. Its clock and its wait are injectable,
so tests drive it without sleeping. The server hands it ``Runtime.sample`` (:mod:`aisp.runtime`),
which reads the streams, the model cache and this process; the store knows none of them.
``SnapshotRepository.query(metric, since)`` serves the charts (``GET /api/history``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from aisp.errors import ValidationError
from aisp.store._background import BackgroundLoop
from aisp.store.db import Database
from aisp.store.tables import SnapshotRow

__all__ = ["METRICS", "SnapshotPoint", "SnapshotRepository", "Snapshotter"]

log = logging.getLogger("aisp.store")

#: Metric name -> unit. ``rss`` is in MiB, ``cpu`` in percent of one core, ``hit_rate`` in 0..1.
METRICS: dict[str, str] = {"fps": "frames/s", "latency_p99": "ms", "hit_rate": "ratio", "rss": "MiB",
                           "cpu": "%"}


@dataclass(frozen=True)
class SnapshotPoint:
    ts: float
    value: float


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValidationError(f"invalid metric {metric!r}: expected one of {', '.join(METRICS)}",
                              field="metric", value=metric, expected="|".join(METRICS))
    return metric


class SnapshotRepository:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time):
        self._db = db
        self._clock = clock

    def add(self, metrics: Mapping[str, Any], *, ts: float | None = None) -> None:
        """Store one snapshot. Known metrics get their column; other numbers go to ``extra``."""
        if not isinstance(metrics, Mapping):
            raise ValidationError(f"invalid snapshot: expected a mapping, got {type(metrics).__name__}",
                                  field="metrics", value=metrics, expected="mapping")
        cols = {m: _number(metrics.get(m)) for m in METRICS}
        extra = {str(k): n for k, v in metrics.items() if k not in METRICS and (n := _number(v)) is not None}
        row = SnapshotRow(ts=self._clock() if ts is None else float(ts), extra=extra or None, **cols)
        with self._db.session() as s:
            s.add(row)

    def query(self, metric: str, since: float, *, until: float | None = None,
              max_points: int | None = 1000) -> list[SnapshotPoint]:
        """Points of ``metric`` from ``since`` on, oldest first; averaged into at most
        ``max_points`` equal time buckets when there are more."""
        column = getattr(SnapshotRow, check_metric(metric))
        stmt = select(SnapshotRow.ts, column).where(SnapshotRow.ts >= since, column.is_not(None)).order_by(
            SnapshotRow.ts)
        if until is not None:
            stmt = stmt.where(SnapshotRow.ts < until)
        with self._db.session() as s:
            points = [SnapshotPoint(float(t), float(v)) for t, v in s.execute(stmt)]
        if max_points is None or len(points) <= max_points or max_points < 1:
            return points
        return _downsample(points, max_points)

    def count(self) -> int:
        with self._db.session() as s:
            return int(s.scalar(select(func.count()).select_from(SnapshotRow)) or 0)

    def delete_older_than(self, cutoff: float) -> int:
        with self._db.session() as s:
            return int(s.execute(delete(SnapshotRow).where(SnapshotRow.ts < cutoff)).rowcount or 0)


def _downsample(points: list[SnapshotPoint], n: int) -> list[SnapshotPoint]:
    t0, t1 = points[0].ts, points[-1].ts
    width = (t1 - t0) / n or 1.0
    buckets: dict[int, list[SnapshotPoint]] = {}
    for p in points:
        buckets.setdefault(min(n - 1, int((p.ts - t0) / width)), []).append(p)
    return [
        SnapshotPoint(sum(p.ts for p in b) / len(b), sum(p.value for p in b) / len(b))
        for _, b in sorted(buckets.items())
    ]


class Snapshotter(BackgroundLoop):
    """Takes a snapshot every ``interval`` seconds on a background thread (stoppable)."""

    _thread_name = "aisp-snapshotter"

    def __init__(
        self,
        gather: Callable[[], Mapping[str, Any]],
        add: Callable[..., Any],
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.time,
        wait: Callable[[float], bool] | None = None,
        warn_interval: float = 60.0,
    ) -> None:
        if interval <= 0:
            raise ValidationError(f"invalid snapshot interval: expected > 0, got {interval!r}",
                                  field="snapshot_interval_seconds", value=interval, expected="> 0")
        self._gather = gather
        self._add = add
        self.interval = interval
        self._clock = clock
        self._init_loop()
        self._wait = wait or self._stop.wait
        self._warn_interval = warn_interval
        self._last_warn: float | None = None
        self.taken = 0
        self.errors = 0

    def take(self) -> bool:
        """Gather and store one snapshot now; False (logged) when either step failed."""
        now = self._clock()
        try:
            self._add(self._gather(), ts=now)
        except Exception as exc:
            self.errors += 1
            if self._last_warn is None or now - self._last_warn >= self._warn_interval:
                self._last_warn = now
                log.warning("performance snapshot failed (%s failures so far): %s", self.errors, exc)
            return False
        self.taken += 1
        return True

    def run(self) -> None:
        """The loop: wait ``interval``, take a snapshot, until stopped (``wait`` returns True)."""
        while not self._wait(self.interval):
            if self._stop.is_set():
                break
            self.take()

    _loop = run
