"""The cache's per-key records: an :class:`Entry` per model key, a :class:`Flight` per load.

An entry outlives its model: after an eviction ``model`` is ``None`` but the counters stay, so
per-model statistics (hits, loads, load times) survive evictions and reloads. A flight is one
load in progress, which concurrent callers of the same key wait on. All fields are mutated only
under the cache lock.
"""

from __future__ import annotations

import math
import threading

from aisp.cache.keys import ModelKey

__all__ = ["Entry", "Flight", "MISSING", "NEVER"]

#: ``expires_at`` of an entry that never expires (one float comparison on the hit path).
NEVER = math.inf

#: "No model found", where ``None`` could be a cached value.
MISSING = object()


class Entry:
    """Mutable per-key record (``__slots__`` keeps attribute access fast on the hit path)."""

    __slots__ = (
        "key",
        "model",
        "cached",
        "size_bytes",
        "size_source",
        "ttl",
        "expires_at",
        "pinned",
        "hits",
        "misses",
        "loads",
        "load_failures",
        "revived",
        "load_seconds_last",
        "load_seconds_total",
        "load_seconds_max",
        "last_access",
        "inserted_at",
        "freq",
        "priority",
        "cost",
    )

    def __init__(self, key: ModelKey) -> None:
        self.key = key
        self.model: object = None
        self.cached = False
        self.size_bytes = 0
        self.size_source = ""
        self.ttl = NEVER  # seconds of idleness before expiry
        self.expires_at = NEVER
        self.pinned = False
        self.hits = 0
        self.misses = 0
        self.loads = 0
        self.load_failures = 0
        self.revived = 0
        self.load_seconds_last: float | None = None
        self.load_seconds_total = 0.0
        self.load_seconds_max = 0.0
        self.last_access: float | None = None
        self.inserted_at: float | None = None
        self.freq = 0  # uses since (re)insertion, for the cost policy
        self.priority = 0.0  # cost policy priority (GreedyDual-Size-Frequency)
        self.cost = 0.0  # seconds a reload is expected to take

    @property
    def load_seconds_mean(self) -> float | None:
        return self.load_seconds_total / self.loads if self.loads else None

    def record_load(self, seconds: float) -> None:
        self.loads += 1
        self.load_seconds_last = seconds
        self.load_seconds_total += seconds
        if seconds > self.load_seconds_max:
            self.load_seconds_max = seconds
        self.cost = seconds


class Flight:
    """One load in progress; waiters block on ``done``, then read ``value`` or ``error``."""

    __slots__ = ("done", "value", "error", "owner", "invalidated")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: object = None
        self.error: BaseException | None = None
        self.owner = threading.get_ident()
        self.invalidated = False
