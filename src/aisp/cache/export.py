"""Export cache statistics as JSON, CSV or Prometheus text, and a ``prometheus_client`` collector.

Everything here reads a :class:`~aisp.cache.stats.CacheReport` from a
:class:`~aisp.cache.stats.StatsSource` (the cache's ``get_detailed_stats``), never the cache.

* ``json``: the report's ``to_dict()``, indented.
* ``csv``: one row per model key known to the cache (:data:`CSV_COLUMNS`).
* ``prometheus``: the text exposition format, produced by :class:`CacheCollector` through
  ``prometheus_client.generate_latest``, so the text and a ``/metrics`` endpoint that registers the
  collector always agree. Totals are counters (``aisp_cache_hits_total``), levels are gauges
  (``aisp_cache_memory_bytes``), per-model series carry a ``model`` label (the key's text).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from aisp.cache.stats import CacheStats, ModelStats, StatsSource
from aisp.errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover - prometheus_client is imported when collecting
    from prometheus_client.metrics_core import Metric

__all__ = ["CacheCollector", "CSV_COLUMNS", "FORMATS", "export_stats"]

FORMATS = ("json", "csv", "prometheus")

CSV_COLUMNS = (
    "name cached pinned hits misses requests loads load_failures revived load_ms_last load_ms_mean "
    "load_ms_max "
    "size_bytes size_source last_access idle_seconds ttl_seconds ttl_left_seconds priority loading"
).split()


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


# (metric, value, help) — counters are exposed as <metric>_total
_COUNTERS: tuple[tuple[str, Callable[[CacheStats], float], str], ...] = (
    ("aisp_cache_hits", lambda s: s.hits, "Cache hits (revived models included)."),
    ("aisp_cache_misses", lambda s: s.misses, "Cache misses."),
    ("aisp_cache_evictions", lambda s: s.evictions, "Models evicted for count or memory."),
    ("aisp_cache_expirations", lambda s: s.expirations, "Models expired by TTL."),
    ("aisp_cache_invalidations", lambda s: s.invalidations, "Models removed by invalidate, clear or close."),
    ("aisp_cache_loads", lambda s: s.loads, "Loader runs that succeeded."),
    ("aisp_cache_load_failures", lambda s: s.load_failures, "Loader runs that failed."),
    ("aisp_cache_revived", lambda s: s.revived, "Evicted models revived because a caller still held them."),
    (
        "aisp_cache_coalesced_waits",
        lambda s: s.coalesced_waits,
        "Requests that waited on another thread's load.",
    ),
    ("aisp_cache_alerts", lambda s: s.alerts, "Low hit-rate alerts fired."),
    ("aisp_cache_load_seconds", lambda s: s.total_load_time_ms / 1000.0, "Seconds spent in loaders."),
)
_GAUGES: tuple[tuple[str, Callable[[CacheStats], float], str], ...] = (
    ("aisp_cache_memory_bytes", lambda s: s.memory_usage_bytes, "Bytes of the cached models."),
    ("aisp_cache_size", lambda s: s.cache_size, "Cached models."),
    ("aisp_cache_max_size", lambda s: s.max_size, "Most models the cache holds."),
    ("aisp_cache_loading", lambda s: s.loading, "Loads in progress."),
    ("aisp_cache_pinned", lambda s: s.pinned, "Pinned models."),
    ("aisp_cache_alert_active", lambda s: s.alert_active, "1 while the hit rate is below the threshold."),
)
_MODEL_COUNTERS: tuple[tuple[str, Callable[[ModelStats], float], str], ...] = (
    ("aisp_cache_model_hits", lambda m: m.hits, "Hits per model."),
    ("aisp_cache_model_misses", lambda m: m.misses, "Misses per model."),
    ("aisp_cache_model_loads", lambda m: m.loads, "Loads per model."),
    ("aisp_cache_model_load_failures", lambda m: m.load_failures, "Failed loads per model."),
)
# a value of None (never loaded, not cached, no TTL) is left out of the family
_MODEL_GAUGES: tuple[tuple[str, Callable[[ModelStats], float | None], str], ...] = (
    ("aisp_cache_model_cached", lambda m: m.cached, "1 when the model is cached."),
    ("aisp_cache_model_pinned", lambda m: m.pinned, "1 when the model is pinned."),
    ("aisp_cache_model_size_bytes", lambda m: m.size_bytes, "Bytes of the cached model."),
    ("aisp_cache_model_load_seconds_last", lambda m: _seconds(m.load_ms_last), "Duration of the last load."),
    ("aisp_cache_model_load_seconds_mean", lambda m: _seconds(m.load_ms_mean), "Mean load duration."),
    ("aisp_cache_model_ttl_left_seconds", lambda m: m.ttl_left_seconds, "Seconds until the model expires."),
)


class CacheCollector:
    """A ``prometheus_client`` collector: ``REGISTRY.register(CacheCollector(cache))``."""

    def __init__(self, cache: StatsSource, *, per_model: bool = True) -> None:
        self.cache = cache
        self.per_model = per_model

    def describe(self) -> list[Metric]:
        return []  # names are only known at collect time; registration must not collect

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        report = self.cache.get_detailed_stats()
        stats = report.basic
        for metric, counter, doc in _COUNTERS:
            yield CounterMetricFamily(metric, doc, value=float(counter(stats)))
        for metric, gauge, doc in _GAUGES:
            yield GaugeMetricFamily(metric, doc, value=float(gauge(stats)))
        if stats.max_memory_bytes is not None:
            budget = float(stats.max_memory_bytes)
            yield GaugeMetricFamily("aisp_cache_max_memory_bytes", "Memory budget of the cache.", budget)
        yield GaugeMetricFamily(
            "aisp_cache_hit_rate",
            "Hit rate over the recent window (0..1).",
            value=stats.recent_hit_rate_percent / 100.0,
        )
        yield GaugeMetricFamily(
            "aisp_cache_warmed_up",
            "1 when every prewarm-requested model has loaded.",
            value=1.0 if report.prewarm.is_warmed_up else 0.0,
        )
        if not self.per_model:
            return
        models = report.models.values()
        for metric, counter, doc in _MODEL_COUNTERS:
            fam = CounterMetricFamily(metric, doc, labels=["model"])
            for m in models:
                fam.add_metric([str(m.key)], float(counter(m)))
            yield fam
        for metric, gauge, doc in _MODEL_GAUGES:
            fam = GaugeMetricFamily(metric, doc, labels=["model"])
            for m in models:
                value = gauge(m)
                if value is not None:
                    fam.add_metric([str(m.key)], float(value))
            yield fam


def _to_csv(source: StatsSource) -> str:
    models = source.get_detailed_stats().models
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for stats in models.values():
        writer.writerow({k: ("" if v is None else v) for k, v in stats.to_dict().items()})
    return out.getvalue()


def _to_prometheus(source: StatsSource) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(CacheCollector(source))  # type: ignore[arg-type]
    return generate_latest(registry).decode("utf-8")


def _json_default(value: object) -> object:
    if isinstance(value, float) and math.isinf(value):
        return None
    return str(value)


def export_stats(
    source: StatsSource, format: str = "json", path: str | os.PathLike[str] | None = None  # noqa: A002
) -> str:
    """The statistics in ``format``; also written to ``path`` when given."""
    fmt = format.lower() if isinstance(format, str) else format
    if fmt == "json":
        text = json.dumps(source.get_detailed_stats().to_dict(), indent=2, default=_json_default) + "\n"
    elif fmt == "csv":
        text = _to_csv(source)
    elif fmt == "prometheus":
        text = _to_prometheus(source)
    else:
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
