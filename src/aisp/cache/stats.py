"""Typed statistics snapshots of a model cache.

* :class:`CacheStats`: the totals and levels (``ModelCache.get_stats()``), one field per
  :data:`STAT_KEYS` entry.
* :class:`ModelStats`: one model key's counters, load times, size and TTL (``ModelCache.info()``);
  they survive evictions and reloads.
* :class:`CacheReport`: ``basic``, ``models`` (by key), the prewarm state, recent alerts and the
  configuration (``ModelCache.get_detailed_stats()``).
* :class:`Totals`: the running counters a cache keeps, and how a snapshot is made of them.

Each is frozen and taken under the cache lock, so it is a consistent snapshot. Python code reads
the fields; ``to_dict()`` gives the JSON shape the API, the CSV export and the dashboard have
always had, with keys shown as text (``"name#instance"``). The exporters take any
:class:`StatsSource`, so they never see the cache itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aisp.cache._entry import NEVER, Entry
from aisp.cache.alerts import AlertRecord, HitWindow
from aisp.cache.config import CacheConfig
from aisp.cache.keys import ModelKey
from aisp.cache.prewarm import PrewarmState

__all__ = ["CacheReport", "CacheStats", "ModelStats", "STAT_KEYS", "StatsSource", "Totals"]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Totals since the cache was created and its current levels."""

    hits: int
    misses: int
    requests: int
    hit_rate_percent: float
    recent_hit_rate_percent: float  # over the last ``recent_window`` requests
    recent_window: int
    cache_size: int
    max_size: int
    memory_usage_bytes: int
    max_memory_bytes: int | None  # None: no memory limit
    memory_usage_percent: float
    evictions: int  # for count or memory
    expirations: int  # by TTL
    invalidations: int  # invalidate, clear, close
    loads: int
    load_failures: int
    total_load_time_ms: float
    revived: int
    coalesced_waits: int
    puts: int
    closed_models: int
    retired_models: int
    loading: int
    pinned: int
    alerts: int  # low hit-rate alerts fired
    alert_active: bool
    eviction_policy: str
    uptime_seconds: float

    def to_dict(self) -> dict[str, object]:
        return {field: getattr(self, field) for field in STAT_KEYS}


#: The fields of :class:`CacheStats`, in order (the keys of its ``to_dict()``).
STAT_KEYS = list(CacheStats.__dataclass_fields__)


@dataclass(slots=True)
class Totals:
    """The running totals of one cache, mutated by it under its lock (``hits`` on the hit path)."""

    hits: int = 0
    misses: int = 0
    loads: int = 0
    load_failures: int = 0
    load_seconds: float = 0.0
    evictions: int = 0  # for count or memory
    expirations: int = 0
    invalidations: int = 0  # invalidate, clear, close (a replacement is none of these)
    revived: int = 0
    coalesced_waits: int = 0
    puts: int = 0
    closed_models: int = 0

    def removed(self, reason: str) -> None:
        """Count a removal of a cached entry for ``reason``."""
        if reason == "expired":
            self.expirations += 1
        elif reason in ("capacity", "memory"):
            self.evictions += 1
        elif reason != "replaced":
            self.invalidations += 1

    def snapshot(
        self,
        window: HitWindow,
        *,
        cache_size: int,
        max_size: int,
        memory_bytes: int,
        max_memory_bytes: float,
        retired: int,
        loading: int,
        pinned: int,
        eviction_policy: str,
        uptime_seconds: float,
    ) -> CacheStats:
        """These totals with the cache's levels at one moment (call under the cache lock)."""
        requests = self.hits + self.misses
        recent_hits, recent = window.counts(requests)
        max_mem = None if max_memory_bytes == float("inf") else int(max_memory_bytes)
        alert = window.alert
        return CacheStats(
            hits=self.hits,
            misses=self.misses,
            requests=requests,
            hit_rate_percent=round(100.0 * self.hits / requests, 2) if requests else 0.0,
            recent_hit_rate_percent=round(100.0 * recent_hits / recent, 2) if recent else 0.0,
            recent_window=recent,
            cache_size=cache_size,
            max_size=max_size,
            memory_usage_bytes=memory_bytes,
            max_memory_bytes=max_mem,
            memory_usage_percent=round(100.0 * memory_bytes / max_mem, 2) if max_mem else 0.0,
            evictions=self.evictions,
            expirations=self.expirations,
            invalidations=self.invalidations,
            loads=self.loads,
            load_failures=self.load_failures,
            total_load_time_ms=round(self.load_seconds * 1000.0, 3),
            revived=self.revived,
            coalesced_waits=self.coalesced_waits,
            puts=self.puts,
            closed_models=self.closed_models,
            retired_models=retired,
            loading=loading,
            pinned=pinned,
            alerts=alert.fired,
            alert_active=alert.active,
            eviction_policy=eviction_policy,
            uptime_seconds=round(max(0.0, uptime_seconds), 3),
        )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


