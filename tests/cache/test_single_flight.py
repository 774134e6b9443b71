"""Single-flight loads: one loader run for N callers, errors shared, other models never blocked."""

from __future__ import annotations

import threading

import pytest

from tests.cache.helpers import Plain

N = 16


def _run_threads(target, n: int = N) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def test_concurrent_callers_share_one_load(make_cache) -> None:
    cache = make_cache()
    calls = []
    release = threading.Event()
    started = threading.Event()
    barrier = threading.Barrier(N + 1)
    results = []

    def loader():
        calls.append(1)
        started.set()
        assert release.wait(10)
        return Plain()

    def caller():
        barrier.wait(10)
        results.append(cache.get_or_load("cold", loader))

    threads = _run_threads(caller)
    barrier.wait(10)
    assert started.wait(10)
    # every caller is now either the loader or waiting on it; let the load finish
    release.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert len(results) == N and all(r is results[0] for r in results)
    stats = cache.get_stats()
    assert stats.loads == 1 and stats.misses + stats.hits == N


def test_waiters_are_counted_as_coalesced(make_cache) -> None:
    cache = make_cache()
    release = threading.Event()
    in_loader = threading.Event()
    waiting = threading.Event()

    def loader():
        in_loader.set()
        assert release.wait(10)
        return Plain()

    cache.add_listener(lambda e: waiting.set() if e.type == "miss" and e.data.get("coalesced") else None)
    owner = threading.Thread(target=cache.get_or_load, args=("m", loader), daemon=True)
    owner.start()
    assert in_loader.wait(10)
    waiter = threading.Thread(target=cache.get_or_load, args=("m", loader), daemon=True)
    waiter.start()
    assert waiting.wait(10)  # the second caller is parked on the flight, not loading
    release.set()
    owner.join(10)
    waiter.join(10)
    stats = cache.get_stats()
    assert stats.coalesced_waits == 1 and stats.loads == 1


def test_other_models_are_not_blocked_while_one_loads(make_cache) -> None:
    cache = make_cache()
    release = threading.Event()
    in_loader = threading.Event()

    def slow_loader():
        in_loader.set()
        assert release.wait(10)
        return Plain()

    t = threading.Thread(target=cache.get_or_load, args=("slow", slow_loader), daemon=True)
    t.start()
    assert in_loader.wait(10)
    try:
        # with the slow load still in progress, other models load, hit and report stats
        fast = cache.get_or_load("fast", Plain)
        assert cache.get("fast") is fast
        assert cache.get("slow") is None  # a get never waits for a load in flight
        assert cache.info("slow").loading is True
        assert cache.get_stats().loading == 1
        cache.put("other", Plain())
        assert set(cache.names()) == {"fast", "other"}
    finally:
        release.set()
        t.join(10)
    assert cache.contains("slow")


def test_a_failing_load_reaches_every_waiter_and_caches_nothing(make_cache) -> None:
    cache = make_cache()
    release = threading.Event()
    barrier = threading.Barrier(N + 1)
    calls = []
    errors = []

    def loader():
        calls.append(1)
        assert release.wait(10)
        raise OSError("model file is corrupt")

    def caller():
        barrier.wait(10)
        try:
            cache.get_or_load("bad", loader)
        except OSError as exc:
            errors.append(exc)

    misses = []
    all_registered = threading.Event()

    def on_event(event) -> None:
        if event.type == "miss":
            misses.append(1)
            if len(misses) == N:
                all_registered.set()

    cache.add_listener(on_event)
    threads = _run_threads(caller)
    barrier.wait(10)
    assert all_registered.wait(10)  # one caller loading, the others parked on its flight
    release.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert len(errors) == N and all("corrupt" in str(e) for e in errors)
    assert not cache.contains("bad")
    stats = cache.get_stats()
    assert stats.load_failures == 1 and stats.loads == 0
    assert cache.info("bad").load_failures == 1
    # the next call tries again
    model = cache.get_or_load("bad", Plain)
    assert cache.get("bad") is model
    assert cache.get_stats().loads == 1


def test_failure_is_logged_and_announced(make_cache, caplog) -> None:
    cache = make_cache()
    events = []
    cache.add_listener(events.append)

    def loader():
        raise ValueError("no such weights")

    with pytest.raises(ValueError, match="no such weights"):
        cache.get_or_load("x", loader)
    assert "loading model x failed" in caplog.text
    failed = [e for e in events if e.type == "load_failed"]
    assert failed and "no such weights" in failed[0].data["error"]


def test_recursive_load_of_the_same_name_is_an_error(make_cache) -> None:
    cache = make_cache()

    def loader():
        return cache.get_or_load("self", loader)

    with pytest.raises(RuntimeError, match="again"):
        cache.get_or_load("self", loader)
    assert cache.get_stats().loading == 0  # the flight was cleaned up


def test_loader_may_load_another_model(make_cache) -> None:
    cache = make_cache()

    def outer():
        return ("outer", cache.get_or_load("inner", Plain))

    result = cache.get_or_load("outer", outer)
    assert result[0] == "outer" and cache.contains("inner")


def test_invalidate_during_load_delivers_but_does_not_cache(make_cache) -> None:
    cache = make_cache()
    release = threading.Event()
    in_loader = threading.Event()
    out = []

    def loader():
        in_loader.set()
        assert release.wait(10)
        return Plain()

    t = threading.Thread(target=lambda: out.append(cache.get_or_load("m", loader)), daemon=True)
    t.start()
    assert in_loader.wait(10)
    cache.invalidate("m")
    release.set()
    t.join(10)
    assert out and out[0] is not None
    assert not cache.contains("m")


def test_stress_mixed_operations_keep_invariants(make_cache) -> None:
    cache = make_cache(max_size=3, max_memory_mb=1)
    barrier = threading.Barrier(8)
    errors = []

    def worker(seed: int) -> None:
        barrier.wait(10)
        try:
            for i in range(300):
                name = f"m{(seed * 7 + i) % 6}"
                cache.get_or_load(name, lambda: Plain(size_bytes=200_000))
                if i % 17 == 0:
                    cache.invalidate(name)
                if i % 29 == 0:
                    cache.get_stats()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    stats = cache.get_stats()
    assert stats.cache_size <= 3
    assert stats.memory_usage_bytes == 200_000 * stats.cache_size
    assert stats.requests == 8 * 300 and stats.loading == 0


@pytest.mark.slow
def test_soak_many_threads_with_ttl_pins_and_failures(make_cache, clock) -> None:
    """16 threads, mixed operations, a moving clock and failing loaders; invariants hold throughout."""
    cache = make_cache(max_size=4, max_memory_mb=2, default_ttl_seconds=5, eviction_policy="cost")
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def loader(i: int):
        def load():
            if i % 11 == 0:
                raise OSError("flaky")
            return Plain(size_bytes=300_000)

        return load

    def worker(seed: int) -> None:
        barrier.wait(10)
        try:
            for i in range(1500):
                name = f"m{(seed * 13 + i) % 9}"
                try:
                    cache.get_or_load(name, loader(i))
                except OSError:
                    pass
                if i % 50 == 0:
                    clock.advance(1.0)
                    cache.sweep()
                if i % 97 == 0 and cache.contains(name):
                    try:
                        cache.pin(name)
                    except Exception:
                        pass
                    cache.unpin(name)
                stats = cache.get_stats() if i % 200 == 0 else None
                if stats is not None:
                    assert stats.cache_size <= 4
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    stats = cache.get_stats()
    assert stats.requests == 16 * 1500 and stats.loading == 0
    assert stats.memory_usage_bytes == 300_000 * stats.cache_size <= 2 * 1024 * 1024
