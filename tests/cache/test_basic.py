"""Basic get / put / get_or_load behaviour and per-model statistics."""

from __future__ import annotations

import pytest

from aisp.errors import NotFoundError
from tests.cache.helpers import Model


def test_get_or_load_loads_once_then_hits(make_cache) -> None:
    cache = make_cache(max_size=3)
    calls = []

    def loader():
        calls.append(1)
        return Model("a")

    first = cache.get_or_load("a", loader)
    second = cache.get_or_load("a", loader)
    assert first is second
    assert len(calls) == 1
    stats = cache.get_stats()
    assert (stats.hits, stats.misses, stats.loads) == (1, 1, 1)
    assert stats.hit_rate_percent == 50.0


def test_get_counts_hits_and_misses(make_cache) -> None:
    cache = make_cache()
    assert cache.get("nothing") is None
    m = Model()
    cache.put("m", m)
    assert cache.get("m") is m
    stats = cache.get_stats()
    assert stats.hits == 1 and stats.misses == 1 and stats.puts == 1 and stats.loads == 0


def test_contains_and_names_do_not_count(make_cache) -> None:
    cache = make_cache()
    cache.put("a", Model())
    cache.put("b", Model())
    assert cache.contains("a") and "a" in cache and not cache.contains("zzz")
    assert cache.names() == ["a", "b"]
    cache.get("a")
    assert cache.names() == ["b", "a"]  # least recently used first
    assert len(cache) == 2
    stats = cache.get_stats()
    assert stats.hits == 1 and stats.misses == 0


def test_put_replaces_and_closes_the_old_model(make_cache) -> None:
    cache = make_cache()
    closed: list[str] = []
    cache.put("m", Model("old", log=closed))
    new = Model("new", log=closed)
    cache.put("m", new)
    assert cache.get("m") is new
    assert closed == ["old"]  # nobody held the old one: closed at once
    stats = cache.get_stats()
    assert stats.cache_size == 1 and stats.evictions == 0  # a replacement is not an eviction


def test_put_same_object_twice_keeps_one_entry(make_cache) -> None:
    cache = make_cache()
    m = Model(size_bytes=10)
    cache.put("m", m)
    cache.put("m", m, size_bytes=30)
    assert cache.get_stats().memory_usage_bytes == 30
    assert m.closed == 0 and cache.get_stats().retired_models == 0


def test_info_reports_per_model_statistics(make_cache, clock) -> None:
    cache = make_cache(default_ttl_seconds=100)

    def loader():
        clock.advance(0.25)  # a load that takes 250 ms on the cache clock
        return Model(size_bytes=1234)

    cache.get_or_load("a", loader)
    clock.advance(10)
    cache.get("a")
    clock.advance(5)
    info = cache.info("a")
    assert info.hits == 1 and info.misses == 1 and info.loads == 1
    assert info.load_ms_last == pytest.approx(250.0)
    assert info.load_ms_mean == pytest.approx(250.0) and info.load_ms_max == pytest.approx(250.0)
    assert info.size_bytes == 1234 and info.size_source == "attribute"
    assert info.idle_seconds == pytest.approx(5.0)
    assert info.ttl_seconds == 100 and info.ttl_left_seconds == pytest.approx(95.0)
    assert info.cached is True and info.loading is False


def test_info_survives_eviction_and_unknown_name_is_not_found(make_cache) -> None:
    cache = make_cache(max_size=1)
    cache.get_or_load("a", Model)
    cache.get_or_load("b", Model)
    info = cache.info("a")
    assert info.cached is False and info.loads == 1 and info.size_bytes is None
    with pytest.raises(NotFoundError) as exc:
        cache.info("never")
    assert exc.value.details["key"] == "never"


def test_load_time_statistics_over_several_loads(make_cache, clock) -> None:
    cache = make_cache()
    for cost in (0.1, 0.3):
        cache.invalidate("a")

        def loader(cost=cost):
            clock.advance(cost)
            return Model()

        cache.get_or_load("a", loader)
    info = cache.info("a")
    assert info.loads == 2
    assert info.load_ms_last == pytest.approx(300.0)
    assert info.load_ms_mean == pytest.approx(200.0)
    assert info.load_ms_max == pytest.approx(300.0)
    assert cache.get_stats().total_load_time_ms == pytest.approx(400.0)


def test_invalidate_and_clear(make_cache) -> None:
    cache = make_cache()
    a, b = Model("a"), Model("b")
    cache.put("a", a)
    cache.put("b", b)
    cache.pin("b")
    assert cache.invalidate("a") is True
    assert cache.invalidate("a") is False
    assert cache.clear() == 1  # pinned models are cleared too
    assert cache.names() == []
    stats = cache.get_stats()
    assert stats.invalidations == 2 and stats.memory_usage_bytes == 0


def test_repr_mentions_size_and_policy(make_cache) -> None:
    cache = make_cache(eviction_policy="cost")
    assert "cost" in repr(cache) and "0/8" in repr(cache)
