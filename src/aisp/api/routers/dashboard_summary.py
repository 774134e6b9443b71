"""The dashboard's live summary: one JSON object per second over ``/ws/live``.

:func:`build_summary` reads the app context (settings, model cache, stream engine, store) and
returns a plain dict in the shape the page renders, so the page needs one socket, not five
polled routes. It is synchronous (the store query blocks) and runs in a worker thread.
A part that is not there yet (the runtime still being built, the store still opening) is reported
empty, never as an error: the page shows what exists. It reads the typed snapshots
(``CacheReport``, ``StreamStats``) and the runtime's one :class:`~aisp.runtime.SystemView`.

Shape (every field always present)::

    {"type": "summary", "time": epoch_s,
     "system": {version, uptime_s, ready, pending, components, warm, warmed_models,
                cpu_percent, rss_mb, threads},
     "alerts": [{level: "warning"|"error", source, message}],
     "cache": {hit_rate, recent_hit_rate, hits, misses, size, max_size, memory_mb, max_memory_mb,
               models: [{name, instances, hits, misses, load_ms, size_bytes, ttl_left_s, pinned}]},
     "streams": [{id, source, models, priority, state, last_error, input_fps, processed_fps,
                  dropped, latency_p99_ms, frames_out}],
     "tasks": [{id, source, models, state, progress, frames_done, frames_total, fps, eta_s,
                error, created_at, downloads: {events, video}}],
     "cluster": null without Ray (the page hides its Cluster section), else
                {state, nodes: [{node_id, address, alive, is_head, resources, streams, tasks}],
                 frames: {path, replicas} | null}  (GET /api/cluster's body plus the step's state)}
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from aisp import __version__
from aisp.api.context import AppContext
from aisp.api.reasons import public_reason
from aisp.api.stream_manager import StreamManager
from aisp.api.task_runner import task_view
from aisp.cache import CacheReport, ModelStats
from aisp.netpolicy import redact_text, redact_url

__all__ = ["build_summary", "SharedSummary", "TASKS_SHOWN"]

log = logging.getLogger("aisp.api")

#: Newest tasks sent to the page.
TASKS_SHOWN = 50


def _system(ctx: AppContext) -> dict[str, Any]:
    runtime = ctx.runtime
    warm = runtime.system.warm() if runtime is not None else None
    proc = runtime.system.process() if runtime is not None else None
    return {
        "version": __version__,
        "uptime_s": round(ctx.uptime_s(), 1),
        "ready": ctx.is_ready(),
        "pending": ctx.pending(),
        "components": dict(ctx.components),
        "warm": warm.warm if warm is not None else not ctx.settings.prewarm,
        "warmed_models": sorted(warm.warmed_models) if warm is not None else [],
        "cpu_percent": proc.cpu_percent if proc is not None else None,
        "rss_mb": proc.rss_mb if proc is not None else None,
        "threads": proc.threads if proc is not None else None,
    }


_NO_CACHE: dict[str, Any] = {"hit_rate": None, "recent_hit_rate": None, "hits": 0, "misses": 0, "size": 0,
                             "max_size": None, "memory_mb": 0.0, "max_memory_mb": None, "models": []}


def _cache_summary(report: CacheReport) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    basic = report.basic
    out = {
        "hit_rate": basic.hits / basic.requests if basic.requests else None,
        "recent_hit_rate": basic.recent_hit_rate_percent / 100.0 if basic.recent_window else None,
        "hits": basic.hits,
        "misses": basic.misses,
        "size": basic.cache_size,
        "max_size": basic.max_size,
        "memory_mb": round(basic.memory_usage_bytes / 2**20, 1),
        "max_memory_mb": None if basic.max_memory_bytes is None else round(basic.max_memory_bytes / 2**20, 1),
        "models": _per_model(report.models.values()),
    }
    alerts: list[dict[str, Any]] = []
    if basic.alert_active and report.alerts:
        last = report.alerts[-1]
        alerts.append({"level": "warning", "source": "cache",
                       "message": f"hit rate {last.hit_rate * 100:.1f}% over the last {last.window} requests "
                                  f"is below {last.threshold * 100:.0f}%"})
    return out, alerts


def _per_model(models: Iterable[ModelStats]) -> list[dict[str, Any]]:
    """Cached models grouped by registry name (``face_detection#0`` and ``#1`` are one row)."""
    grouped: dict[str, dict[str, Any]] = {}
    for m in models:
        if not m.cached:
            continue
        g = grouped.setdefault(m.key.name, {"name": m.key.name, "instances": 0, "hits": 0, "misses": 0,
                                            "load_ms": None, "size_bytes": 0, "ttl_left_s": None,
                                            "pinned": False})
        g["instances"] += 1
        g["hits"] += m.hits
        g["misses"] += m.misses
        if m.load_ms_last is not None:
            g["load_ms"] = max(g["load_ms"] or 0.0, m.load_ms_last)
        g["size_bytes"] += m.size_bytes or 0
        if m.ttl_left_seconds is not None:
            g["ttl_left_s"] = m.ttl_left_seconds if g["ttl_left_s"] is None else min(g["ttl_left_s"],
                                                                                    m.ttl_left_seconds)
        g["pinned"] = g["pinned"] or m.pinned
    return sorted(grouped.values(), key=lambda g: g["name"])


def _streams(ctx: AppContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if ctx.engine is None:
        return [], []
    out: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for spec, stream in StreamManager.of(ctx).entries():
        stats = stream.stats.snapshot()
        state = stream.state
        error = redact_text(str(stream.last_error)) if stream.last_error else None
        sid = stream.spec.id
        out.append({
            "id": sid,
            "source": redact_url(str(spec.get("source"))),
            "models": list(spec.get("models") or []),
            "priority": spec.get("priority") or 0,
            "state": state,
            "last_error": error,
            "input_fps": stats.input_fps,
            "processed_fps": stats.processed_fps,
            "dropped": stats.dropped,
            "latency_p99_ms": stats.latency_ms.p99,
            "frames_out": stats.frames_out,
        })
        if state == "failed":
            alerts.append({"level": "error", "source": f"stream {sid}",
                           "message": f"failed: {error or 'no error recorded'}"})
        elif state == "reconnecting":
            alerts.append({"level": "warning", "source": f"stream {sid}",
                           "message": f"reconnecting: {error or 'source lost'}"})
    out.sort(key=lambda s: (-int(s["priority"]), s["id"]))
    return out, alerts


def _tasks(ctx: AppContext) -> list[dict[str, Any]]:
    store = ctx.store
    if store is None:
        return []
    runner = ctx.tasks
    out = []
    for rec in store.tasks.list(limit=TASKS_SHOWN):  # newest first
        view = task_view(rec, runner.task_dir(rec.id) if runner is not None else None)
        downloads = view.get("downloads") or {}
        done = rec.state == "completed"  # partial outputs of a running task are not offered
        out.append({
            "id": rec.id,
            "source": redact_url(rec.source),
            "models": list(rec.models),
            "state": rec.state,
            "progress": rec.progress,
            "frames_done": rec.frames_done,
            "frames_total": rec.frames_total,
            "fps": rec.fps,
            "eta_s": view.get("eta_s"),
            "error": None if rec.error is None else redact_text(rec.error),
            "created_at": rec.created_at,
            "downloads": {k: (downloads.get(k) if done else None) for k in ("events", "video")},
        })
    return out


def _cluster(ctx: AppContext) -> dict[str, Any] | None:
    """The cluster part: None on one machine; the nodes once the "cluster" step is done."""
    port = ctx.cluster
    if port is None:
        return None
    state = ctx.components.get("cluster", "pending")
    if state != "done":
        return {"state": state, "nodes": [], "frames": None}
    return {"state": state, **port.describe()}


def build_summary(ctx: AppContext) -> dict[str, Any]:
    alerts: list[dict[str, Any]] = []
    # one summary is shared by every open page, viewers' too: a failed component's type only, never
    # its text (a database host, a URL); an admin reads the text in /api/status (aisp.api.reasons)
    for name, error in dict(ctx.errors).items():
        alerts.append({"level": "error", "source": name, "message": public_reason(error)})
    for name, error in dict(ctx.prewarm_failed).items():
        alerts.append({"level": "error", "source": f"prewarm {name}", "message": error})
    if ctx.runtime is not None:
        cache_part, cache_alerts = _cache_summary(ctx.runtime.cache.get_detailed_stats())
    else:
        cache_part, cache_alerts = dict(_NO_CACHE), []
    streams, stream_alerts = _streams(ctx)
    try:
        tasks = _tasks(ctx)
    except Exception as exc:  # noqa: BLE001 - the store may be briefly away; say so, keep going
        log.debug("task list failed", exc_info=True)
        tasks = []
        alerts.append({"level": "warning", "source": "store",
                       "message": f"task list unavailable: {type(exc).__name__}"})
    try:
        cluster = _cluster(ctx)
    except Exception as exc:  # noqa: BLE001 - Ray may be briefly away; say so, keep going
        log.debug("cluster description failed", exc_info=True)
        cluster = {"state": "failed", "nodes": [], "frames": None}
        alerts.append({"level": "warning", "source": "cluster",
                       "message": f"node list unavailable: {type(exc).__name__}"})
    return {
        "type": "summary",
        "time": time.time(),
        "system": _system(ctx),
        "alerts": alerts + cache_alerts + stream_alerts,
        "cache": cache_part,
        "streams": streams,
        "tasks": tasks,
        "cluster": cluster,
    }


class SharedSummary:
    """One summary per ``max_age_s`` for all open dashboards of an app, not one per tab.

    The first caller after the summary went stale builds it (under the lock, so concurrent
    callers wait for that one build rather than starting their own).
    """

    def __init__(self, ctx: AppContext, *, max_age_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ctx = ctx
        self._max_age = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._built_at = float("-inf")

    def get(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            if self._value is None or now - self._built_at >= self._max_age:
                self._value = build_summary(self._ctx)
                self._built_at = now
            return self._value
