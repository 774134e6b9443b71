"""Prometheus metrics for one app: a private ``CollectorRegistry`` per :class:`ApiMetrics`.

Direct instruments (updated where things happen):

- ``aisp_http_requests_total{method,route,status}`` and
  ``aisp_http_request_duration_seconds{method,route}``: per route *template* (``/api/streams/{id}``),
  so the label set stays bounded;
- ``aisp_inference_seconds{model,origin}``: model time per frame, from the frames route
  (``origin="api"``) and from the stream results (``origin="stream"``).

Live values (read at scrape time by :class:`_LiveCollector`, nothing to keep in sync): readiness,
uptime, per-stream FPS, drops and latency quantiles, the model cache's metrics
(:class:`aisp.cache.CacheCollector`); the events: ``aisp_zone_objects{stream,zone,label}``,
``aisp_line_crossings_total{stream,line,label,direction}``, ``aisp_stream_events_total{stream,type}``,
the event bus's ``aisp_event_deliveries_total{subscriber,outcome}`` and
``aisp_event_snapshots_total{outcome}`` (zone and line labels are bounded: at most 32 per zone or
line, ``aisp.pipeline.zones.MAX_LABEL_KEYS``, the rest as ``other``); and delivery accounting per
target (``mqtt``, ``webhook:<id>``): ``aisp_delivery_events_total{target,outcome}`` (delivered,
dropped, failed), ``aisp_delivery_accepted_total``, ``aisp_delivery_retries_total``,
``aisp_delivery_pending``, ``aisp_delivery_latency_ms{quantile}``, ``aisp_mqtt_connected``.

With a Ray cluster (``AISP_RAY_ADDRESS``), per node, labelled ``node`` (Ray's node id, as in
``GET /api/cluster``): ``aisp_cluster_node_alive``, ``aisp_cluster_node_resource{node,resource}``
(only ``CLUSTER_RESOURCES``), ``aisp_cluster_node_streams`` and ``aisp_cluster_node_tasks``, and
``aisp_cluster_nodes{state}``; with cluster streams, ``aisp_cluster_events_relayed_total`` and
``aisp_cluster_events_relay_errors_total`` (the event relay, ``aisp.cluster.event_relay``). The
label set is bounded: at most ``MAX_CLUSTER_NODES`` nodes (the alive ones first; Ray keeps listing
dead nodes, which would otherwise grow without end).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from aisp.cache import CacheCollector

if TYPE_CHECKING:  # the runtime pulls numpy and the pipeline; it is built after the app
    from aisp.runtime import Runtime


class LiveSource(Protocol):
    """What the collector reads at scrape time (the app's context)."""

    runtime: Runtime | None

    def is_ready(self) -> bool: ...

    def uptime_s(self) -> float: ...

    @property
    def pixel_budget(self) -> Any: ...  # aisp.api.pixel_budget.PixelBudget | None

__all__ = ["ApiMetrics", "CLUSTER_RESOURCES", "CONTENT_TYPE_LATEST", "LiveSource", "MAX_CLUSTER_NODES"]

#: the node resources exported (custom resources beyond these would be unbounded label values)
CLUSTER_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory", "stream_slot")
#: nodes given their own label values; the rest are only counted in ``aisp_cluster_nodes``
MAX_CLUSTER_NODES = 64

log = logging.getLogger("aisp.api")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "aisp_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "aisp_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "aisp_inference_seconds",
            "Model inference time per frame.",
            ["model", "origin"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._live: _LiveCollector | None = None

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_inference(self, model: str, ms: float, origin: str = "api") -> None:
        self.inference.labels(model, origin).observe(ms / 1000.0)

    def bind(self, ctx: LiveSource) -> None:
        """Read live values from ``ctx`` (an :class:`~aisp.api.context.LiveSource`) at scrape time."""
        if self._live is None:
            self._live = _LiveCollector(lambda: ctx)
            self.registry.register(self._live)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector:
    def __init__(self, get_ctx: Callable[[], LiveSource]) -> None:
        self._get_ctx = get_ctx

    def describe(self) -> list[Metric]:
        return []  # values are dynamic; skip the registry's duplicate check

    def collect(self) -> Iterator[Metric]:
        ctx = self._get_ctx()
        try:
            yield from self._lifecycle(ctx)
            yield from self._streams(ctx)
            yield from self._events(ctx)
            yield from self._cache(ctx)
            yield from self._delivery(ctx)
            yield from self._budget(ctx)
            yield from self._cluster(ctx)
        except Exception:  # a scrape must never fail the whole endpoint
            log.exception("metrics collection failed")

    @staticmethod
    def _lifecycle(ctx: LiveSource) -> Iterator[Metric]:
        ready = GaugeMetricFamily("aisp_ready", "1 when the store is open and prewarm is done.")
        ready.add_metric([], 1.0 if ctx.is_ready() else 0.0)
        yield ready
        up = GaugeMetricFamily("aisp_uptime_seconds", "Seconds since the app started.")
        up.add_metric([], ctx.uptime_s())
        yield up

    @staticmethod
    def _streams(ctx: LiveSource) -> Iterator[Metric]:
        views = ctx.runtime.streams() if ctx.runtime is not None else []
        labels = ["stream"]
        in_fps = GaugeMetricFamily(
            "aisp_stream_input_fps", "Frames per second read from the source.", labels=labels
        )
        out_fps = GaugeMetricFamily(
            "aisp_stream_processed_fps", "Frames per second processed.", labels=labels
        )
        dropped = CounterMetricFamily("aisp_stream_dropped_frames", "Frames dropped.", labels=labels)
        frames_in = CounterMetricFamily("aisp_stream_frames_in", "Frames read.", labels=labels)
        frames_out = CounterMetricFamily("aisp_stream_frames_out", "Frames delivered.", labels=labels)
        latency = GaugeMetricFamily(
            "aisp_stream_latency_ms", "Capture-to-sink latency quantiles.", labels=["stream", "quantile"]
        )
        running = GaugeMetricFamily("aisp_stream_running", "1 when the stream is running.", labels=labels)
        for view in views:
            sid, stats = view.id, view.stats
            in_fps.add_metric([sid], stats.input_fps)
            out_fps.add_metric([sid], stats.processed_fps)
            dropped.add_metric([sid], stats.dropped)
            frames_in.add_metric([sid], stats.frames_in)
            frames_out.add_metric([sid], stats.frames_out)
            for q, value in (("0.5", stats.latency_ms.p50), ("0.95", stats.latency_ms.p95),
                             ("0.99", stats.latency_ms.p99)):
                latency.add_metric([sid, q], value)
            running.add_metric([sid], 1.0 if view.state == "running" else 0.0)
        yield from (in_fps, out_fps, dropped, frames_in, frames_out, latency, running)

    @staticmethod
    def _events(ctx: LiveSource) -> Iterator[Metric]:
        runtime = ctx.runtime
        views = runtime.streams() if runtime is not None else []
        zone = GaugeMetricFamily("aisp_zone_objects", "Tracked objects inside a zone now.",
                                 labels=["stream", "zone", "label"])
        line = CounterMetricFamily("aisp_line_crossings", "Line crossings by direction.",
                                   labels=["stream", "line", "label", "direction"])
        events = CounterMetricFamily("aisp_stream_events", "Events produced by tracking, zones and lines.",
                                     labels=["stream", "type"])
        for view in views:
            a = view.analytics
            for name, z in (a.get("zones") or {}).items():
                for label, n in z["labels"].items():
                    zone.add_metric([view.id, name, label], n)
            for name, ln in (a.get("lines") or {}).items():
                for label, per in ln["labels"].items():
                    for direction in ("in", "out"):
                        line.add_metric([view.id, name, label, direction], per[direction])
            for kind, n in (a.get("events") or {}).items():
                events.add_metric([view.id, kind], n)
        bus = CounterMetricFamily("aisp_event_deliveries", "Events handed to each bus subscriber.",
                                  labels=["subscriber", "outcome"])
        for sub in runtime.events.stats() if runtime is not None else []:
            bus.add_metric([sub.name, "delivered"], sub.delivered)
            bus.add_metric([sub.name, "dropped"], sub.dropped)
            bus.add_metric([sub.name, "failed"], sub.failed)
        snaps = CounterMetricFamily("aisp_event_snapshots", "Event snapshots written, skipped (queue full) "
                                    "or failed.", labels=["outcome"])
        if runtime is not None and runtime.snapshots is not None:
            st = runtime.snapshots.stats()
            for outcome, n in (("written", st.written), ("skipped", st.skipped), ("failed", st.failed)):
                snaps.add_metric([outcome], n)
        yield from (zone, line, events, bus, snaps)

    @staticmethod
    def _delivery(ctx: LiveSource) -> Iterator[Metric]:
        """Events out (``aisp.delivery``): one label set per target, once delivery is started."""
        service = getattr(ctx, "delivery", None)
        if service is None:
            return
        labels = ["target"]
        outcomes = CounterMetricFamily(
            "aisp_delivery_events", "Events settled per delivery target, by outcome.",
            labels=["target", "outcome"],
        )
        accepted = CounterMetricFamily("aisp_delivery_accepted", "Events taken on per target.", labels=labels)
        retries = CounterMetricFamily("aisp_delivery_retries", "Delivery retry attempts.", labels=labels)
        pending = GaugeMetricFamily("aisp_delivery_pending", "Events not settled yet.", labels=labels)
        latency = GaugeMetricFamily(
            "aisp_delivery_latency_ms", "Event-to-confirmation latency quantiles.",
            labels=["target", "quantile"],
        )
        for snap in service.ledgers():
            for outcome in ("delivered", "dropped", "failed"):
                outcomes.add_metric([snap.target, outcome], getattr(snap, outcome))
            accepted.add_metric([snap.target], snap.accepted)
            retries.add_metric([snap.target], snap.retried)
            pending.add_metric([snap.target], snap.pending)
            for q, value in (("0.5", snap.latency_ms_p50), ("0.99", snap.latency_ms_p99)):
                if value is not None:
                    latency.add_metric([snap.target, q], value)
        yield from (outcomes, accepted, retries, pending, latency)
        if service.mqtt is not None:
            connected = GaugeMetricFamily("aisp_mqtt_connected", "1 while connected to the MQTT broker.")
            connected.add_metric([], 1.0 if service.mqtt.connected else 0.0)
            yield connected

    @staticmethod
    def _budget(ctx: LiveSource) -> Iterator[Metric]:
        """The frames route's megapixel budget (``api/pixel_budget.py``)."""
        budget = getattr(ctx, "pixel_budget", None)
        if budget is None:
            return
        stats = budget.stats()
        for name, doc, value in (
            ("aisp_frames_pixels_in_flight", "Pixels of images being decoded or processed.", stats.in_use),
            ("aisp_frames_pixels_budget", "The megapixel budget, in pixels.", stats.capacity),
            ("aisp_frames_budget_waiting", "Requests waiting for the megapixel budget.", stats.waiting),
        ):
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], float(value))
            yield gauge
        for name, doc, value in (
            ("aisp_frames_budget_timeouts", "503s after waiting for the budget.", stats.timeouts),
            ("aisp_frames_budget_refused", "413s: images larger than the budget.", stats.refused),
        ):
            counter = CounterMetricFamily(name, doc)
            counter.add_metric([], float(value))
            yield counter

    @staticmethod
    def _cluster(ctx: LiveSource) -> Iterator[Metric]:
        """Per-node figures of the Ray cluster (``ctx.cluster.describe()``), once it is connected."""
        port = getattr(ctx, "cluster", None)
        if port is None or getattr(ctx, "components", {}).get("cluster") != "done":
            return
        body = port.describe()
        nodes = sorted(body.get("nodes") or [], key=lambda n: not n.get("alive"))
        relay = body.get("events") or {}
        for name, doc, key in (
            ("aisp_cluster_events_relayed", "Stream actors' events published to this API's consumers.",
             "relayed"),
            ("aisp_cluster_events_relay_errors", "Failed reads of the store by the event relay.", "errors"),
        ):
            if key in relay:
                counter = CounterMetricFamily(name, doc)
                counter.add_metric([], float(relay[key]))
                yield counter
        count = GaugeMetricFamily("aisp_cluster_nodes", "Ray nodes by state.", labels=["state"])
        alive_n = sum(1 for n in nodes if n.get("alive"))
        count.add_metric(["alive"], alive_n)
        count.add_metric(["dead"], len(nodes) - alive_n)
        alive = GaugeMetricFamily("aisp_cluster_node_alive", "1 while the node is alive.", labels=["node"])
        resource = GaugeMetricFamily("aisp_cluster_node_resource", "Ray resources of the node.",
                                     labels=["node", "resource"])
        streams = GaugeMetricFamily("aisp_cluster_node_streams", "Streams running on the node.",
                                    labels=["node"])
        tasks = GaugeMetricFamily("aisp_cluster_node_tasks", "Tasks with work on the node.", labels=["node"])
        for n in nodes[:MAX_CLUSTER_NODES]:
            node = str(n.get("node_id"))
            alive.add_metric([node], 1.0 if n.get("alive") else 0.0)
            res = n.get("resources") or {}
            for name in CLUSTER_RESOURCES:
                if name in res:
                    resource.add_metric([node, name], float(res[name]))
            streams.add_metric([node], float(len(n.get("streams") or [])))
            tasks.add_metric([node], float(len(n.get("tasks") or [])))
        yield from (count, alive, resource, streams, tasks)

    @staticmethod
    def _cache(ctx: LiveSource) -> Iterator[Metric]:
        """The cache area's own collector (``aisp.cache.CacheCollector``), once the runtime exists."""
        if ctx.runtime is not None:
            yield from CacheCollector(ctx.runtime.cache).collect()
