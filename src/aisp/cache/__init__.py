"""The model cache: LRU/cost eviction, TTL, memory budget, single-flight loads, prewarm, stats.

    >>> from aisp.cache import ModelCache
    >>> cache = ModelCache(max_size=3, max_memory_mb=512)
    >>> model = cache.get_or_load("face_detection", loader)   # doctest: +SKIP

The cache knows nothing about vision: it caches any object a loader returns. See
``docs/cache.md`` for the design.
"""

from __future__ import annotations

from aisp.cache._global import get_model_cache, prewarm_from_settings, reset_model_cache
from aisp.cache.alerts import AlertRecord
from aisp.cache.events import EVENT_TYPES, CacheEvent
from aisp.cache.export import CacheCollector
from aisp.cache.model_cache import ModelCache
from aisp.cache.policies import CostPolicy, LRUPolicy
from aisp.cache.prewarm import (
    PrewarmHandle,
    PrewarmReport,
    PrewarmResult,
    get_name_resolver,
    resolve_loader,
    set_name_resolver,
)
from aisp.cache.sizing import DEFAULT_SIZE_BYTES, estimate_size

__all__ = [
    "AlertRecord",
    "CacheCollector",
    "CacheEvent",
    "CostPolicy",
    "DEFAULT_SIZE_BYTES",
    "EVENT_TYPES",
    "LRUPolicy",
    "ModelCache",
    "PrewarmHandle",
    "PrewarmReport",
    "PrewarmResult",
    "estimate_size",
    "get_model_cache",
    "get_name_resolver",
    "prewarm_from_settings",
    "reset_model_cache",
    "resolve_loader",
    "set_name_resolver",
]
