"""Background TTL sweep without a busy thread.

One daemon thread per cache waits on an ``Event`` until the next expiry (or until woken when an
entry with an earlier expiry is inserted), sweeps, and waits again. It holds the cache only
through a weak reference, so an abandoned cache is garbage collected and its sweeper ends.
Waits are computed from the cache clock; with a fake clock they are clamped to
[``min_wait``, ``max_wait``] real seconds, and tests call :meth:`ModelCache.sweep` directly.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING

from aisp.cache._entry import NEVER
from aisp.cache._internal import Actions

if TYPE_CHECKING:  # pragma: no cover
    from aisp.cache.model_cache import ModelCache

__all__ = ["REAP_INTERVAL_SECONDS", "SweepMixin", "Sweeper"]

#: Real seconds between checks whether a retired model is still held by someone.
REAP_INTERVAL_SECONDS = 1.0

logger = logging.getLogger("aisp.cache")


class Sweeper:
    def __init__(self, cache: ModelCache, *, min_wait: float = 0.05, max_wait: float = 3600.0) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        wake, stop = self._wake, self._stop

        def cache_gone(_ref: object) -> None:  # the cache was garbage collected: end the thread
            stop.set()
            wake.set()

        self._ref = weakref.ref(cache, cache_gone)
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
            cache = self._ref()
            if cache is None:
                return
            try:
                cache.sweep()
                self.sweeps += 1
                delay = cache._next_sweep_delay()
            except Exception:  # never let the sweeper die silently
                logger.exception("cache sweep failed")
                delay = self._max_wait
            del cache
            timeout = None if delay is None else min(max(delay, self._min_wait), self._max_wait)
            self._wake.wait(timeout)


class SweepMixin:
    """Explicit and background TTL sweeps for ``ModelCache``."""

    _lock: threading.Lock
    _sweeper: Sweeper | None
    _background_sweep: bool

    def sweep(self) -> int:
        """Expire every entry past its TTL now and close released models; returns how many expired."""
        acts = Actions()
        with self._lock:
            now = self._clock()
            expired = [e for e in self._entries.values() if now >= e.expires_at]
            for entry in expired:
                self._remove_locked(entry, "expired", now, acts)
        self._finish(acts)
        if self._retired:
            self._reap()
        return len(expired)

    def _next_sweep_delay(self) -> float | None:
        with self._lock:
            deadline = min((e.expires_at for e in self._entries.values()), default=NEVER)
            delay = None if deadline == NEVER else deadline - self._clock()
            if any(not r.weak for r in self._retired):
                delay = REAP_INTERVAL_SECONDS if delay is None else min(delay, REAP_INTERVAL_SECONDS)
            return delay

    def _ensure_sweeper(self) -> None:
        if not self._background_sweep:
            return
        if self._sweeper is None or not self._sweeper.alive:
            self._sweeper = Sweeper(self)
            self._sweeper.start()
        else:
            self._sweeper.wake()
