"""Background TTL sweep without a busy thread.

One daemon thread per cache calls its owner's ``tick()`` (sweep now, return the real seconds
until the next sweep is due, or ``None`` for "only when woken"), then waits on an ``Event`` for
that long, or until woken when an entry with an earlier expiry is inserted. The tick is a bound
method held through a weak reference, so an abandoned cache is garbage collected and its
sweeper ends. Waits are clamped to [``min_wait``, ``max_wait``] real seconds; with a fake clock
tests call ``ModelCache.sweep()`` directly.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

__all__ = ["REAP_INTERVAL_SECONDS", "Sweeper", "Tick"]

#: Real seconds between checks whether a retired model is still held by someone.
REAP_INTERVAL_SECONDS = 1.0

#: Sweeps and returns the seconds until the next sweep is due (``None``: none is).
Tick = Callable[[], "float | None"]

logger = logging.getLogger("aisp.cache")


class Sweeper:
    """Calls ``tick`` (a bound method, held weakly) whenever it is due; see the module docstring."""

    def __init__(self, tick: Tick, *, min_wait: float = 0.05, max_wait: float = 3600.0) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        wake, stop = self._wake, self._stop

        def owner_gone(_ref: object) -> None:  # the cache was garbage collected: end the thread
            stop.set()
            wake.set()

        self._tick = weakref.WeakMethod(tick, owner_gone)  # type: ignore[arg-type]
        self._min_wait = min_wait
        self._max_wait = max_wait
        self.sweeps = 0
        self._thread = threading.Thread(target=self._run, name="aisp-cache-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self) -> None:
        """Recompute the next deadline now (an entry with an earlier expiry was inserted)."""
        self._wake.set()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            tick = self._tick()
            if tick is None:
                return
            try:
                delay = tick()
                self.sweeps += 1
            except Exception:  # never let the sweeper die silently
                logger.exception("cache sweep failed")
                delay = self._max_wait
            del tick
            timeout = None if delay is None else min(max(delay, self._min_wait), self._max_wait)
            self._wake.wait(timeout)
