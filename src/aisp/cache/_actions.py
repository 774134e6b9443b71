"""Work collected under the cache lock and done after it is released.

The cache never logs, announces an alert or calls a listener while it holds its lock: an
operation appends log lines, events and at most one alert record to an :class:`Actions`, and
:meth:`Actions.flush` does them once the lock is released (on the caller's thread).
"""

from __future__ import annotations

import logging

from aisp.cache.alerts import AlertRecord
from aisp.cache.events import CacheEvent, Listener, dispatch

__all__ = ["Actions"]

logger = logging.getLogger("aisp.cache")


class Actions:
    """Log lines, events and an alert record waiting for the lock to be released; events are
    recorded only when there are ``listeners`` (the cache's listeners when the work began)."""

    __slots__ = ("listeners", "events", "logs", "alert")

    def __init__(self, listeners: tuple[Listener, ...]) -> None:
        self.listeners = listeners
        self.events: list[CacheEvent] = []
        self.logs: list[tuple[int, str, tuple[object, ...]]] = []
        self.alert: AlertRecord | None = None

    def log(self, level: int, msg: str, *args: object) -> None:
        self.logs.append((level, msg, args))

    def event(self, kind: str, key: object, at: float, data: dict[str, object] | None = None) -> None:
        """Record a ``kind`` event about ``key`` (shown as text; ``None`` for the whole cache)."""
        if self.listeners:
            self.events.append(CacheEvent(kind, None if key is None else str(key), at, data or {}))

    def flush(self) -> None:
        """Write the log lines, announce the alert, then call the listeners with every event."""
        for level, msg, args in self.logs:
            logger.log(level, msg, *args)
        alert = self.alert
        if alert is not None:
            if alert.state == "firing":
                logger.warning(
                    "cache hit rate %.1f%% over the last %d requests is below the %.1f%% threshold",
                    alert.hit_rate * 100,
                    alert.window,
                    alert.threshold * 100,
                )
            else:
                logger.info(
                    "cache hit rate recovered to %.1f%% (threshold %.1f%%)",
                    alert.hit_rate * 100,
                    alert.threshold * 100,
                )
            self.events.append(CacheEvent("alert", None, alert.at, alert.to_dict()))
        if self.events and self.listeners:
            dispatch(self.listeners, self.events)