@dataclass(frozen=True, slots=True)
class ModelStats:
    """One model key's statistics, times in ms or in seconds of the cache clock."""

    key: ModelKey
    cached: bool
    pinned: bool
    hits: int
    misses: int
    requests: int
    loads: int
    load_failures: int
    revived: int
    load_ms_last: float | None  # the last successful load
    load_ms_mean: float | None
    load_ms_max: float | None
    size_bytes: int | None  # None while not cached
    size_source: str | None  # explicit, attribute, nbytes, file or default
    last_access: float | None
    idle_seconds: float | None
    ttl_seconds: float | None  # None: never expires
    ttl_left_seconds: float | None
    priority: float  # cost policy priority
    loading: bool  # a load is in flight

    @classmethod
    def of(cls, entry: Entry, now: float, loading: bool) -> ModelStats:
        """A snapshot of ``entry`` at ``now`` (call under the cache lock)."""
        ttl_left = None
        if entry.cached and entry.expires_at != NEVER:
            ttl_left = max(0.0, entry.expires_at - now)
        return cls(
            key=entry.key,
            cached=entry.cached,
            pinned=entry.pinned,
            hits=entry.hits,
            misses=entry.misses,
            requests=entry.hits + entry.misses,
            loads=entry.loads,
            load_failures=entry.load_failures,
            revived=entry.revived,
            load_ms_last=_ms(entry.load_seconds_last),
            load_ms_mean=_ms(entry.load_seconds_mean),
            load_ms_max=_ms(entry.load_seconds_max) if entry.loads else None,
            size_bytes=entry.size_bytes if entry.cached else None,
            size_source=entry.size_source or None,
            last_access=entry.last_access,
            idle_seconds=None if entry.last_access is None else max(0.0, now - entry.last_access),
            ttl_seconds=None if entry.ttl == NEVER else entry.ttl,
            ttl_left_seconds=ttl_left,
            priority=round(entry.priority, 6),
            loading=loading,
        )

    @property
    def name(self) -> str:
        """The key as text, ``"name"`` or ``"name#instance"``."""
        return str(self.key)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": str(self.key)}
        for field in _MODEL_FIELDS:
            out[field] = getattr(self, field)
        return out


_MODEL_FIELDS = [f for f in ModelStats.__dataclass_fields__ if f != "key"]


@dataclass(frozen=True, slots=True)
class CacheReport:
    """Everything the cache knows about itself, at one moment."""

    basic: CacheStats
    models: dict[ModelKey, ModelStats]  # ordered by the keys' text
    prewarm: PrewarmState
    alerts: tuple[AlertRecord, ...]  # oldest first
    config: CacheConfig

    def to_dict(self) -> dict[str, object]:
        return {
            "basic_stats": self.basic.to_dict(),
            "models": {str(key): stats.to_dict() for key, stats in self.models.items()},
            "prewarm": self.prewarm.to_dict(),
            "alerts": [alert.to_dict() for alert in self.alerts],
            "config": self.config.to_dict(),
        }


class StatsSource(Protocol):
    """What the exporters read: a cache, or anything that reports like one."""

    def get_detailed_stats(self) -> CacheReport: ...
