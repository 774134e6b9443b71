"""Retirement of removed models: close them once nobody holds them, or revive them.

A removed model that has ``close()``/``release()`` is kept (strongly) by :class:`Retirement` and
closed as soon as no one else holds it, judged by its CPython reference count, exactly once.
With weak references on, a retired model that a caller still holds can be revived on the next
request instead of being reloaded; models without ``close()`` are tracked through a weak
reference only. A model caught in a reference cycle with itself is closed by a forced collection
(``ModelCache.close()``).

:class:`Retirement` owns the retired records and is not thread-safe: its owner calls
:meth:`~Retirement.retire`, :meth:`~Retirement.find`, :meth:`~Retirement.remove` and
:meth:`~Retirement.collect` under its lock, and :func:`close_models` after releasing it, since a
model's ``close()`` may take long or call back into the cache.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Callable

from aisp.cache.keys import ModelKey

__all__ = ["Retired", "Retirement", "close_models", "closer"]

logger = logging.getLogger("aisp.cache")


def closer(model: object) -> Callable[[], object] | None:
    """The model's ``close`` or ``release`` method, if it has one."""
    for attr in ("close", "release"):
        fn = getattr(model, attr, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


class Retired:
    """A removed model waiting to be closed (strong ref) or revived (weak or strong ref), with
    what the cache needs to re-insert it as it was."""

    __slots__ = ("key", "obj", "weak", "size_bytes", "size_source", "ttl")

    def __init__(
        self, key: ModelKey, obj: object, weak: bool, size_bytes: int, size_source: str, ttl: float
    ) -> None:
        self.key = key
        self.obj = obj
        self.weak = weak
        self.size_bytes = size_bytes
        self.size_source = size_source
        self.ttl = ttl

    def get(self) -> object:
        """The model, or ``None`` once a weakly held model is gone."""
        return self.obj() if self.weak else self.obj  # type: ignore[operator]


class Retirement:
    """The models removed from a cache that may still be in use; see the module docstring."""

    __slots__ = ("weak_refs", "_retired")

    def __init__(self, weak_refs: bool) -> None:
        self.weak_refs = weak_refs
        self._retired: list[Retired] = []

    def __len__(self) -> int:
        return len(self._retired)

    @property
    def holds_models(self) -> bool:
        """Whether a closeable model is held strongly (someone must check it again later)."""
        return any(not r.weak for r in self._retired)

    def retire(
        self, key: ModelKey, model: object, size_bytes: int, size_source: str, ttl: float
    ) -> bool:
        """Keep ``model`` to close or revive it; ``True`` when it is held strongly (closeable)."""
        if model is None:
            return False
        if closer(model) is not None:
            self._retired.append(Retired(key, model, False, size_bytes, size_source, ttl))
            return True
        if self.weak_refs:
            try:
                ref = weakref.ref(model)
            except TypeError:  # not weak-referenceable (int, dict, ...): nothing to revive
                return False
            self._retired.append(Retired(key, ref, True, size_bytes, size_source, ttl))
        return False

    def find(self, key: ModelKey) -> tuple[Retired, object] | None:
        """The newest retired model of ``key`` still alive, to revive (weak refs on only); records
        of models that are gone are dropped on the way. The record stays until :meth:`remove`."""
        if not self.weak_refs or not self._retired:
            return None
        retired = self._retired
        for index in range(len(retired) - 1, -1, -1):
            rec = retired[index]
            if rec.key != key:
                continue
            model = rec.get()
            if model is None:
                del retired[index]
                continue
            return rec, model
        return None

    def remove(self, rec: Retired) -> None:
        """Forget ``rec`` (its model was revived)."""
        self._retired.remove(rec)

    def collect(self, force: bool = False) -> list[Retired]:
        """Take out the records whose models nobody else holds (every one with ``force``); weak
        records of models that are gone are dropped. Close the result with :func:`close_models`."""
        shared: dict[int, int] = {}
        for rec in self._retired:
            if not rec.weak:
                shared[id(rec.obj)] = shared.get(id(rec.obj), 0) + 1
        keep: list[Retired] = []
        to_close: list[Retired] = []
        for rec in self._retired:
            if rec.weak:
                if not force and rec.obj() is not None:  # type: ignore[operator]
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
        return to_close


def close_models(records: list[Retired]) -> int:
    """Close the models of ``records`` (each object once); returns how many were closed. Errors
    are logged, never raised. Call it without holding the cache lock."""
    closed = 0
    done: set[int] = set()
    for rec in records:
        model, rec.obj = rec.obj, None
        if id(model) in done:  # the same object retired under two keys
            continue
        done.add(id(model))
        fn = closer(model)
        if fn is None:  # pragma: no cover - only closeable models are held strongly
            continue
        try:
            fn()
            closed += 1
        except Exception:
            logger.warning("closing evicted model %s failed", rec.key, exc_info=True)
    if closed:
        logger.debug("closed %d evicted model(s)", closed)
    return closed
