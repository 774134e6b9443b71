"""Retention: event summaries, discrete events and snapshots older than their configured age are
deleted periodically.

:class:`RetentionWorker` runs :meth:`RetentionWorker.run_once` every ``interval`` seconds on a
background thread that waits on a :class:`threading.Event`, so :meth:`stop` ends it at once.
The clock is injectable; tests call :meth:`run_once` with a fake one.

Other areas add their own sweeps with :meth:`RetentionWorker.add_job` (the task runner removes
finished tasks older than ``task_retention_days``); they run on the same thread, after the
event and snapshot sweeps, each with the same ``now``, and one failing does not stop the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aisp.errors import ValidationError
from aisp.store._background import BackgroundLoop

__all__ = ["RetentionWorker", "RetentionResult"]

log = logging.getLogger("aisp.store")


@dataclass(frozen=True)
class RetentionResult:
    events_deleted: int
    snapshots_deleted: int
    records_deleted: int = 0


class RetentionWorker(BackgroundLoop):
    _thread_name = "aisp-retention"

    def __init__(
        self,
        delete_events_before: Callable[[float], int],
        delete_snapshots_before: Callable[[float], int],
        *,
        event_retention_hours: float,
        snapshot_retention_hours: float,
        interval: float = 600.0,
        clock: Callable[[], float] = time.time,
        delete_records_before: Callable[[float], int] | None = None,
        records_retention_days: float = 30.0,
    ) -> None:
        for name, value in (("event_retention_hours", event_retention_hours),
                            ("snapshot_retention_hours", snapshot_retention_hours), ("interval", interval),
                            ("events_keep_days", records_retention_days)):
            if not value > 0:
                raise ValidationError(f"invalid {name}: expected > 0, got {value!r}", field=name, value=value,
                                      expected="> 0")
        self._delete_events = delete_events_before
        self._delete_snapshots = delete_snapshots_before
        self.event_retention_s = event_retention_hours * 3600.0
        self.snapshot_retention_s = snapshot_retention_hours * 3600.0
        self._delete_records = delete_records_before
        self.records_retention_s = records_retention_days * 86400.0
        self.interval = interval
        self._clock = clock
        self._init_loop()
        self._jobs: dict[str, Callable[[float], object]] = {}
        self.runs = 0
        self.errors = 0

    def add_job(self, name: str, sweep: Callable[[float], object]) -> None:
        """Run ``sweep(now)`` (wall-clock seconds) on every round from now on."""
        self._jobs[name] = sweep

    def run_once(self) -> RetentionResult:
        now = self._clock()
        records = 0 if self._delete_records is None else self._delete_records(now - self.records_retention_s)
        result = RetentionResult(self._delete_events(now - self.event_retention_s),
                                 self._delete_snapshots(now - self.snapshot_retention_s), records)
        for name, sweep in list(self._jobs.items()):
            try:
                sweep(now)
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                self.errors += 1
                log.warning("retention sweep %s failed: %s", name, exc)
        self.runs += 1
        if result.events_deleted or result.snapshots_deleted or result.records_deleted:
            log.info("retention deleted %s event window(s), %s discrete event(s) and %s snapshot(s)",
                     result.events_deleted, result.records_deleted, result.snapshots_deleted)
        return result

    def _loop(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception as exc:  # database away: try again next round
                self.errors += 1
                log.warning("retention run failed: %s", exc)
            if self._stop.wait(self.interval):
                return

