"""Eviction by count and memory through one path, pinning, oversize models, close() and revival."""

from __future__ import annotations

import gc

import pytest

from aisp.errors import NotFoundError, OverloadedError, ValidationError
from tests.cache.helpers import Model, Plain

MB = 1024 * 1024


def test_count_bound_evicts_least_recently_used(make_cache) -> None:
    cache = make_cache(max_size=2)
    events = []
    cache.add_listener(lambda e: events.append((e.type, e.name, e.data.get("reason"))))
    cache.put("a", Plain())
    cache.put("b", Plain())
    cache.get("a")  # b is now the least recently used
    cache.put("c", Plain())
    assert cache.names() == ["a", "c"]
    assert ("evict", "b", "capacity") in events
    assert cache.get_stats().evictions == 1


def test_memory_bound_evicts_until_it_fits(make_cache) -> None:
    cache = make_cache(max_size=10, max_memory_mb=1)
    cache.put("a", Plain(), size_bytes=400_000)
    cache.put("b", Plain(), size_bytes=400_000)
    cache.put("c", Plain(), size_bytes=900_000)  # needs both a and b gone
    assert cache.names() == ["c"]
    stats = cache.get_stats()
    assert stats.memory_usage_bytes == 900_000 and stats.evictions == 2
    assert stats.memory_usage_bytes <= stats.max_memory_bytes


def test_model_larger_than_the_budget_is_an_error(make_cache) -> None:
    cache = make_cache(max_memory_mb=1)
    cache.put("small", Plain(), size_bytes=10)
    with pytest.raises(ValidationError, match="size_bytes|budget") as exc:
        cache.put("huge", Plain(), size_bytes=2 * MB)
    assert exc.value.field == "size_bytes"
    assert cache.names() == ["small"]  # nothing was evicted for a model that can never fit


def test_oversize_loaded_model_fails_the_load_and_is_closed(make_cache) -> None:
    cache = make_cache(max_memory_mb=1)
    closed: list[str] = []
    with pytest.raises(ValidationError):
        cache.get_or_load("huge", lambda: Model("huge", size_bytes=5 * MB, log=closed))
    assert closed == ["huge"]
    assert not cache.contains("huge")
    assert cache.get_stats().load_failures == 1


def test_pinned_models_are_never_evicted(make_cache) -> None:
    cache = make_cache(max_size=2)
    cache.put("a", Plain())
    cache.pin("a")
    cache.put("b", Plain())
    cache.get("b")
    cache.put("c", Plain())
    cache.put("d", Plain())
    assert "a" in cache.names() and len(cache) == 2
    assert cache.get_stats().pinned == 1
    assert cache.unpin("a") is True
    assert cache.unpin("a") is False
    cache.put("e", Plain())
    assert "a" not in cache.names()


def test_cache_full_of_pinned_models_refuses_a_new_one(make_cache) -> None:
    cache = make_cache(max_size=2)
    for name in ("a", "b"):
        cache.put(name, Plain())
        cache.pin(name)
    with pytest.raises(OverloadedError, match="pinned"):
        cache.put("c", Plain())
    assert sorted(cache.names()) == ["a", "b"]


def test_pin_unknown_model_is_not_found(make_cache) -> None:
    cache = make_cache()
    with pytest.raises(NotFoundError):
        cache.pin("ghost")


def test_replacing_a_pinned_model_keeps_it_pinned(make_cache) -> None:
    cache = make_cache(max_size=1)
    cache.put("a", Plain())
    cache.pin("a")
    cache.put("a", Plain())
    assert cache.info("a").pinned is True


def test_evicted_model_is_closed_at_once_when_nobody_holds_it(make_cache) -> None:
    cache = make_cache(max_size=1)
    closed: list[str] = []
    cache.get_or_load("a", lambda: Model("a", log=closed))
    cache.get_or_load("b", lambda: Model("b", log=closed))
    assert closed == ["a"]
    assert cache.get_stats().closed_models == 1


def test_evicted_model_is_closed_once_its_holder_lets_go(make_cache) -> None:
    cache = make_cache(max_size=1, enable_weak_ref=False)
    closed: list[str] = []
    held = cache.get_or_load("a", lambda: Model("a", log=closed))
    cache.get_or_load("b", lambda: Model("b", log=closed))
    cache.sweep()
    assert closed == []  # still in use by the caller
    del held
    cache.sweep()
    assert closed == ["a"]
    cache.sweep()
    assert closed == ["a"]  # exactly once


