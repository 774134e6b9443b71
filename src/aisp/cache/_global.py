"""The process-wide cache, configured from :func:`aisp.settings.get_settings`."""

from __future__ import annotations

import threading
from typing import Any

from aisp.cache.model_cache import ModelCache

__all__ = ["get_model_cache", "reset_model_cache", "prewarm_from_settings"]

_cache: ModelCache | None = None
_lock = threading.Lock()


def get_model_cache() -> ModelCache:
    """The process-wide :class:`ModelCache`, created from the settings on first use."""
    global _cache
    cache = _cache
    if cache is None:
        with _lock:
            if _cache is None:
                _cache = ModelCache.from_settings()
            cache = _cache
    return cache


def reset_model_cache() -> None:
    """Close and drop the process-wide cache (tests; cheap when none exists)."""
    global _cache
    with _lock:
        cache, _cache = _cache, None
    if cache is not None:
        cache.close()


def prewarm_from_settings(
    cache: ModelCache | None = None, settings: Any = None, *, background: bool = True
) -> Any:
    """Prewarm the models named by the ``prewarm`` setting (``AISP_PREWARM``)."""
    if settings is None:
        from aisp.settings import get_settings

        settings = get_settings()
    if cache is None:
        cache = get_model_cache()
    return cache.prewarm(list(settings.prewarm), background=background)
