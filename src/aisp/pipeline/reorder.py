"""Per-stream reorder buffer: workers finish frames out of order, sinks see them in order."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

__all__ = ["ReorderBuffer"]

T = TypeVar("T")


class ReorderBuffer(Generic[T]):
    """Holds results by sequence number and releases them strictly in order.

    Every sequence number the scheduler hands out must be ``push``-ed exactly once (workers
    push an error result when a model fails), so ``pop`` never waits for a hole forever.
    ``finish(total)`` says no sequence number at or above ``total`` will come; ``pop``
    returns None once everything below ``total`` was released. ``abort()`` ends it at once.
    The buffer itself is bounded by the scheduler's per-stream in-flight limit.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[int, T] = {}
        self._next = 0
        self._total: int | None = None
        self._aborted = False

    def push(self, seq: int, item: T) -> None:
        with self._cond:
            if seq < self._next or seq in self._pending:
                raise ValueError(f"sequence number {seq} was already pushed")
            self._pending[seq] = item
            if seq == self._next:
                self._cond.notify_all()

    def finish(self, total: int) -> None:
        with self._cond:
            self._total = total
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def _ready(self) -> bool:
        return (
            self._aborted
            or self._next in self._pending
            or (self._total is not None and self._next >= self._total)
        )

    def pop(self, timeout: float | None = None) -> T | None:
        """The next result in order; None at the end. Raises TimeoutError after ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(self._ready, timeout):
                raise TimeoutError(f"no result for sequence number {self._next} within {timeout} s")
            if self._next in self._pending:
                item = self._pending.pop(self._next)
                self._next += 1
                return item
            return None

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)

    @property
    def released(self) -> int:
        with self._cond:
            return self._next
