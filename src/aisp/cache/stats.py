"""Statistics snapshots of a :class:`~aisp.cache.model_cache.ModelCache`.

``basic_stats`` is the flat dictionary of :meth:`ModelCache.get_stats`; ``detailed_stats`` adds
per-model statistics, the prewarm state, recent alerts and the configuration. Both are taken
under the cache lock, so each is a consistent snapshot.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from aisp.cache.model_cache import ModelCache

__all__ = ["basic_stats", "detailed_stats", "STAT_KEYS"]


def _basic_locked(cache: ModelCache, now: float) -> dict[str, Any]:
    c = cache
    requests = c._hits + c._misses
    window = c._window_count()
    max_mem = None if math.isinf(c.max_memory_bytes) else int(c.max_memory_bytes)
    return {
        "hits": c._hits,
        "misses": c._misses,
        "requests": requests,
        "hit_rate_percent": round(100.0 * c._hits / requests, 2) if requests else 0.0,
        "recent_hit_rate_percent": round(100.0 * c._ring_sum / window, 2) if window else 0.0,
        "recent_window": window,
        "cache_size": len(c._entries),
        "max_size": c.max_size,
        "memory_usage_bytes": c._memory,
        "max_memory_bytes": max_mem,
        "memory_usage_percent": round(100.0 * c._memory / max_mem, 2) if max_mem else 0.0,
        "evictions": c._evictions,
        "expirations": c._expirations,
        "invalidations": c._invalidations,
        "loads": c._loads,
        "load_failures": c._load_failures,
        "total_load_time_ms": round(c._load_seconds_total * 1000.0, 3),
        "revived": c._revived,
        "coalesced_waits": c._coalesced,
        "puts": c._puts,
        "closed_models": c._closed_models,
        "retired_models": len(c._retired),
        "loading": len(c._pending),
        "pinned": sum(1 for e in c._entries.values() if e.pinned),
        "alerts": c._alert.fired,
        "alert_active": c._alert.active,
        "eviction_policy": c.eviction_policy,
        "uptime_seconds": round(max(0.0, now - c._created_at), 3),
    }


#: The keys of :func:`basic_stats`, in order (the CSV and Prometheus exporters rely on them).
STAT_KEYS = (
    "hits misses requests hit_rate_percent recent_hit_rate_percent recent_window cache_size max_size "
    "memory_usage_bytes max_memory_bytes memory_usage_percent evictions expirations invalidations loads "
    "load_failures total_load_time_ms revived coalesced_waits puts closed_models retired_models loading "
    "pinned alerts alert_active eviction_policy uptime_seconds"
).split()


def basic_stats(cache: ModelCache) -> dict[str, Any]:
    now = cache._clock()
    with cache._lock:
        return _basic_locked(cache, now)


def detailed_stats(cache: ModelCache) -> dict[str, Any]:
    now = cache._clock()
    with cache._lock:
        basic = _basic_locked(cache, now)
        models = {}
        for name, record in sorted(cache._records.items()):
            info = record.to_dict(now)
            info["loading"] = name in cache._pending
            models[name] = info
        requested = list(cache._prewarm_requested)
        pending = set(cache._prewarm_pending)
        last = cache._prewarm_last
        alerts = [a.to_dict() for a in cache._alert.history]
        alert_cfg = cache._alert
        ttl = cache._default_ttl
    return {
        "basic_stats": basic,
        "models": models,
        "prewarm": {
            "requested": requested,
            "warmed": [n for n in requested if n not in pending],
            "pending": [n for n in requested if n in pending],
            "is_warmed_up": not pending,
            "last_report": None if last is None else last.to_dict(),
        },
        "alerts": alerts,
        "config": {
            "max_size": cache.max_size,
            "max_memory_mb": cache.max_memory_mb,
            "default_ttl_seconds": None if math.isinf(ttl) else ttl,
            "enable_weak_ref": cache.enable_weak_ref,
            "hit_rate_threshold": cache.hit_rate_threshold,
            "hit_rate_window": cache._ring_n,
            "hit_rate_min_requests": alert_cfg.min_requests,
            "alert_cooldown_seconds": alert_cfg.cooldown_seconds,
            "eviction_policy": cache.eviction_policy,
        },
    }
