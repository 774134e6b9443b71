"""Watchdog for live sources: stall detection and reconnect backoff, with an injected clock.

Stream states::

    starting --> running <--> reconnecting --> failed
        \\            \\______________________> stopped  (stop requested, or a finite source ended)
         \\--> failed (a file that cannot be opened)

A live source that delivers no frame for ``stall_timeout`` seconds, or whose read fails or
ends, is reconnected after ``initial``, ``2*initial``, ... seconds (capped at ``maximum``);
after ``max_attempts`` failed attempts in a row the stream is ``failed`` with the last error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Backoff", "Watchdog", "STATES", "TERMINAL_STATES"]

STATES = ("starting", "running", "reconnecting", "stopped", "failed")
TERMINAL_STATES = frozenset({"stopped", "failed"})


class Backoff:
    """Exponential backoff: ``initial * factor**k`` capped at ``maximum``; ``max_attempts`` tries."""

    def __init__(self, initial: float, maximum: float, max_attempts: int, factor: float = 2.0) -> None:
        if initial <= 0 or maximum <= 0:
            raise ValueError(f"backoff delays expected > 0, got initial={initial!r} maximum={maximum!r}")
        if max_attempts < 0:
            raise ValueError(f"max_attempts expected >= 0, got {max_attempts!r}")
        self.initial = initial
        self.maximum = maximum
        self.max_attempts = max_attempts
        self.factor = factor
        self.attempts = 0

    @property
    def exhausted(self) -> bool:
        return self.attempts >= self.max_attempts

    def next_delay(self) -> float:
        """Delay before the next attempt; counts the attempt."""
        delay = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0


class Watchdog:
    """Remembers when the last frame came; ``stalled(now)`` after ``stall_timeout`` of silence."""

    def __init__(self, stall_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        if stall_timeout <= 0:
            raise ValueError(f"stall_timeout expected > 0, got {stall_timeout!r}")
        self.stall_timeout = stall_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._armed = False
        self.stalls = 0

    def arm(self, now: float | None = None) -> None:
        """Start watching (the source is open and should deliver frames from now on)."""
        with self._lock:
            self._last = self._clock() if now is None else now
            self._armed = True

    def disarm(self) -> None:
        with self._lock:
            self._armed = False

    def on_frame(self, now: float | None = None) -> None:
        with self._lock:
            self._last = self._clock() if now is None else now

    def stalled(self, now: float | None = None) -> bool:
        """True once per stall: the watchdog disarms itself until re-armed after a reconnect."""
        now = self._clock() if now is None else now
        with self._lock:
            if not self._armed or self._last is None or now - self._last < self.stall_timeout:
                return False
            self._armed = False
            self.stalls += 1
            return True

    def silence(self, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        with self._lock:
            return 0.0 if self._last is None else max(0.0, now - self._last)
