"""The default runtime behind ``aisp.load_model()`` and ``aisp.get_model_cache()``."""

from __future__ import annotations

import threading

import aisp
from aisp.cache import ModelCache
from aisp.models import FakeModel
from aisp.runtime import default as default_mod
from aisp.runtime import default_runtime, get_model_cache, load_model, reset_default_runtime
from aisp.settings import load_settings, set_settings


def test_configured_from_the_process_settings(tmp_path) -> None:
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
    config = get_model_cache().get_detailed_stats().to_dict()["config"]
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
    assert default_runtime().store is None  # the convenience runtime has no database


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


def test_load_model_goes_through_the_default_cache(settings) -> None:
    model = load_model("fake")
    assert isinstance(model, FakeModel)
    assert aisp.load_model("fake") is model
    assert [str(k) for k in get_model_cache().keys()] == ["fake"]
    assert load_model("fake", cache=False) is not model


def test_reset_closes_and_drops_the_runtime(settings) -> None:
    first = get_model_cache()
    model = load_model("fake")
    reset_default_runtime()
    assert model.closed
    assert get_model_cache() is not first


def test_reset_without_a_runtime_is_a_no_op() -> None:
    reset_default_runtime()
    assert default_mod._runtime is None
    reset_default_runtime()
    assert default_mod._runtime is None
