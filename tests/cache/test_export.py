"""Statistics snapshots and their JSON, CSV and Prometheus exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aisp.cache import CacheCollector, CacheReport, CacheStats, ModelKey, ModelStats
from aisp.cache.stats import STAT_KEYS
from tests.cache.helpers import Plain


@pytest.fixture
def busy_cache(make_cache, clock):
    cache = make_cache(max_size=2, default_ttl_seconds=60)

    def loader():
        clock.advance(0.5)
        return Plain(size_bytes=2048)

    cache.get_or_load('face "detection"', loader)  # a label value that needs escaping
    cache.get_or_load("pose", loader)
    cache.get("pose")
    cache.get("missing")
    cache.get_or_load("third", loader)  # evicts the face model
    return cache


def test_basic_stats_keys_and_values(busy_cache) -> None:
    stats = busy_cache.get_stats()
    assert isinstance(stats, CacheStats)
    assert list(stats.to_dict()) == STAT_KEYS
    assert stats.hits == 1 and stats.misses == 4 and stats.loads == 3
    assert stats.evictions == 1 and stats.cache_size == 2
    assert stats.memory_usage_bytes == 4096
    assert stats.total_load_time_ms == pytest.approx(1500.0)


def test_detailed_stats_shape(busy_cache) -> None:
    report = busy_cache.get_detailed_stats()
    assert isinstance(report, CacheReport) and report.basic == busy_cache.get_stats()  # same fake clock
    assert all(isinstance(m, ModelStats) for m in report.models.values())
    assert report.models[ModelKey("pose")].hits == 1
    detailed = report.to_dict()
    assert set(detailed) == {"basic_stats", "models", "prewarm", "alerts", "config"}
    assert detailed["basic_stats"] == busy_cache.get_stats().to_dict() | {
        "uptime_seconds": detailed["basic_stats"]["uptime_seconds"]
    }
    assert detailed["models"]["pose"]["hits"] == 1
    assert detailed["models"]['face "detection"']["cached"] is False
    assert detailed["models"]["missing"]["misses"] == 1
    assert detailed["config"]["max_size"] == 2 and detailed["config"]["default_ttl_seconds"] == 60
    assert detailed["prewarm"]["is_warmed_up"] is True


def test_json_export_round_trips(busy_cache, tmp_path) -> None:
    path = tmp_path / "stats.json"
    text = busy_cache.export_stats("json", path=path)
    data = json.loads(text)
    assert data["basic_stats"]["loads"] == 3
    assert json.loads(path.read_text()) == data


def test_csv_export_has_one_row_per_model(busy_cache, tmp_path) -> None:
    text = busy_cache.export_stats("CSV", path=tmp_path / "m.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["name"] for r in rows) == sorted(['face "detection"', "pose", "missing", "third"])
    pose = next(r for r in rows if r["name"] == "pose")
    assert pose["hits"] == "1" and pose["cached"] == "True" and pose["load_ms_last"] == "500.0"
    assert (tmp_path / "m.csv").read_text() == text


def test_prometheus_export_parses(busy_cache) -> None:
    text = busy_cache.export_stats("prometheus")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # the parser strips the _total suffix from counter family names
    assert families["aisp_cache_hits"].type == "counter"
    samples = {s.name: s.value for f in families.values() for s in f.samples if not s.labels}
    assert samples["aisp_cache_hits_total"] == 1
    assert samples["aisp_cache_misses_total"] == 4
    assert samples["aisp_cache_evictions_total"] == 1
    assert samples["aisp_cache_memory_bytes"] == 4096
    assert samples["aisp_cache_load_seconds_total"] == pytest.approx(1.5)
    per_model = {
        (s.name, s.labels["model"]): s.value
        for f in families.values()
        for s in f.samples
        if "model" in s.labels
    }
    assert per_model[("aisp_cache_model_hits_total", "pose")] == 1
    assert per_model[("aisp_cache_model_cached", 'face "detection"')] == 0
    assert per_model[("aisp_cache_model_size_bytes", "pose")] == 2048
    assert per_model[("aisp_cache_model_load_seconds_last", "pose")] == pytest.approx(0.5)


def test_collector_registers_in_a_registry(busy_cache) -> None:
    registry = CollectorRegistry()  # auto_describe, like the default REGISTRY
    registry.register(CacheCollector(busy_cache))
    assert registry.get_sample_value("aisp_cache_hits_total") == 1
    busy_cache.get("pose")
    assert registry.get_sample_value("aisp_cache_hits_total") == 2  # live values at each scrape
    assert b"aisp_cache_model_hits_total" in generate_latest(registry)
    no_models = CollectorRegistry()
    no_models.register(CacheCollector(busy_cache, per_model=False))
    assert b"aisp_cache_model_" not in generate_latest(no_models)
