"""Single-flight loading for :class:`~aisp.cache.model_cache.ModelCache`.

The first caller of a cold model becomes the owner of a :class:`Flight`, runs the loader with no
lock held and publishes the model (or the error) to every caller parked on the flight's
``Event``. A loader that raises: every waiter gets the error, nothing is cached, and the next
call tries again. A model that cannot be cached (larger than the budget, pinned models fill
the cache) fails the load the same way and is closed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from aisp.cache._entry import NEVER
from aisp.cache._internal import MISSING, Actions
from aisp.cache.events import CacheEvent
from aisp.cache.sizing import estimate_size
from aisp.errors import AISPError

__all__ = ["Flight", "LoadMixin"]


class Flight:
    """One load in progress; waiters block on ``done``."""

    __slots__ = ("done", "value", "error", "owner", "invalidated")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.owner = threading.get_ident()
        self.invalidated = False


class LoadMixin:
    """The miss-and-load path of ``ModelCache`` (uses its lock, maps and counters)."""

    _lock: threading.Lock
    _pending: dict[str, Flight]
    _clock: Callable[[], float]
    _listeners: tuple[Any, ...]

    def _load(
        self, name: str, loader: Callable[[], Any], size: int | None, ttl: float | None, now: float
    ) -> Any:
        acts = Actions()
        result: Any = MISSING
        flight: Flight | None = None
        owner = False
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and now < entry.expires_at:  # loaded by another thread meanwhile
                result = self._hit_locked(entry, now, acts)
            else:
                if entry is not None:
                    self._remove_locked(entry, "expired", now, acts)
                flight = self._pending.get(name)
                if flight is not None:
                    if flight.owner == threading.get_ident():
                        raise RuntimeError(f"the loader of model {name!r} asked the cache for {name!r} again")
                    self._coalesced += 1
                else:
                    result = self._revive_locked(name, now, acts)
                record = self._record(name)
                record.last_access = now
                if result is not MISSING:
                    record.hits += 1
                    self._count_request_locked(True, now, acts)
                else:
                    record.misses += 1
                    self._count_request_locked(False, now, acts)
                    if self._listeners:
                        acts.events.append(CacheEvent("miss", name, now, {"coalesced": flight is not None}))
                    if flight is None:
                        owner = True
                        flight = self._pending[name] = Flight()
        self._finish(acts)
        if result is not MISSING:
            return result
        assert flight is not None
        if not owner:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        return self._run_loader(name, loader, size, ttl, flight)

    def _run_loader(
        self, name: str, loader: Callable[[], Any], size: int | None, ttl: float | None, flight: Flight
    ) -> Any:
        acts = Actions()
        started = self._clock()
        try:
            model = loader()
            seconds = self._clock() - started
            size_bytes, source = estimate_size(model, size)
        except BaseException as exc:
            self._fail_load(name, exc, self._clock() - started, flight, acts)
            raise
        with self._lock:
            self._pending.pop(name, None)
            now = self._clock()
            record = self._record(name)
            record.record_load(seconds)
            self._loads += 1
            self._load_seconds_total += seconds
            try:
                if flight.invalidated:
                    self._retire_locked(record, model, NEVER)
                else:
                    self._insert_locked(record, model, size_bytes, source, ttl, now, acts)
            except AISPError as exc:
                self._retire_locked(record, model, NEVER)
                record.load_failures += 1
                self._load_failures += 1
                flight.error = exc.with_traceback(None)  # its frames would keep the model alive
            if flight.error is None:
                flight.value = model
                acts.logs.append(
                    (
                        logging.INFO,
                        "loaded model %s in %.1f ms (%d bytes, %s)",
                        (name, seconds * 1e3, size_bytes, source),
                    )
                )
                if self._listeners:
                    acts.events.append(
                        CacheEvent("load", name, now, {"load_ms": seconds * 1e3, "size_bytes": size_bytes})
                    )
        flight.done.set()
        if flight.error is not None:
            del model  # retired and never delivered: let the reaper close it now
            self._finish(acts)
            raise flight.error
        self._finish(acts)
        return model

    def _fail_load(
        self, name: str, exc: BaseException, seconds: float, flight: Flight, acts: Actions
    ) -> None:
        with self._lock:
            self._pending.pop(name, None)
            record = self._record(name)
            record.load_failures += 1
            self._load_failures += 1
            now = self._clock()
            flight.error = exc
            acts.logs.append(
                (logging.WARNING, "loading model %s failed after %.1f ms: %s", (name, seconds * 1e3, exc))
            )
            if self._listeners:
                acts.events.append(
                    CacheEvent("load_failed", name, now, {"error": f"{type(exc).__name__}: {exc}"})
                )
        flight.done.set()
        self._finish(acts)
