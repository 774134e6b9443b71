"""Memory guard: the process RSS (psutil) against a budget.

``memory_budget_mb = 0`` means 75% of the machine's memory. Above the budget the engine
shrinks live queues to one frame and drops frames on live streams, with a WARNING; below
90% of it the buffers come back. Finite sources are already bounded by backpressure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psutil

__all__ = ["MemoryGuard", "default_budget_bytes", "process_rss"]

log = logging.getLogger("aisp.pipeline")


def process_rss() -> int:
    return int(psutil.Process().memory_info().rss)


def default_budget_bytes(budget_mb: float) -> int:
    if budget_mb and budget_mb > 0:
        return int(budget_mb * 1024 * 1024)
    return int(psutil.virtual_memory().total * 0.75)


class MemoryGuard:
    """``check()`` returns True while over budget; transitions are logged once each."""

    def __init__(self, budget_bytes: int, rss: Callable[[], int] = process_rss, resume_ratio: float = 0.9):
        if budget_bytes <= 0:
            raise ValueError(f"budget_bytes expected > 0, got {budget_bytes!r}")
        self.budget_bytes = budget_bytes
        self._rss = rss
        self.resume_ratio = resume_ratio
        self.over = False
        self.last_rss = 0
        self.trips = 0

    def check(self) -> bool:
        rss = self._rss()
        self.last_rss = rss
        if not self.over and rss > self.budget_bytes:
            self.over = True
            self.trips += 1
            log.warning(
                "memory guard: RSS %.0f MB is above the budget of %.0f MB; shrinking live buffers "
                "and dropping frames on live streams",
                rss / 2**20,
                self.budget_bytes / 2**20,
            )
        elif self.over and rss < self.budget_bytes * self.resume_ratio:
            self.over = False
            log.warning("memory guard: RSS %.0f MB is back under budget; buffers restored", rss / 2**20)
        return self.over