def test_release_is_used_when_there_is_no_close(make_cache) -> None:
    released = []

    class Releasable:
        size_bytes = 1

        def release(self) -> None:
            released.append(True)

    cache = make_cache(max_size=1)
    cache.put("a", Releasable())
    cache.put("b", Releasable())
    assert released == [True]


def test_close_errors_are_logged_not_raised(make_cache, caplog) -> None:
    class Broken:
        size_bytes = 1

        def close(self) -> None:
            raise RuntimeError("boom")

    cache = make_cache(max_size=1)
    cache.put("a", Broken())
    cache.put("b", Broken())  # must not raise
    assert "closing evicted model a failed" in caplog.text


def test_weak_ref_revives_an_evicted_model_still_held(make_cache) -> None:
    cache = make_cache(max_size=1)
    loads = []

    def loader():
        loads.append(1)
        return Plain()

    held = cache.get_or_load("a", loader)
    cache.put("b", Plain())
    assert not cache.contains("a")
    again = cache.get_or_load("a", loader)
    assert again is held and len(loads) == 1
    stats = cache.get_stats()
    assert stats.revived == 1 and stats.loads == 1
    assert cache.info("a").revived == 1


def test_weak_ref_revival_of_a_closeable_model_via_get(make_cache) -> None:
    cache = make_cache(max_size=1)
    closed: list[str] = []
    held = Model("a", log=closed)
    cache.put("a", held)
    cache.put("b", Model("b", log=closed))
    assert cache.get("a") is held  # revived, counted as a hit
    assert closed == ["b"]  # b was evicted to make room for the revived a; nobody held b
    assert cache.get_stats().hits == 1


def test_no_revival_once_the_model_is_gone(make_cache) -> None:
    cache = make_cache(max_size=1)
    cache.put("a", Plain())
    cache.put("b", Plain())
    gc.collect()
    assert cache.get("a") is None
    assert cache.get_stats().revived == 0


def test_no_revival_when_weak_refs_are_off(make_cache) -> None:
    cache = make_cache(max_size=1, enable_weak_ref=False)
    held = cache.get_or_load("a", Plain)
    cache.put("b", Plain())
    assert cache.get_or_load("a", Plain) is not held
    assert cache.get_stats().loads == 2


def test_same_object_under_two_names_is_closed_once(make_cache) -> None:
    cache = make_cache(max_size=2)
    closed: list[str] = []
    shared = Model("shared", log=closed)
    cache.put("x", shared)
    cache.put("y", shared)
    del shared
    cache.clear()
    assert closed == ["shared"]


def test_close_closes_even_held_models(make_cache) -> None:
    cache = make_cache(max_size=1)
    closed: list[str] = []
    held = cache.get_or_load("a", lambda: Model("a", log=closed))
    cache.put("b", Model("b", log=closed))
    cache.close()
    assert sorted(closed) == ["a", "b"]
    assert held.closed == 1


def test_a_revived_pinned_model_comes_back_unpinned_with_the_default_ttl(make_cache, clock) -> None:
    cache = make_cache(max_size=1, default_ttl_seconds=10)
    held = cache.get_or_load("a", Plain)
    cache.pin("a")
    cache.invalidate("a")
    assert cache.get("a") is held  # revived
    info = cache.info("a")
    assert info.pinned is False and info.ttl_seconds == 10


def test_an_empty_cache_is_truthy(make_cache) -> None:
    cache = make_cache()
    assert len(cache) == 0 and bool(cache) is True


def test_background_sweeper_closes_a_model_once_released() -> None:
    import threading

    from aisp.cache import ModelCache

    closed = threading.Event()

    class Closeable:
        size_bytes = 1

        def close(self) -> None:
            closed.set()

    cache = ModelCache(max_size=1, default_ttl_seconds=None, enable_weak_ref=False)
    try:
        held = cache.get_or_load("a", Closeable)
        cache.put("b", Plain())
        assert not closed.is_set()
        del held  # nobody holds it now; the sweeper's periodic check closes it
        assert closed.wait(10), "the released model was never closed"
    finally:
        cache.close()
