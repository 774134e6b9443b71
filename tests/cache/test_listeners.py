"""Listeners get every event type, after the lock is released; a failing listener is harmless."""

from __future__ import annotations

import pytest

from aisp.cache import EVENT_TYPES
from tests.cache.helpers import Plain


def test_event_sequence(make_cache, clock) -> None:
    cache = make_cache(max_size=1, default_ttl_seconds=10)
    seen = []
    cache.add_listener(lambda e: seen.append((e.type, e.name)))
    cache.get_or_load("a", Plain)
    cache.get("a")
    cache.put("b", Plain())
    clock.advance(11)
    cache.sweep()
    with pytest.raises(KeyError):
        cache.get_or_load("c", lambda: {}["x"])
    assert seen == [
        ("miss", "a"),
        ("load", "a"),
        ("hit", "a"),
        ("evict", "a"),
        ("put", "b"),
        ("expire", "b"),
        ("miss", "c"),
        ("load_failed", "c"),
    ]
    assert {t for t, _ in seen} <= set(EVENT_TYPES)


def test_listener_may_call_back_into_the_cache(make_cache) -> None:
    cache = make_cache()
    stats = []
    cache.add_listener(lambda e: stats.append(cache.get_stats().hits))
    cache.put("a", Plain())
    cache.get("a")
    assert stats[-1] == 1


def test_failing_listener_is_logged_and_others_still_run(make_cache, caplog) -> None:
    cache = make_cache()
    got = []

    def bad(event):
        raise RuntimeError("listener bug")

    cache.add_listener(bad)
    cache.add_listener(got.append)
    cache.put("a", Plain())
    assert cache.get("a") is not None
    assert [e.type for e in got] == ["put", "hit"]
    assert "listener" in caplog.text


def test_remove_listener(make_cache) -> None:
    cache = make_cache()
    got = []
    cache.add_listener(got.append)
    assert cache.remove_listener(got.append) is True
    assert cache.remove_listener(got.append) is False
    cache.put("a", Plain())
    assert got == []


def test_event_to_dict_has_no_model(make_cache) -> None:
    cache = make_cache()
    got = []
    cache.add_listener(got.append)
    cache.get_or_load("a", lambda: Plain(size_bytes=5))
    load = next(e for e in got if e.type == "load")
    d = load.to_dict()
    assert d["type"] == "load" and d["name"] == "a" and d["data"]["size_bytes"] == 5
