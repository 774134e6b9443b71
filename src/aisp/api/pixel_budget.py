"""``PixelBudget``: admit images to decoding by the pixels they will occupy, not by count.

The inference pool bounds how many requests run at once, but a decoded image costs memory in
proportion to its pixels (3 bytes each as RGB, plus the copies a model or the annotation makes):
four 40-megapixel PNGs decoded at once grew the process by about 1 GB. So the frames route holds
``width * height`` pixels of this budget (read from the header, before any decoder runs) from just
before the decode until its answer is built, and:

* an image larger than the whole budget is refused at once, 413 naming the setting
  (``AISP_FRAMES_MAX_MEGAPIXELS_IN_FLIGHT``);
* otherwise it waits, in arrival order (a large image is not starved by a stream of small ones),
  at most ``wait_seconds``, then gets 503 ``OVERLOADED`` with ``Retry-After``.

The budget lives on the app's event loop: :meth:`acquire` and :meth:`release` are called there
only (the route awaits the inference pool in between), so it needs no lock. Its counters
(``in_use``, ``peak``, ``waited``, ``timeouts``, ``refused``) are what tests and ``/metrics`` read.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aisp.errors import OverloadedError, PayloadTooLargeError

__all__ = ["PixelBudget", "BudgetStats", "Lease", "SETTING"]

#: The setting that sizes the budget, named in the errors.
SETTING = "AISP_FRAMES_MAX_MEGAPIXELS_IN_FLIGHT"


@dataclass(frozen=True)
class BudgetStats:
    capacity: int
    in_use: int
    peak: int
    waiting: int
    admitted: int
    waited: int
    timeouts: int
    refused: int


class PixelBudget:
    """A FIFO weighted semaphore over pixels, for one asyncio event loop."""

    def __init__(self, capacity_pixels: int, *, wait_seconds: float) -> None:
        if capacity_pixels <= 0:
            raise ValueError(f"expected a positive pixel budget, got {capacity_pixels}")
        self.capacity = int(capacity_pixels)
        self.wait_seconds = float(wait_seconds)
        self.in_use = 0
        self.peak = 0
        self.admitted = 0
        self.waited = 0  # admitted after waiting
        self.timeouts = 0  # 503: waited wait_seconds
        self.refused = 0  # 413: larger than the whole budget
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def stats(self) -> BudgetStats:
        return BudgetStats(
            self.capacity, self.in_use, self.peak, len(self._waiters), self.admitted, self.waited,
            self.timeouts, self.refused,
        )

    def _take(self, pixels: int) -> None:
        self.in_use += pixels
        self.peak = max(self.peak, self.in_use)
        self.admitted += 1

    async def acquire(self, pixels: int) -> None:
        """Hold ``pixels`` of the budget; raises 413 or 503 (see the module doc)."""
        if pixels > self.capacity:
            self.refused += 1
            raise PayloadTooLargeError(
                f"image too large for the decode budget: {pixels / 1e6:.1f} megapixels, the budget is "
                f"{self.capacity / 1e6:g} megapixels in flight (setting {SETTING})",
                limit=self.capacity,
                actual=pixels,
                details={"setting": SETTING},
            )
        if not self._waiters and self.in_use + pixels <= self.capacity:
            self._take(pixels)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (pixels, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), self.wait_seconds)
        except asyncio.TimeoutError:
            if not (future.done() and not future.cancelled()):  # else: admitted as the wait ended
                self._give_up(entry)
                self.timeouts += 1
                raise OverloadedError(
                    f"too many pixels being decoded: waited {self.wait_seconds:g} s for "
                    f"{pixels / 1e6:.1f} megapixels of the {self.capacity / 1e6:g}-megapixel budget "
                    f"(setting {SETTING}); retry shortly",
                    retry_after=1,
                    details={"setting": SETTING, "in_use": self.in_use, "capacity": self.capacity},
                ) from None
        except asyncio.CancelledError:  # the client went away while waiting
            if future.done() and not future.cancelled():
                self.release(pixels)
            else:
                self._give_up(entry)
            raise
        self.waited += 1

    def _give_up(self, entry: tuple[int, asyncio.Future[None]]) -> None:
        entry[1].cancel()
        self._waiters.remove(entry)
        self._wake()  # a smaller request behind this one may fit now

    def release(self, pixels: int) -> None:
        self.in_use -= pixels
        self._wake()

    def _wake(self) -> None:
        """Admit waiters from the front, in order, while they fit."""
        while self._waiters:
            pixels, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if self.in_use + pixels > self.capacity:
                return
            self._waiters.popleft()
            self._take(pixels)
            future.set_result(None)

    async def lease(self, pixels: int) -> Lease:
        """Acquire ``pixels`` and return the :class:`Lease` that gives them back."""
        await self.acquire(pixels)
        return Lease(self, pixels, asyncio.get_running_loop())

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        await self.acquire(pixels)
        try:
            yield
        finally:
            self.release(pixels)


class Lease:
    """Pixels held for one job that runs on a pool thread.

    The job calls :meth:`start` first (False: the request was abandoned before the job began, so
    it must not run) and :meth:`release` when it ends, from its thread; the request calls
    :meth:`abandon` when it fails or is cancelled, which releases only a job that never started.
    So the pixels stay held exactly while a decoded image may exist, even if the client left.
    """

    def __init__(self, budget: PixelBudget, pixels: int, loop: asyncio.AbstractEventLoop) -> None:
        self.budget = budget
        self.pixels = pixels
        self._loop = loop
        self._lock = threading.Lock()
        self._started = False
        self._released = False

    def start(self) -> bool:
        with self._lock:
            if self._released:
                return False
            self._started = True
            return True

    def abandon(self) -> None:
        with self._lock:
            if self._started:
                return
        self.release()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self.budget.release(self.pixels)
        else:
            try:
                self._loop.call_soon_threadsafe(self.budget.release, self.pixels)
            except RuntimeError:  # the loop is closed: the app is gone, so is its budget
                pass
