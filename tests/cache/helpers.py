"""Helpers shared by the cache tests."""

from __future__ import annotations

import threading


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class Model:
    """A fake model with a size and a close() that counts calls."""

    def __init__(self, name: str = "m", size_bytes: int = 1000, log: list[str] | None = None) -> None:
        self.name = name
        self.size_bytes = size_bytes
        self.closed = 0
        self.log = log

    def close(self) -> None:
        self.closed += 1
        if self.log is not None:
            self.log.append(self.name)

    def __repr__(self) -> str:
        return f"Model({self.name!r})"


class Plain:
    """A model without close(): weak-referenceable, with a size."""

    def __init__(self, size_bytes: int = 1000) -> None:
        self.size_bytes = size_bytes
