"""The hit-rate alert: a low hit rate over the last N requests, announced once per episode.

:class:`HitWindow` knows which of the last N requests missed. The cache numbers its requests
(its hit count plus its miss count) and tells the window only about misses, which it keeps in a
deque bounded to N; so a hit costs the window nothing, and the hits in the window are the window
length minus the misses still in it. :class:`HitRateAlert` decides, from those two counts, when
an episode starts (rate below the threshold after at least ``min_requests``) and when it ends
(rate back at or above the threshold). A start fires at most once per ``cooldown_seconds`` of the
cache clock; an episode whose start was suppressed by the cooldown also ends silently.

Neither is thread-safe: the cache calls them under its lock. A hit can only raise the rate, so
the cache evaluates the alert on every miss, and on hits only while the alert is active.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["AlertRecord", "HitRateAlert", "HitWindow"]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    state: str  # "firing" or "resolved"
    hit_rate: float  # 0..1 over the window
    threshold: float
    window: int  # requests in the window when evaluated
    at: float  # cache clock

    def to_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "hit_rate_percent": round(self.hit_rate * 100.0, 2),
            "threshold_percent": round(self.threshold * 100.0, 2),
            "window": self.window,
            "at": self.at,
        }


class HitRateAlert:
    """Alert state machine. Not thread-safe: the cache calls it under its lock."""

    def __init__(
        self, threshold: float, min_requests: int, cooldown_seconds: float, history: int = 20
    ) -> None:
        self.threshold = threshold
        self.min_requests = min_requests
        self.cooldown_seconds = cooldown_seconds
        self.active = False
        self.fired = 0
        self.resolved = 0
        self.suppressed = 0
        self.history: deque[AlertRecord] = deque(maxlen=history)
        self._last_fired_at: float | None = None
        self._silent = False

    def evaluate(self, hits: int, requests: int, now: float) -> AlertRecord | None:
        """A record when the alert fires or resolves now, else ``None``."""
        if requests < self.min_requests or requests <= 0:
            return None
        rate = hits / requests
        if not self.active:
            if rate >= self.threshold:
                return None
            self.active = True
            if self._last_fired_at is not None and now - self._last_fired_at < self.cooldown_seconds:
                self._silent = True
                self.suppressed += 1
                return None
            self._silent = False
            self._last_fired_at = now
            self.fired += 1
            record = AlertRecord("firing", rate, self.threshold, requests, now)
            self.history.append(record)
            return record
        if rate < self.threshold:
            return None
        self.active = False
        if self._silent:
            return None
        self.resolved += 1
        record = AlertRecord("resolved", rate, self.threshold, requests, now)
        self.history.append(record)
        return record


class HitWindow:
    """The last ``size`` requests (numbered by the cache from 1): which missed, and the alert."""

    __slots__ = ("size", "alert", "_misses")

    def __init__(self, size: int, alert: HitRateAlert) -> None:
        self.size = size
        self.alert = alert
        self._misses: deque[int] = deque(maxlen=size)  # numbers of the requests that missed

    def miss(self, request: int) -> None:
        """Request number ``request`` (the cache's requests so far, this one included) missed."""
        self._misses.append(request)

    def counts(self, requests: int) -> tuple[int, int]:
        """``(hits, window)``: the hits among the last ``window = min(requests, size)`` requests."""
        window = requests if requests < self.size else self.size
        first = requests - window  # requests numbered above this one are in the window
        misses = self._misses
        while misses and misses[0] <= first:
            misses.popleft()
        return window - len(misses), window

    def evaluate(self, requests: int, now: float) -> AlertRecord | None:
        """The alert's verdict on the window after ``requests`` requests (see :class:`HitRateAlert`)."""
        hits, window = self.counts(requests)
        return self.alert.evaluate(hits, window, now)
