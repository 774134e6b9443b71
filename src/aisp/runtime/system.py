"""``SystemView``: this process's CPU, memory and "warm" state, with one definition of each.

``/api/status``, ``/api/status/performance``, the dashboard and the performance snapshots all read
the same view, so they cannot disagree:

- **CPU** is the process's CPU time over wall time since the previous reading (the first: since
  the view was built), in percent of one core. Readings closer together than ``min_interval``
  seconds return the previous figure, so several readers polling at once do not shrink each
  other's window to noise; within ``min_interval`` of the start there is no figure yet (``None``).
- **Warm** means: every model named by the ``prewarm`` setting is held in the cache (shared or as
  any instance), and no prewarm is still loading. With nothing to prewarm, a runtime is warm.

One ``psutil.Process`` serves every reading.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from aisp.cache import ModelCache
from aisp.settings import Settings

__all__ = ["ProcessFigures", "SystemView", "WarmState"]


@dataclass(frozen=True)
class ProcessFigures:
    cpu_percent: float | None
    rss_mb: float
    threads: int
    system_memory_percent: float


@dataclass(frozen=True)
class WarmState:
    warm: bool
    #: models the prewarm loaded, in the order asked for
    warmed_models: tuple[str, ...]


class SystemView:
    def __init__(
        self,
        settings: Settings,
        cache: ModelCache,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 0.5,
    ) -> None:
        self._settings = settings
        self._cache = cache
        self._clock = clock
        self._min_interval = min_interval
        self._proc = psutil.Process()
        self._lock = threading.Lock()
        self._last = (clock(), self._cpu_seconds())  # (wall, cpu seconds) of the window start
        self._cpu: float | None = None

    def _cpu_seconds(self) -> float:
        times = self._proc.cpu_times()
        return times.user + times.system

    def _cpu_percent(self) -> float | None:
        now = self._clock()
        used = self._cpu_seconds()
        if now - self._last[0] >= self._min_interval:
            wall = now - self._last[0]
            self._cpu = round(max(0.0, used - self._last[1]) / wall * 100.0, 1)
            self._last = (now, used)
        return self._cpu

    def process(self) -> ProcessFigures:
        with self._lock:
            proc = self._proc
            with proc.oneshot():
                cpu = self._cpu_percent()
                rss = proc.memory_info().rss / (1024 * 1024)
                threads = proc.num_threads()
        return ProcessFigures(cpu, round(rss, 1), threads, psutil.virtual_memory().percent)

    def warm(self) -> WarmState:
        wanted = list(self._settings.prewarm)
        prewarm = self._cache.prewarm_state()
        held = {key.name for key in self._cache.keys()}
        warm = not prewarm.pending and all(name in held for name in wanted)
        return WarmState(warm, tuple(str(key) for key in prewarm.warmed))
