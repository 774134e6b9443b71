"""One record per model name: the cached object (if any) and its statistics.

A record outlives its model: after an eviction ``model`` is ``None`` but the counters stay, so
per-model statistics (hits, loads, load times) survive evictions and reloads. All fields are
mutated only under the cache lock.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Entry", "NEVER"]

#: ``expires_at`` of an entry that never expires (one float comparison on the hit path).
NEVER = math.inf


class Entry:
    """Mutable per-model record (``__slots__`` keeps attribute access fast on the hit path)."""

    __slots__ = (
        "name",
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

    def __init__(self, name: str) -> None:
        self.name = name
        self.model: Any = None
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

    def to_dict(self, now: float) -> dict[str, Any]:
        """Per-model statistics (times in ms / seconds relative to ``now`` of the cache clock)."""

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000.0, 3)

        mean = self.load_seconds_mean
        ttl = None if self.ttl == NEVER else self.ttl
        ttl_left = None
        if self.cached and self.expires_at != NEVER:
            ttl_left = max(0.0, self.expires_at - now)
        return {
            "name": self.name,
            "cached": self.cached,
            "pinned": self.pinned,
            "hits": self.hits,
            "misses": self.misses,
            "requests": self.hits + self.misses,
            "loads": self.loads,
            "load_failures": self.load_failures,
            "revived": self.revived,
            "load_ms_last": ms(self.load_seconds_last),
            "load_ms_mean": ms(mean),
            "load_ms_max": ms(self.load_seconds_max) if self.loads else None,
            "size_bytes": self.size_bytes if self.cached else None,
            "size_source": self.size_source or None,
            "last_access": self.last_access,
            "idle_seconds": None if self.last_access is None else max(0.0, now - self.last_access),
            "ttl_seconds": ttl,
            "ttl_left_seconds": ttl_left,
            "priority": round(self.priority, 6),
        }
