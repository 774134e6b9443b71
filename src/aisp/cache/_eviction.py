"""The one eviction path of :class:`~aisp.cache.model_cache.ModelCache`.

Insertion makes room through the policy (count first, then memory) and every removal — count,
memory, TTL, invalidate, clear, replace, close — ends in :meth:`EvictionMixin._remove_locked`,
where counters, log lines, events and the retirement of the model happen, and nowhere else.
A model larger than the whole budget, or one that cannot fit beside the pinned models, is
refused before anything is evicted.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from aisp.cache._entry import NEVER, Entry
from aisp.cache._internal import Actions
from aisp.cache.events import CacheEvent
from aisp.errors import OverloadedError, ValidationError

__all__ = ["EvictionMixin"]


class EvictionMixin:
    """Insert and remove entries for ``ModelCache`` (uses its lock, maps, policy and counters)."""

    _lock: threading.Lock
    _entries: OrderedDict[str, Entry]
    _listeners: tuple[Any, ...]
    max_size: int
    max_memory_bytes: float

    def _insert_locked(
        self, record: Entry, model: Any, size: int, source: str, ttl: float | None, now: float, acts: Actions
    ) -> None:
        name = record.name
        if size > self.max_memory_bytes:
            raise ValidationError(
                f"model {name!r} needs {size} bytes, more than the whole cache budget of "
                f"{int(self.max_memory_bytes)} bytes (max_memory_mb={self.max_memory_mb})",
                field="size_bytes",
                value=size,
                expected=f"at most {int(self.max_memory_bytes)} bytes",
            )
        old = self._entries.get(name)  # ``old`` is ``record`` when cached: one record per name
        pinned = [e for e in self._entries.values() if e.pinned and e is not old]
        if (
            len(pinned) + 1 > self.max_size
            or sum(e.size_bytes for e in pinned) + size > self.max_memory_bytes
        ):
            raise OverloadedError(
                f"cannot cache model {name!r} ({size} bytes): pinned models "
                f"{sorted(e.name for e in pinned)} fill the cache (max_size={self.max_size}, "
                f"max_memory_mb={self.max_memory_mb})"
            )
        was_pinned = old is not None and old.pinned
        if old is not None:
            if old.model is model:  # same object again: take it out quietly, re-insert below
                del self._entries[name]
                self._memory -= old.size_bytes
            else:
                self._remove_locked(old, "replaced", now, acts)
        while self._entries and (
            len(self._entries) >= self.max_size or self._memory + size > self.max_memory_bytes
        ):
            victim = self._policy.choose_victim(self._entries.values())
            if victim is None:  # pragma: no cover - excluded by the pinned pre-check above
                raise OverloadedError(f"cannot make room for model {name!r}")
            reason = "capacity" if len(self._entries) >= self.max_size else "memory"
            self._policy.on_evict(victim)
            self._remove_locked(victim, reason, now, acts)
        record.model = model
        record.cached = True
        record.size_bytes, record.size_source = size, source
        record.inserted_at = now
        record.last_access = now
        record.pinned = was_pinned
        if record.cost <= 0.0:
            record.cost = self._default_cost()
        self._policy.on_insert(record)
        self._entries[name] = record
        self._memory += size
        record.ttl = NEVER if record.pinned else (self._default_ttl if ttl is None else ttl)
        record.expires_at = now + record.ttl
        self._prewarm_pending.discard(name)
        if record.expires_at != NEVER:
            self._ensure_sweeper()

    def _default_cost(self) -> float:
        """Reload cost assumed for a model put without a measured load: the mean load time, else 1 s."""
        return self._load_seconds_total / self._loads if self._loads else 1.0

    def _remove_locked(self, entry: Entry, reason: str, now: float, acts: Actions) -> None:
        """The one eviction path: every removal of a cached entry ends here."""
        name = entry.name
        del self._entries[name]
        self._memory -= entry.size_bytes
        model = entry.model
        ttl = self._default_ttl if entry.pinned else entry.ttl  # a revived model is not pinned
        entry.model = None
        entry.cached = False
        entry.pinned = False
        entry.expires_at = NEVER
        if reason == "expired":
            self._expirations += 1
            kind = "expire"
        else:
            kind = "evict"
            if reason in ("capacity", "memory"):
                self._evictions += 1
            elif reason != "replaced":
                self._invalidations += 1
        self._retire_locked(entry, model, ttl)
        level = logging.INFO if reason in ("invalidated", "cleared") else logging.DEBUG  # churn stays quiet
        acts.logs.append(
            (level, "%s model %s (%s)", ("expired" if kind == "expire" else "evicted", name, reason))
        )
        if self._listeners:
            acts.events.append(
                CacheEvent(kind, name, now, {"reason": reason, "size_bytes": entry.size_bytes})
            )
