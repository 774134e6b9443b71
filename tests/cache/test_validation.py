"""Bad input: ValueError (aisp ValidationError) naming the argument, TypeError for non-callables."""

from __future__ import annotations

import pytest

from aisp.cache import ModelCache
from aisp.errors import ValidationError

BAD_CONSTRUCTOR_ARGS = [
    ({"max_size": 0}, "max_size"),
    ({"max_size": -1}, "max_size"),
    ({"max_size": 2.5}, "max_size"),
    ({"max_size": True}, "max_size"),
    ({"max_memory_mb": 0}, "max_memory_mb"),
    ({"max_memory_mb": -5}, "max_memory_mb"),
    ({"max_memory_mb": "big"}, "max_memory_mb"),
    ({"default_ttl_seconds": -1}, "default_ttl_seconds"),
    ({"default_ttl_seconds": float("nan")}, "default_ttl_seconds"),
    ({"hit_rate_threshold": 1.5}, "hit_rate_threshold"),
    ({"hit_rate_threshold": -0.1}, "hit_rate_threshold"),
    ({"eviction_policy": "fifo"}, "eviction_policy"),
    ({"eviction_policy": None}, "eviction_policy"),
    ({"hit_rate_window": 0}, "hit_rate_window"),
    ({"hit_rate_min_requests": 0}, "hit_rate_min_requests"),
    ({"alert_cooldown_seconds": -1}, "alert_cooldown_seconds"),
]


@pytest.mark.parametrize(("kwargs", "field"), BAD_CONSTRUCTOR_ARGS)
def test_bad_constructor_arguments_name_the_field(kwargs, field) -> None:
    with pytest.raises(ValueError, match=field) as exc:
        ModelCache(background_sweep=False, **kwargs)
    assert isinstance(exc.value, ValidationError)
    assert exc.value.field == field


def test_valid_edges_are_accepted() -> None:
    cache = ModelCache(
        max_size=1,
        max_memory_mb=None,
        default_ttl_seconds=None,
        hit_rate_threshold=0.0,
        background_sweep=False,
    )
    assert cache.get_detailed_stats().config.default_ttl_seconds is None
    assert (
        ModelCache(hit_rate_threshold=1, default_ttl_seconds=0, background_sweep=False).hit_rate_threshold
        == 1.0
    )


def test_non_callable_clock_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="clock"):
        ModelCache(clock=42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c: c.get_or_load("a", "not callable"), TypeError, "loader"),
        (lambda c: c.get_or_load("a", object, size_bytes=-1), ValueError, "size_bytes"),
        (lambda c: c.get_or_load("a", object, size_bytes=1.5), ValueError, "size_bytes"),
        (lambda c: c.get_or_load("a", object, ttl_seconds=-3), ValueError, "ttl_seconds"),
        (lambda c: c.get_or_load("", object), ValueError, "name"),
        (lambda c: c.get_or_load(None, object), ValueError, "name"),
        (lambda c: c.put("a", object(), size_bytes=-10), ValueError, "size_bytes"),
        (lambda c: c.put("a", object(), ttl_seconds="soon"), ValueError, "ttl_seconds"),
        (lambda c: c.put(3, object()), ValueError, "name"),
        (lambda c: c.get(""), ValueError, "name"),
        (lambda c: c.export_stats("xml"), ValueError, "format"),
        (lambda c: c.add_listener("nope"), TypeError, "listener"),
        (lambda c: c.prewarm({"a": 5}), TypeError, "loader"),
        (lambda c: c.prewarm(["a"], max_workers=0), ValueError, "max_workers"),
        (lambda c: c.prewarm(["a"], timeout_seconds=-1), ValueError, "timeout_seconds"),
        (lambda c: c.prewarm(["a"], on_progress=3), TypeError, "on_progress"),
        (lambda c: c.prewarm(42), TypeError, "models"),
        (lambda c: c.unpin("a", ttl_seconds=-1), ValueError, "ttl_seconds"),
    ],
)
def test_bad_call_arguments(make_cache, call, error, match) -> None:
    cache = make_cache()
    with pytest.raises(error, match=match):
        call(cache)
    assert cache.get_stats().cache_size == 0
