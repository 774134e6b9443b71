"""The process-wide cache: configured from settings, one instance, reset for tests."""

from __future__ import annotations

import threading

import aisp
import aisp.cache as cache_mod
from aisp.cache import ModelCache, get_model_cache, prewarm_from_settings, reset_model_cache
from aisp.settings import load_settings, set_settings
from tests.cache.helpers import Model, Plain


def test_configured_from_settings(tmp_path) -> None:
    set_settings(
        load_settings(
            environ={
                "AISP_CACHE_MAX_SIZE": "4",
                "AISP_CACHE_MAX_MEMORY_MB": "256",
                "AISP_CACHE_TTL_SECONDS": "0",
                "AISP_CACHE_EVICTION_POLICY": "cost",
                "AISP_CACHE_WEAK_REF": "false",
                "AISP_CACHE_HIT_RATE_THRESHOLD": "0.7",
                "AISP_CACHE_HIT_RATE_WINDOW": "50",
                "AISP_CACHE_HIT_RATE_MIN_REQUESTS": "10",
            },
            data_dir=tmp_path,
        )
    )
    config = get_model_cache().get_detailed_stats()["config"]
    assert config == {
        "max_size": 4,
        "max_memory_mb": 256.0,
        "default_ttl_seconds": None,
        "enable_weak_ref": False,
        "hit_rate_threshold": 0.7,
        "hit_rate_window": 50,
        "hit_rate_min_requests": 10,
        "alert_cooldown_seconds": 300.0,
        "eviction_policy": "cost",
    }


def test_one_instance_across_threads(settings) -> None:
    barrier = threading.Barrier(8)
    seen = []

    def grab():
        barrier.wait(10)
        seen.append(get_model_cache())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(seen) == 8 and all(c is seen[0] for c in seen)
    assert aisp.get_model_cache() is seen[0] and aisp.ModelCache is ModelCache


def test_reset_closes_and_drops_the_instance(settings) -> None:
    closed: list[str] = []
    first = get_model_cache()
    first.put("m", Model("m", log=closed))
    reset_model_cache()
    assert closed == ["m"]
    assert get_model_cache() is not first


def test_reset_without_an_instance_is_a_no_op() -> None:
    assert cache_mod._global._cache is None
    reset_model_cache()
    reset_model_cache()
    assert cache_mod._global._cache is None


def test_prewarm_from_settings(tmp_path) -> None:
    s = load_settings(environ={"AISP_PREWARM": "one,two"}, data_dir=tmp_path)
    prev_resolver = cache_mod.get_name_resolver()
    cache = ModelCache(background_sweep=False)
    try:
        cache_mod.set_name_resolver(lambda name: Plain)
        handle = prewarm_from_settings(cache, s)  # background by default
        report = handle.result(10)
        assert report.requested == ["one", "two"] and report.ok
        assert cache.get_warmed_models() == ["one", "two"]
    finally:
        cache_mod.set_name_resolver(prev_resolver)
        cache.close()


def test_prewarm_from_settings_uses_the_global_cache(tmp_path) -> None:
    prev = cache_mod.get_name_resolver()
    cache_mod.set_name_resolver(lambda name: Plain)
    try:
        s = load_settings(environ={"AISP_PREWARM": "alpha"}, data_dir=tmp_path)
        set_settings(s)
        report = prewarm_from_settings(background=False)
        assert report.ok and get_model_cache().contains("alpha")
    finally:
        cache_mod.set_name_resolver(prev)
