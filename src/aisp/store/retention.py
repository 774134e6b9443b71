"""Retention: events and snapshots older than their configured age are deleted periodically.

:class:`RetentionWorker` runs :meth:`RetentionWorker.run_once` every ``interval`` seconds on a
background thread that waits on a :class:`threading.Event`, so :meth:`stop` ends it at once.
The clock is injectable; tests call :meth:`run_once` with a fake one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from aisp.errors import ValidationError

__all__ = ["RetentionWorker", "RetentionResult"]

log = logging.getLogger("aisp.store")


@dataclass(frozen=True)
class RetentionResult:
    events_deleted: int
    snapshots_deleted: int


class RetentionWorker:
    def __init__(
        self,
        delete_events_before: Callable[[float], int],
        delete_snapshots_before: Callable[[float], int],
        *,
        event_retention_hours: float,
        snapshot_retention_hours: float,
        interval: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (("event_retention_hours", event_retention_hours),
                            ("snapshot_retention_hours", snapshot_retention_hours), ("interval", interval)):
            if not value > 0:
                raise ValidationError(f"invalid {name}: expected > 0, got {value!r}", field=name, value=value,
                                      expected="> 0")
        self._delete_events = delete_events_before
        self._delete_snapshots = delete_snapshots_before
        self.event_retention_s = event_retention_hours * 3600.0
        self.snapshot_retention_s = snapshot_retention_hours * 3600.0
        self.interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.errors = 0

    def run_once(self) -> RetentionResult:
        now = self._clock()
        result = RetentionResult(self._delete_events(now - self.event_retention_s),
                                 self._delete_snapshots(now - self.snapshot_retention_s))
        self.runs += 1
        if result.events_deleted or result.snapshots_deleted:
            log.info("retention deleted %s event(s) and %s snapshot(s)", result.events_deleted,
                     result.snapshots_deleted)
        return result

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception as exc:  # database away: try again next round
                self.errors += 1
                log.warning("retention run failed: %s", exc)
            if self._stop.wait(self.interval):
                return

    def start(self) -> RetentionWorker:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="aisp-retention", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
