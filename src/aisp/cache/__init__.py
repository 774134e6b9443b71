"""The model cache: LRU/cost eviction, TTL, memory budget, single-flight loads, prewarm, stats.

    >>> from aisp.cache import ModelCache, ModelKey
    >>> cache = ModelCache(max_size=3, max_memory_mb=512)
    >>> model = cache.get_or_load(ModelKey("face_detection"), loader)   # doctest: +SKIP

The cache knows nothing about vision: it caches any object a loader returns, under a
:class:`ModelKey`. There is no process-wide cache here: the composition root (``aisp.runtime``)
builds one per runtime. See ``docs/cache.md`` for the design.
"""

from __future__ import annotations

from aisp.cache.alerts import AlertRecord
from aisp.cache.config import CacheConfig
from aisp.cache.events import EVENT_TYPES, CacheEvent
from aisp.cache.export import CacheCollector
from aisp.cache.keys import ModelKey
from aisp.cache.model_cache import ModelCache
from aisp.cache.policies import CostPolicy, LRUPolicy
from aisp.cache.prewarm import PrewarmHandle, PrewarmReport, PrewarmResult, PrewarmState, Resolver
from aisp.cache.sizing import DEFAULT_SIZE_BYTES, estimate_size
from aisp.cache.stats import CacheReport, CacheStats, ModelStats

__all__ = [
    "AlertRecord",
    "CacheCollector",
    "CacheConfig",
    "CacheEvent",
    "CacheReport",
    "CacheStats",
    "CostPolicy",
    "DEFAULT_SIZE_BYTES",
    "EVENT_TYPES",
    "LRUPolicy",
    "ModelCache",
    "ModelKey",
    "ModelStats",
    "PrewarmHandle",
    "PrewarmReport",
    "PrewarmResult",
    "PrewarmState",
    "Resolver",
    "estimate_size",
]
