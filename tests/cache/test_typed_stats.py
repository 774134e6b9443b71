"""Typed statistics: frozen dataclasses whose ``to_dict()`` is exactly the JSON the API always gave.

The expected dictionaries below were produced by the dict-returning cache this one replaced, on
the same scenario and fake clock: key names, key order and values must not change.
"""

from __future__ import annotations

import dataclasses

import pytest

from aisp.cache import CacheConfig, CacheReport, CacheStats, ModelCache, ModelKey, ModelStats, PrewarmState
from aisp.cache.stats import STAT_KEYS
from aisp.errors import ValidationError
from aisp.settings import load_settings
from tests.cache.helpers import Plain

EXPECTED_STATS = {
    "hits": 1,
    "misses": 2,
    "requests": 3,
    "hit_rate_percent": 33.33,
    "recent_hit_rate_percent": 33.33,
    "recent_window": 3,
    "cache_size": 2,
    "max_size": 2,
    "memory_usage_bytes": 2148,
    "max_memory_bytes": 1048576,
    "memory_usage_percent": 0.2,
    "evictions": 0,
    "expirations": 0,
    "invalidations": 0,
    "loads": 1,
    "load_failures": 0,
    "total_load_time_ms": 250.0,
    "revived": 0,
    "coalesced_waits": 0,
    "puts": 1,
    "closed_models": 0,
    "retired_models": 0,
    "loading": 0,
    "pinned": 0,
    "alerts": 1,
    "alert_active": True,
    "eviction_policy": "lru",
    "uptime_seconds": 2.25,
}

EXPECTED_INFO = {
    "name": "pose#w1",
    "cached": True,
    "pinned": False,
    "hits": 1,
    "misses": 1,
    "requests": 2,
    "loads": 1,
    "load_failures": 0,
    "revived": 0,
    "load_ms_last": 250.0,
    "load_ms_mean": 250.0,
    "load_ms_max": 250.0,
    "size_bytes": 2048,
    "size_source": "attribute",
    "last_access": 1000.25,
    "idle_seconds": 2.0,
    "ttl_seconds": 60.0,
    "ttl_left_seconds": 58.0,
    "priority": 0.0,
    "loading": False,
}

EXPECTED_CONFIG = {
    "max_size": 2,
    "max_memory_mb": 1,
    "default_ttl_seconds": 60.0,
    "enable_weak_ref": True,
    "hit_rate_threshold": 0.5,
    "hit_rate_window": 4,
    "hit_rate_min_requests": 2,
    "alert_cooldown_seconds": 0.0,
    "eviction_policy": "lru",
}


@pytest.fixture
def scenario(make_cache, clock) -> ModelCache:
    cache = make_cache(
        max_size=2,
        max_memory_mb=1,
        default_ttl_seconds=60,
        hit_rate_window=4,
        hit_rate_min_requests=2,
        alert_cooldown_seconds=0,
    )

    def loader():
        clock.advance(0.25)
        return Plain(size_bytes=2048)

    cache.get_or_load("pose#w1", loader)
    cache.get(ModelKey("pose", "w1"))
    cache.get("nope")
    cache.put("seg", Plain(size_bytes=100), ttl_seconds=0)
    clock.advance(2)
    return cache


def test_cache_stats_to_dict_is_the_old_json(scenario) -> None:
    stats = scenario.get_stats()
    assert isinstance(stats, CacheStats)
    assert stats.to_dict() == EXPECTED_STATS
    assert list(stats.to_dict()) == list(EXPECTED_STATS) == STAT_KEYS  # the order is pinned too
    assert stats.hits == 1 and stats.alert_active is True and stats.max_memory_bytes == 1048576


def test_model_stats_to_dict_is_the_old_json(scenario) -> None:
    info = scenario.info("pose#w1")
    assert isinstance(info, ModelStats)
    assert info.to_dict() == EXPECTED_INFO and list(info.to_dict()) == list(EXPECTED_INFO)
    assert info.key == ModelKey("pose", "w1") and info.name == "pose#w1"
    assert info.load_ms_last == 250.0  # one name for the last load time
    assert scenario.info(ModelKey("pose", "w1")) == info


def test_report_to_dict_is_the_old_json(scenario) -> None:
    report = scenario.get_detailed_stats()
    assert isinstance(report, CacheReport) and isinstance(report.prewarm, PrewarmState)
    assert list(report.models) == [ModelKey("nope"), ModelKey("pose", "w1"), ModelKey("seg")]
    assert report.config == scenario.config and isinstance(report.config, CacheConfig)
    data = report.to_dict()
    assert list(data) == ["basic_stats", "models", "prewarm", "alerts", "config"]
    assert data["basic_stats"] == EXPECTED_STATS
    assert list(data["models"]) == ["nope", "pose#w1", "seg"]
    assert data["models"]["pose#w1"] == EXPECTED_INFO
    assert data["models"]["seg"]["ttl_seconds"] is None and data["models"]["nope"]["size_bytes"] is None
    assert data["prewarm"] == {
        "requested": [],
        "warmed": [],
        "pending": [],
        "is_warmed_up": True,
        "last_report": None,
    }
    assert data["alerts"] == [
        {"state": "firing", "hit_rate_percent": 33.33, "threshold_percent": 50.0, "window": 3, "at": 1000.25}
    ]
    assert data["config"] == EXPECTED_CONFIG


def test_snapshots_are_frozen(scenario) -> None:
    report = scenario.get_detailed_stats()
    for snapshot in (report, report.basic, report.models[ModelKey("seg")], report.prewarm, report.config):
        field = dataclasses.fields(snapshot)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(snapshot, field, None)


def test_config_validates_and_normalises() -> None:
    config = CacheConfig(default_ttl_seconds=0, hit_rate_threshold=1, alert_cooldown_seconds=5)
    assert config.default_ttl_seconds is None and config.idle_ttl == float("inf")
    assert config.hit_rate_threshold == 1.0 and config.alert_cooldown_seconds == 5.0
    assert CacheConfig(max_memory_mb=None).max_memory_bytes == float("inf")
    with pytest.raises(ValidationError, match="max_size") as exc:
        CacheConfig(max_size=0)
    assert exc.value.field == "max_size"


def test_from_settings_needs_settings_and_takes_overrides(tmp_path, clock) -> None:
    settings = load_settings(
        environ={
            "AISP_CACHE_MAX_SIZE": "3",
            "AISP_CACHE_EVICTION_POLICY": "cost",
            "AISP_CACHE_TTL_SECONDS": "0",
        },
        data_dir=tmp_path,
    )
    cache = ModelCache.from_settings(settings, clock=clock, background_sweep=False, max_size=5)
    try:
        assert cache.config == dataclasses.replace(CacheConfig.from_settings(settings), max_size=5)
        assert cache.eviction_policy == "cost" and cache.config.default_ttl_seconds is None
    finally:
        cache.close()
    with pytest.raises(TypeError, match="Settings"):
        ModelCache.from_settings(None)  # type: ignore[arg-type]
