"""Eviction policies: which unpinned entry leaves when the cache is over its count or memory budget.

* ``lru``: the least recently used entry (the cache keeps its entries in recency order).
* ``cost``: GreedyDual-Size-Frequency (Cherkasova 1998). Each entry has the priority
  ``H = L + freq * cost / size`` where ``cost`` is its measured load time in seconds, ``size`` its
  size in MiB and ``freq`` its uses since it was (re)inserted. The entry with the lowest ``H`` is
  evicted and the inflation value ``L`` rises to its ``H``, so entries that are not used age
  out even when they were expensive. A model that is slow to reload, small, or used often stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from aisp.cache._entry import Entry
from aisp.errors import ValidationError

__all__ = ["EvictionPolicy", "LRUPolicy", "CostPolicy", "POLICIES", "make_policy"]

_MIB = float(1 << 20)
#: Sizes below this count as this much, so a zero-byte entry does not get an infinite priority.
MIN_SIZE_BYTES = 1024


class EvictionPolicy(Protocol):
    name: str
    #: Whether :meth:`on_hit` must run on every hit (the LRU policy needs nothing there).
    tracks_hits: bool

    def on_insert(self, entry: Entry) -> None: ...

    def on_hit(self, entry: Entry) -> None: ...

    def on_evict(self, entry: Entry) -> None: ...

    def choose_victim(self, entries: Iterable[Entry]) -> Entry | None: ...


class LRUPolicy:
    """Least recently used: the first unpinned entry in recency order."""

    name = "lru"
    tracks_hits = False

    def on_insert(self, entry: Entry) -> None:
        entry.freq = 1

    def on_hit(self, entry: Entry) -> None:  # pragma: no cover - never called (tracks_hits False)
        entry.freq += 1

    def on_evict(self, entry: Entry) -> None:
        pass

    def choose_victim(self, entries: Iterable[Entry]) -> Entry | None:
        for entry in entries:  # oldest first
            if not entry.pinned:
                return entry
        return None


class CostPolicy:
    """GreedyDual-Size-Frequency: keep models that are expensive to reload, small, or popular."""

    name = "cost"
    tracks_hits = True

    def __init__(self) -> None:
        self.inflation = 0.0

    def _value(self, entry: Entry) -> float:
        size = max(entry.size_bytes, MIN_SIZE_BYTES) / _MIB
        return entry.freq * entry.cost / size

    def on_insert(self, entry: Entry) -> None:
        entry.freq = 1
        entry.priority = self.inflation + self._value(entry)

    def on_hit(self, entry: Entry) -> None:
        entry.freq += 1
        entry.priority = self.inflation + self._value(entry)

    def on_evict(self, entry: Entry) -> None:
        if entry.priority > self.inflation:
            self.inflation = entry.priority

    def choose_victim(self, entries: Iterable[Entry]) -> Entry | None:
        victim: Entry | None = None
        for entry in entries:  # recency order: ties go to the least recently used
            if entry.pinned:
                continue
            if victim is None or entry.priority < victim.priority:
                victim = entry
        return victim


POLICIES = {"lru": LRUPolicy, "cost": CostPolicy}


def make_policy(name: str) -> EvictionPolicy:
    """The policy called ``name``; ``ValueError`` naming ``eviction_policy`` otherwise."""
    try:
        return POLICIES[name]()  # type: ignore[no-any-return]
    except (KeyError, TypeError):

        raise ValidationError(
            f"eviction_policy must be one of {sorted(POLICIES)}, got {name!r}",
            field="eviction_policy",
            value=name,
            expected=" or ".join(sorted(POLICIES)),
        ) from None
