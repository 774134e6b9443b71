"""Retirement of removed models: close once nobody holds them, or revive them.

A removed model that has ``close()``/``release()`` is kept (strongly) in the retired list and
closed as soon as no one else holds it, judged by its CPython reference count, exactly once.
With ``enable_weak_ref`` a retired model that a caller still holds is revived on the next request
instead of being reloaded; models without ``close()`` are tracked through a weak reference only.
A model caught in a reference cycle with itself is closed by ``ModelCache.close()``.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

from aisp.cache._entry import Entry
from aisp.cache._internal import MISSING, Actions
from aisp.cache.events import CacheEvent
from aisp.errors import AISPError

__all__ = ["Retired", "RetireMixin", "closer"]

logger = logging.getLogger("aisp.cache")


def closer(model: Any) -> Callable[[], Any] | None:
    """The model's ``close`` or ``release`` method, if it has one."""
    for attr in ("close", "release"):
        fn = getattr(model, attr, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


class Retired:
    """A removed model waiting to be closed (strong ref) or revived (weak or strong ref)."""

    __slots__ = ("name", "obj", "weak", "size_bytes", "size_source", "ttl")

    def __init__(self, name: str, obj: Any, weak: bool, entry: Entry, ttl: float) -> None:
        self.name = name
        self.obj = obj
        self.weak = weak
        self.size_bytes = entry.size_bytes
        self.size_source = entry.size_source
        self.ttl = ttl

    def get(self) -> Any:
        return self.obj() if self.weak else self.obj


class RetireMixin:
    """Retire / revive / reap for ``ModelCache`` (uses its lock, maps and counters)."""

    _lock: threading.Lock
    _retired: list[Retired]
    enable_weak_ref: bool
    _listeners: tuple[Any, ...]

    def _retire_locked(self, entry: Entry, model: Any, ttl: float) -> None:
        if model is None:
            return
        if closer(model) is not None:
            self._retired.append(Retired(entry.name, model, False, entry, ttl))
            self._ensure_sweeper()  # re-checks held models every REAP_INTERVAL_SECONDS
        elif self.enable_weak_ref:
            try:
                ref = weakref.ref(model)
            except TypeError:  # not weak-referenceable (int, dict, ...): nothing to revive
                return
            self._retired.append(Retired(entry.name, ref, True, entry, ttl))

    def _revive_locked(self, name: str, now: float, acts: Actions) -> Any:
        if not self.enable_weak_ref or not self._retired:
            return MISSING
        for index in range(len(self._retired) - 1, -1, -1):
            rec = self._retired[index]
            if rec.name != name:
                continue
            model = rec.get()
            if model is None:
                del self._retired[index]
                continue
            record = self._record(name)
            try:
                self._insert_locked(record, model, rec.size_bytes, rec.size_source, rec.ttl, now, acts)
            except AISPError:
                return MISSING
            del self._retired[index]
            record.revived += 1
            self._revived += 1
            acts.logs.append((logging.INFO, "revived model %s (still held by a caller)", (name,)))
            if self._listeners:
                acts.events.append(CacheEvent("revive", name, now))
            return model
        return MISSING

    def _reap(self, force: bool = False) -> int:
        """Close retired models nobody holds any more (all of them with ``force``)."""
        to_close: list[Retired] = []
        with self._lock:
            shared: dict[int, int] = {}
            for rec in self._retired:
                if not rec.weak:
                    shared[id(rec.obj)] = shared.get(id(rec.obj), 0) + 1
            keep: list[Retired] = []
            for rec in self._retired:
                if rec.weak:
                    if not force and rec.obj() is not None:
                        keep.append(rec)
                    continue
                obj = rec.obj
                # held only by retired records, the local ``obj`` and getrefcount's argument
                if force or sys.getrefcount(obj) <= 2 + shared[id(obj)]:
                    to_close.append(rec)
                else:
                    keep.append(rec)
                del obj
            self._retired = keep
        closed = 0
        done: set[int] = set()
        for rec in to_close:
            model, rec.obj = rec.obj, None
            if id(model) in done:  # the same object retired under two names
                continue
            done.add(id(model))
            fn = closer(model)
            if fn is None:  # pragma: no cover - only closeable models are held strongly
                continue
            try:
                fn()
                closed += 1
            except Exception:
                logger.warning("closing evicted model %s failed", rec.name, exc_info=True)
        if closed:
            with self._lock:
                self._closed_models += closed
            logger.debug("closed %d evicted model(s)", closed)
        return closed
