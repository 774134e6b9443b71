"""Internal helpers of the cache: argument checks and the post-lock work list."""

from __future__ import annotations

import math
from typing import Any

from aisp.cache._entry import NEVER
from aisp.cache.alerts import AlertRecord
from aisp.cache.events import CacheEvent
from aisp.errors import ValidationError

__all__ = ["MISSING", "Actions", "check_config", "check_int", "check_name", "check_ttl"]

#: Sentinel for "no model found" where ``None`` could be a cached value.
MISSING = object()


class Actions:
    """Work collected under the cache lock and done after it is released."""

    __slots__ = ("events", "logs", "alert")

    def __init__(self) -> None:
        self.events: list[CacheEvent] = []
        self.logs: list[tuple[int, str, tuple[Any, ...]]] = []
        self.alert: AlertRecord | None = None


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and not math.isnan(value)


def check_ttl(value: Any, field: str) -> float:
    """Seconds of idleness before expiry; ``None`` or 0 mean never (``NEVER``)."""
    if value is None:
        return NEVER
    if not _is_number(value) or value < 0:
        raise ValidationError(
            f"{field} must be a number >= 0 or None, got {value!r}",
            field=field,
            value=value,
            expected="seconds >= 0, or None / 0 for never",
        )
    return float(value) if value > 0 else NEVER


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValidationError(
            f"name must be a non-empty string, got {name!r}", field="name", value=name, expected="a string"
        )
    return name


def check_int(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(
            f"{field} must be an integer >= {minimum}, got {value!r}",
            field=field,
            value=value,
            expected=f"an integer >= {minimum}",
        )
    return value


def check_config(
    max_size: Any,
    max_memory_mb: Any,
    default_ttl_seconds: Any,
    hit_rate_threshold: Any,
    clock: Any,
    hit_rate_window: Any,
    hit_rate_min_requests: Any,
    alert_cooldown_seconds: Any,
) -> tuple[int, float, float]:
    """Validate the constructor arguments; ``(max_size, max_memory_bytes, default_ttl)``."""
    size = check_int(max_size, "max_size", 1)
    if max_memory_mb is None:
        memory = math.inf
    elif not _is_number(max_memory_mb) or max_memory_mb <= 0:
        raise ValidationError(
            f"max_memory_mb must be a number > 0 or None, got {max_memory_mb!r}",
            field="max_memory_mb",
            value=max_memory_mb,
            expected="megabytes > 0, or None for no limit",
        )
    else:
        memory = float(max_memory_mb) * 1024 * 1024
    ttl = check_ttl(default_ttl_seconds, "default_ttl_seconds")
    if not _is_number(hit_rate_threshold) or not 0.0 <= hit_rate_threshold <= 1.0:
        raise ValidationError(
            f"hit_rate_threshold must be within [0, 1], got {hit_rate_threshold!r}",
            field="hit_rate_threshold",
            value=hit_rate_threshold,
            expected="a number in [0, 1]",
        )
    if not callable(clock):
        raise TypeError(f"clock must be callable, got {type(clock).__name__}")
    check_int(hit_rate_window, "hit_rate_window", 1)
    check_int(hit_rate_min_requests, "hit_rate_min_requests", 1)
    if not _is_number(alert_cooldown_seconds) or alert_cooldown_seconds < 0:
        raise ValidationError(
            f"alert_cooldown_seconds must be a number >= 0, got {alert_cooldown_seconds!r}",
            field="alert_cooldown_seconds",
            value=alert_cooldown_seconds,
            expected="seconds >= 0",
        )
    return size, memory, ttl
