"""Export cache statistics as JSON, CSV or Prometheus text, and a ``prometheus_client`` collector.

* ``json``: :meth:`ModelCache.get_detailed_stats`, indented.
* ``csv``: one row per model known to the cache (:data:`CSV_COLUMNS`).
* ``prometheus``: the text exposition format, produced by :class:`CacheCollector` through
  ``prometheus_client.generate_latest``, so the text and a ``/metrics`` endpoint that registers the
  collector always agree. Totals are counters (``aisp_cache_hits_total``), levels are gauges
  (``aisp_cache_memory_bytes``), per-model series carry a ``model`` label.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from aisp.cache.model_cache import ModelCache

__all__ = ["CacheCollector", "CSV_COLUMNS", "FORMATS", "export_stats"]

FORMATS = ("json", "csv", "prometheus")

CSV_COLUMNS = (
    "name cached pinned hits misses requests loads load_failures revived load_ms_last load_ms_mean "
    "load_ms_max "
    "size_bytes size_source last_access idle_seconds ttl_seconds ttl_left_seconds priority loading"
).split()

# (metric, stats key, help) — counters are exposed as <metric>_total
_COUNTERS = (
    ("aisp_cache_hits", "hits", "Cache hits (revived models included)."),
    ("aisp_cache_misses", "misses", "Cache misses."),
    ("aisp_cache_evictions", "evictions", "Models evicted for count or memory."),
    ("aisp_cache_expirations", "expirations", "Models expired by TTL."),
    ("aisp_cache_invalidations", "invalidations", "Models removed by invalidate, clear or close."),
    ("aisp_cache_loads", "loads", "Loader runs that succeeded."),
    ("aisp_cache_load_failures", "load_failures", "Loader runs that failed."),
    ("aisp_cache_revived", "revived", "Evicted models revived because a caller still held them."),
    ("aisp_cache_coalesced_waits", "coalesced_waits", "Requests that waited on another thread's load."),
    ("aisp_cache_alerts", "alerts", "Low hit-rate alerts fired."),
)
_GAUGES = (
    ("aisp_cache_memory_bytes", "memory_usage_bytes", "Bytes of the cached models."),
    ("aisp_cache_size", "cache_size", "Cached models."),
    ("aisp_cache_max_size", "max_size", "Most models the cache holds."),
    ("aisp_cache_loading", "loading", "Loads in progress."),
    ("aisp_cache_pinned", "pinned", "Pinned models."),
    ("aisp_cache_alert_active", "alert_active", "1 while the hit rate is below the threshold."),
)
_MODEL_COUNTERS = (
    ("aisp_cache_model_hits", "hits", "Hits per model."),
    ("aisp_cache_model_misses", "misses", "Misses per model."),
    ("aisp_cache_model_loads", "loads", "Loads per model."),
    ("aisp_cache_model_load_failures", "load_failures", "Failed loads per model."),
)
_MODEL_GAUGES = (
    ("aisp_cache_model_cached", "cached", "1 when the model is cached."),
    ("aisp_cache_model_pinned", "pinned", "1 when the model is pinned."),
    ("aisp_cache_model_size_bytes", "size_bytes", "Bytes of the cached model."),
    ("aisp_cache_model_load_seconds_last", "load_ms_last", "Duration of the last load."),
    ("aisp_cache_model_load_seconds_mean", "load_ms_mean", "Mean load duration."),
    ("aisp_cache_model_ttl_left_seconds", "ttl_left_seconds", "Seconds until the model expires."),
)


class CacheCollector:
    """A ``prometheus_client`` collector: ``REGISTRY.register(CacheCollector(cache))``."""

    def __init__(self, cache: ModelCache, *, per_model: bool = True) -> None:
        self.cache = cache
        self.per_model = per_model

    def describe(self) -> list[Any]:
        return []  # names are only known at collect time; registration must not collect

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        detailed = self.cache.get_detailed_stats()
        stats = detailed["basic_stats"]
        for metric, key, doc in _COUNTERS:
            yield CounterMetricFamily(metric, doc, value=float(stats[key]))
        yield CounterMetricFamily(
            "aisp_cache_load_seconds", "Seconds spent in loaders.", value=stats["total_load_time_ms"] / 1000.0
        )
        for metric, key, doc in _GAUGES:
            yield GaugeMetricFamily(metric, doc, value=float(stats[key]))
        if stats["max_memory_bytes"] is not None:
            yield GaugeMetricFamily(
                "aisp_cache_max_memory_bytes",
                "Memory budget of the cache.",
                value=float(stats["max_memory_bytes"]),
            )
        yield GaugeMetricFamily(
            "aisp_cache_hit_rate",
            "Hit rate over the recent window (0..1).",
            value=stats["recent_hit_rate_percent"] / 100.0,
        )
        yield GaugeMetricFamily(
            "aisp_cache_warmed_up",
            "1 when every prewarm-requested model has loaded.",
            value=1.0 if detailed["prewarm"]["is_warmed_up"] else 0.0,
        )
        if not self.per_model:
            return
        models = detailed["models"]
        for metric, key, doc in _MODEL_COUNTERS:
            fam = CounterMetricFamily(metric, doc, labels=["model"])
            for name, info in models.items():
                fam.add_metric([name], float(info[key]))
            yield fam
        for metric, key, doc in _MODEL_GAUGES:
            fam = GaugeMetricFamily(metric, doc, labels=["model"])
            for name, info in models.items():
                value = info[key]
                if value is None:
                    continue
                if key.startswith("load_ms"):
                    value = value / 1000.0
                fam.add_metric([name], float(value))
            yield fam


def _to_csv(cache: ModelCache) -> str:
    models = cache.get_detailed_stats()["models"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for info in models.values():
        writer.writerow({k: ("" if v is None else v) for k, v in info.items()})
    return out.getvalue()


def _to_prometheus(cache: ModelCache) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(CacheCollector(cache))
    return generate_latest(registry).decode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return None
    return str(value)


def export_stats(cache: ModelCache, format: str = "json", path: Any = None) -> str:  # noqa: A002
    """The statistics in ``format``; also written to ``path`` when given."""
    fmt = format.lower() if isinstance(format, str) else format
    if fmt == "json":
        text = json.dumps(cache.get_detailed_stats(), indent=2, default=_json_default) + "\n"
    elif fmt == "csv":
        text = _to_csv(cache)
    elif fmt == "prometheus":
        text = _to_prometheus(cache)
    else:
        from aisp.errors import ValidationError

        raise ValidationError(
            f"format must be one of {', '.join(FORMATS)}, got {format!r}",
            field="format",
            value=format,
            expected=" | ".join(FORMATS),
        )
    if path is not None:
        with open(os.fspath(path), "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    return text
