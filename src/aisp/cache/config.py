"""``CacheConfig``: the validated configuration of one :class:`~aisp.cache.ModelCache`, and the
argument checks the cache applies at its boundary.

The config is a frozen, keyword-only dataclass validated in ``__post_init__``: a bad value is a
:class:`~aisp.errors.ValidationError` (a ``ValueError``) naming the field, with what was expected
and what was got. Its :meth:`~CacheConfig.to_dict` is the ``config`` section of the cache's
detailed statistics. Nothing here reads the process settings: :meth:`CacheConfig.from_settings`
is handed a settings object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aisp.cache._entry import NEVER
from aisp.cache.keys import ModelKey
from aisp.cache.policies import POLICIES
from aisp.errors import OverloadedError, ValidationError

if TYPE_CHECKING:  # pragma: no cover - pydantic stays out of ``import aisp.cache``
    from aisp.settings import Settings

__all__ = ["CacheConfig", "NEVER", "check_int", "check_key", "check_ttl"]

def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and not math.isnan(value)


def check_ttl(value: object, field: str) -> float:
    """Seconds of idleness before expiry; ``None`` or 0 mean never (:data:`NEVER`)."""
    if value is None:
        return NEVER
    if not _is_number(value) or value < 0:  # type: ignore[operator]
        raise ValidationError(
            f"{field} must be a number >= 0 or None, got {value!r}",
            field=field,
            value=value,
            expected="seconds >= 0, or None / 0 for never",
        )
    seconds = float(value)  # type: ignore[arg-type]
    return seconds if seconds > 0 else NEVER


def check_int(value: object, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(
            f"{field} must be an integer >= {minimum}, got {value!r}",
            field=field,
            value=value,
            expected=f"an integer >= {minimum}",
        )
    return value


def check_key(key: object) -> ModelKey:
    """``key`` as a valid :class:`ModelKey`: text is parsed, an empty name or instance refused."""
    if isinstance(key, str):
        key = ModelKey.parse(key)
    if (
        not isinstance(key, ModelKey)
        or not isinstance(key.name, str)
        or not key.name
        or not (key.instance is None or (isinstance(key.instance, str) and key.instance))
    ):
        raise ValidationError(
            f"name must be a non-empty string (or a ModelKey), got {key!r}",
            field="name",
            value=key,
            expected="'name', 'name#instance' or ModelKey(name, instance)",
        )
    return key


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheConfig:
    """Bounds, TTL, revival, alerting and eviction policy of a cache (see ``docs/cache.md``).

    ``max_memory_mb=None``: no memory limit; ``default_ttl_seconds`` ``None`` or 0: never expire.
    """

    max_size: int = 8
    max_memory_mb: float | None = 2048.0
    default_ttl_seconds: float | None = 3600.0
    enable_weak_ref: bool = True
    hit_rate_threshold: float = 0.5
    hit_rate_window: int = 100
    hit_rate_min_requests: int = 20
    alert_cooldown_seconds: float = 300.0
    eviction_policy: str = "lru"

    def __post_init__(self) -> None:
        check_int(self.max_size, "max_size", 1)
        mb = self.max_memory_mb
        if mb is not None and (not _is_number(mb) or mb <= 0):
            raise ValidationError(
                f"max_memory_mb must be a number > 0 or None, got {mb!r}",
                field="max_memory_mb",
                value=mb,
                expected="megabytes > 0, or None for no limit",
            )
        ttl = check_ttl(self.default_ttl_seconds, "default_ttl_seconds")
        object.__setattr__(self, "default_ttl_seconds", None if ttl == NEVER else ttl)
        threshold = self.hit_rate_threshold
        if not _is_number(threshold) or not 0.0 <= threshold <= 1.0:
            raise ValidationError(
                f"hit_rate_threshold must be within [0, 1], got {threshold!r}",
                field="hit_rate_threshold",
                value=threshold,
                expected="a number in [0, 1]",
            )
        object.__setattr__(self, "hit_rate_threshold", float(threshold))
        object.__setattr__(self, "enable_weak_ref", bool(self.enable_weak_ref))
        check_int(self.hit_rate_window, "hit_rate_window", 1)
        check_int(self.hit_rate_min_requests, "hit_rate_min_requests", 1)
        cooldown = self.alert_cooldown_seconds
        if not _is_number(cooldown) or cooldown < 0:
            raise ValidationError(
                f"alert_cooldown_seconds must be a number >= 0, got {cooldown!r}",
                field="alert_cooldown_seconds",
                value=cooldown,
                expected="seconds >= 0",
            )
        object.__setattr__(self, "alert_cooldown_seconds", float(cooldown))
        if not isinstance(self.eviction_policy, str) or self.eviction_policy not in POLICIES:
            raise ValidationError(
                f"eviction_policy must be one of {sorted(POLICIES)}, got {self.eviction_policy!r}",
                field="eviction_policy",
                value=self.eviction_policy,
                expected=" or ".join(sorted(POLICIES)),
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheConfig:
        """The ``cache_*`` fields of ``settings``."""
        return cls(
            max_size=settings.cache_max_size,
            max_memory_mb=settings.cache_max_memory_mb,
            default_ttl_seconds=settings.cache_ttl_seconds,
            enable_weak_ref=settings.cache_weak_ref,
            hit_rate_threshold=settings.cache_hit_rate_threshold,
            hit_rate_window=settings.cache_hit_rate_window,
            hit_rate_min_requests=settings.cache_hit_rate_min_requests,
            eviction_policy=settings.cache_eviction_policy,
        )

    @property
    def max_memory_bytes(self) -> float:
        """The memory budget in bytes; ``math.inf`` without a limit."""
        return math.inf if self.max_memory_mb is None else float(self.max_memory_mb) * 1024 * 1024

    @property
    def idle_ttl(self) -> float:
        """``default_ttl_seconds`` as a float, :data:`NEVER` when entries never expire."""
        return NEVER if self.default_ttl_seconds is None else self.default_ttl_seconds

    def check_room(self, key: ModelKey, size: int, pinned: dict[ModelKey, int]) -> None:
        """Refuse, before anything is evicted, a model larger than the whole budget
        (``ValidationError`` naming ``size_bytes``) or one that cannot fit beside the ``pinned``
        models (key to size; ``OverloadedError``)."""
        budget = self.max_memory_bytes
        if size > budget:
            raise ValidationError(
                f"model {str(key)!r} needs {size} bytes, more than the whole cache budget of "
                f"{int(budget)} bytes (max_memory_mb={self.max_memory_mb})",
                field="size_bytes",
                value=size,
                expected=f"at most {int(budget)} bytes",
            )
        if len(pinned) + 1 > self.max_size or sum(pinned.values()) + size > budget:
            raise OverloadedError(
                f"cannot cache model {str(key)!r} ({size} bytes): pinned models "
                f"{sorted(str(k) for k in pinned)} fill the cache (max_size={self.max_size}, "
                f"max_memory_mb={self.max_memory_mb})"
            )

    def to_dict(self) -> dict[str, object]:
        return {
            "max_size": self.max_size,
            "max_memory_mb": self.max_memory_mb,
            "default_ttl_seconds": self.default_ttl_seconds,
            "enable_weak_ref": self.enable_weak_ref,
            "hit_rate_threshold": self.hit_rate_threshold,
            "hit_rate_window": self.hit_rate_window,
            "hit_rate_min_requests": self.hit_rate_min_requests,
            "alert_cooldown_seconds": self.alert_cooldown_seconds,
            "eviction_policy": self.eviction_policy,
        }
