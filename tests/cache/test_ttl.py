"""TTL: expiry on access, sliding idle TTL, per-call TTL, pinning, explicit and background sweeps."""

from __future__ import annotations

import threading

from aisp.cache import ModelCache
from tests.cache.helpers import FakeClock, Model, Plain


def test_expired_entry_is_a_miss_on_access(make_cache, clock) -> None:
    cache = make_cache(default_ttl_seconds=10)
    cache.put("a", Plain())
    clock.advance(9.9)
    assert cache.get("a") is not None
    clock.advance(10.0)  # idle for 10 s since the last hit
    assert cache.get("a") is None
    assert not cache.contains("a")
    stats = cache.get_stats()
    assert stats.expirations == 1 and stats.misses == 1 and stats.cache_size == 0


def test_access_refreshes_the_idle_ttl(make_cache, clock) -> None:
    cache = make_cache(default_ttl_seconds=10)
    cache.put("a", Plain())
    for _ in range(5):
        clock.advance(8)
        assert cache.get("a") is not None
    assert cache.get_stats().expirations == 0


def test_contains_and_names_hide_expired_entries_without_removing(make_cache, clock) -> None:
    cache = make_cache(default_ttl_seconds=5)
    cache.put("a", Plain())
    clock.advance(5)
    assert not cache.contains("a") and cache.names() == []
    assert cache.get_stats().cache_size == 1  # removed by the next access or sweep
    assert cache.sweep() == 1
    assert cache.get_stats().cache_size == 0


def test_per_call_ttl_overrides_the_default(make_cache, clock) -> None:
    cache = make_cache(default_ttl_seconds=100)
    cache.get_or_load("short", Plain, ttl_seconds=1)
    cache.put("forever", Plain(), ttl_seconds=0)  # 0: never expires
    clock.advance(2)
    assert cache.sweep() == 1
    clock.advance(10**6)
    assert cache.names() == ["forever"]
    assert cache.info("forever").ttl_seconds is None


def test_no_default_ttl_never_expires(make_cache, clock) -> None:
    cache = make_cache(default_ttl_seconds=None)
    cache.put("a", Plain())
    clock.advance(10**9)
    assert cache.sweep() == 0 and cache.get("a") is not None


def test_pinned_models_do_not_expire_until_unpinned(make_cache, clock) -> None:
    cache = make_cache(default_ttl_seconds=10)
    cache.put("a", Plain())
    cache.pin("a")
    clock.advance(1000)
    assert cache.sweep() == 0 and cache.contains("a")
    cache.unpin("a")
    clock.advance(9)
    assert cache.contains("a")
    clock.advance(1)
    assert cache.sweep() == 1


def test_sweep_expires_and_closes_unheld_models(make_cache, clock) -> None:
    cache = make_cache(default_ttl_seconds=10)
    closed: list[str] = []
    events = []
    cache.add_listener(lambda e: events.append((e.type, e.name)))
    cache.put("a", Model("a", log=closed))
    cache.put("b", Model("b", log=closed), ttl_seconds=30)
    clock.advance(10)
    assert cache.sweep() == 1
    assert closed == ["a"] and cache.names() == ["b"]
    assert ("expire", "a") in events
    assert cache.info("a").ttl_left_seconds is None
    assert cache.info("b").ttl_left_seconds == 20


def test_background_sweeper_expires_when_woken_and_stops_on_close() -> None:
    clock = FakeClock()
    cache = ModelCache(default_ttl_seconds=10, clock=clock)
    expired = threading.Event()
    cache.add_listener(lambda e: expired.set() if e.type == "expire" else None)
    cache.put("a", Plain())
    sweeper = cache._sweeper
    assert sweeper is not None and sweeper.alive
    clock.advance(11)
    sweeper.wake()  # what an insertion does; the thread re-reads the clock and sweeps
    assert expired.wait(10), "the sweeper thread did not expire the entry"
    assert cache.names() == []
    cache.close()
    assert not sweeper.alive


def test_sweeper_thread_is_not_started_without_ttl_entries() -> None:
    cache = ModelCache(default_ttl_seconds=None)
    cache.put("a", Plain())
    assert cache._sweeper is None
    cache.close()


def test_abandoned_cache_lets_its_sweeper_end() -> None:
    import gc

    cache = ModelCache(default_ttl_seconds=60)
    cache.put("a", Plain())
    sweeper = cache._sweeper
    del cache
    gc.collect()  # the weak reference's callback wakes and stops the thread
    sweeper._thread.join(10)
    assert not sweeper.alive


def test_close_leaves_no_sweeper_running() -> None:
    cache = ModelCache(default_ttl_seconds=60)
    cache.put("a", Model("a"))  # closeable: retiring it on close must not start a new sweeper
    first = cache._sweeper
    cache.close()
    assert cache._sweeper is None and not first.alive
