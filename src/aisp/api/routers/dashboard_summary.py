"""The dashboard's live summary: one JSON object per second over ``/ws/live``.

:func:`build_summary` reads the app context (settings, model cache, stream engine, store) and
returns a plain dict in the shape the page renders, so the page needs one socket, not five
polled routes. It is synchronous (the store query blocks) and runs in a worker thread.
A part that is not there yet (store still opening, cache never touched) is reported empty,
never as an error: the page shows what exists.

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
                error, created_at, downloads: {events, video}}]}
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from aisp import __version__

__all__ = ["build_summary", "SharedSummary", "TASKS_SHOWN"]

log = logging.getLogger("aisp.api")

#: Newest tasks sent to the page.
TASKS_SHOWN = 50

_proc_lock = threading.Lock()
_proc: Any = None  # one psutil.Process, so cpu_percent() measures since the previous call


def _process_figures() -> dict[str, Any]:
    global _proc
    import psutil

    with _proc_lock:
        first = _proc is None
        if first:
            _proc = psutil.Process()
        with _proc.oneshot():
            cpu = _proc.cpu_percent(interval=None)  # since the previous call; the first only starts it
            return {
                "cpu_percent": None if first else round(cpu, 1),
                "rss_mb": round(_proc.memory_info().rss / (1024 * 1024), 1),
                "threads": _proc.num_threads(),
            }


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _cache() -> Any:
    """The process-wide model cache (created from the settings on first use)."""
    try:
        from aisp.cache import get_model_cache

        return get_model_cache()
    except Exception:  # noqa: BLE001 - the page shows "no cache" rather than failing
        log.debug("model cache unavailable", exc_info=True)
        return None


def _system(ctx: Any, cache: Any) -> dict[str, Any]:
    wanted = list(ctx.settings.prewarm)
    warmed: list[str] = []
    if cache is not None and hasattr(cache, "get_warmed_models"):
        warmed = sorted(cache.get_warmed_models())
    held = set(cache.names()) if cache is not None else set()
    warm = all(n in held or any(k.startswith(f"{n}#") for k in held) for n in wanted)
    return {
        "version": __version__,
        "uptime_s": round(ctx.uptime_s(), 1),
        "ready": ctx.is_ready(),
        "pending": ctx.pending(),
        "components": dict(ctx.components),
        "warm": bool(warm and ctx.components.get("prewarm") in ("done", "skipped")),
        "warmed_models": warmed,
        **_process_figures(),
    }


def _cache_summary(cache: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    empty = {"hit_rate": None, "recent_hit_rate": None, "hits": 0, "misses": 0, "size": 0, "max_size": None,
             "memory_mb": 0.0, "max_memory_mb": None, "models": []}
    if cache is None:
        return empty, []
    stats = cache.get_detailed_stats()
    basic = stats.get("basic_stats") or {}
    hits = int(_num(basic.get("hits")) or 0)
    misses = int(_num(basic.get("misses")) or 0)
    recent_n = int(_num(basic.get("recent_window")) or 0)
    memory_b = _num(basic.get("memory_usage_bytes"))
    max_memory_b = _num(basic.get("max_memory_bytes"))
    out = {
        "hit_rate": hits / (hits + misses) if hits + misses else None,
        "recent_hit_rate": (_num(basic.get("recent_hit_rate_percent")) or 0.0) / 100.0 if recent_n else None,
        "hits": hits,
        "misses": misses,
        "size": int(_num(basic.get("cache_size")) or 0),
        "max_size": _num(basic.get("max_size")),
        "memory_mb": round(memory_b / 2**20, 1) if memory_b is not None else None,
        "max_memory_mb": round(max_memory_b / 2**20, 1) if max_memory_b is not None else None,
        "models": _per_model(stats.get("models")),
    }
    alerts: list[dict[str, Any]] = []
    if basic.get("alert_active"):
        last = (stats.get("alerts") or [{}])[-1]
        rate, threshold = _num(last.get("hit_rate_percent")), _num(last.get("threshold_percent"))
        if rate is not None and threshold is not None:
            message = (f"hit rate {rate:.1f}% over the last {last.get('window')} requests "
                       f"is below {threshold:.0f}%")
        else:
            message = "hit rate below the alert threshold"
        alerts.append({"level": "warning", "source": "cache", "message": message})
    return out, alerts


def _per_model(raw: Any) -> list[dict[str, Any]]:
    """Cached models grouped by registry name (``face_detection#0`` and ``#1`` are one row)."""
    rows = list(raw.values()) if isinstance(raw, dict) else list(raw or [])
    grouped: dict[str, dict[str, Any]] = {}
    for r in rows:
        if not isinstance(r, dict) or not r.get("cached", True):
            continue
        name = str(r.get("name", "?"))
        base = name.split("#", 1)[0]
        g = grouped.setdefault(base, {"name": base, "instances": 0, "hits": 0, "misses": 0, "load_ms": None,
                                      "size_bytes": 0, "ttl_left_s": None, "pinned": False})
        g["instances"] += 1
        g["hits"] += int(_num(r.get("hits")) or 0)
        g["misses"] += int(_num(r.get("misses")) or 0)
        load = _num(r.get("load_ms_last", r.get("load_ms")))
        if load is not None:
            g["load_ms"] = max(g["load_ms"] or 0.0, load)
        g["size_bytes"] += int(_num(r.get("size_bytes")) or 0)
        ttl = _num(r.get("ttl_left_seconds", r.get("ttl_left_s")))
        if ttl is not None:
            g["ttl_left_s"] = ttl if g["ttl_left_s"] is None else min(g["ttl_left_s"], ttl)
        g["pinned"] = g["pinned"] or bool(r.get("pinned"))
    return sorted(grouped.values(), key=lambda g: g["name"])


def _streams(ctx: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if ctx.engine is None:
        return [], []
    from aisp.api.stream_manager import StreamManager

    out: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for d in StreamManager.of(ctx).describe_all():
        stats = d.get("stats") or {}
        lat = stats.get("latency_ms") or {}
        state = str(d.get("state"))
        error = str(d["last_error"]) if d.get("last_error") else None
        sid = str(d.get("id"))
        out.append({
            "id": sid,
            "source": str(d.get("source")),
            "models": list(d.get("models") or []),
            "priority": d.get("priority") or 0,
            "state": state,
            "last_error": error,
            "input_fps": _num(stats.get("input_fps")),
            "processed_fps": _num(stats.get("processed_fps")),
            "dropped": _num(stats.get("dropped")),
            "latency_p99_ms": _num(lat.get("p99")) if isinstance(lat, dict) else None,
            "frames_out": _num(stats.get("frames_out")),
        })
        if state == "failed":
            alerts.append({"level": "error", "source": f"stream {sid}",
                           "message": f"failed: {error or 'no error recorded'}"})
        elif state == "reconnecting":
            alerts.append({"level": "warning", "source": f"stream {sid}",
                           "message": f"reconnecting: {error or 'source lost'}"})
    out.sort(key=lambda s: (-int(s["priority"]), s["id"]))
    return out, alerts


def _tasks(ctx: Any) -> list[dict[str, Any]]:
    store = ctx.store
    if store is None:
        return []
    from aisp.api.task_runner import task_view

    runner = ctx.tasks
    out = []
    for rec in store.tasks.list(limit=TASKS_SHOWN):  # newest first
        view = task_view(rec, runner.task_dir(rec.id) if runner is not None else None)
        downloads = view.get("downloads") or {}
        done = rec.state == "completed"  # partial outputs of a running task are not offered
        out.append({
            "id": rec.id,
            "source": rec.source,
            "models": list(rec.models),
            "state": rec.state,
            "progress": rec.progress,
            "frames_done": rec.frames_done,
            "frames_total": rec.frames_total,
            "fps": rec.fps,
            "eta_s": view.get("eta_s"),
            "error": rec.error,
            "created_at": rec.created_at,
            "downloads": {k: (downloads.get(k) if done else None) for k in ("events", "video")},
        })
    return out


def build_summary(ctx: Any) -> dict[str, Any]:
    cache = _cache()
    alerts: list[dict[str, Any]] = []
    for name, error in dict(ctx.errors).items():
        alerts.append({"level": "error", "source": name, "message": error})
    for name, error in dict(ctx.prewarm_failed).items():
        alerts.append({"level": "error", "source": f"prewarm {name}", "message": error})
    try:
        cache_part, cache_alerts = _cache_summary(cache)
    except Exception as exc:  # noqa: BLE001
        log.debug("cache summary failed", exc_info=True)
        cache_part, cache_alerts = _cache_summary(None)[0], [
            {"level": "warning", "source": "cache", "message": f"statistics unavailable: {exc}"}]
    streams, stream_alerts = _streams(ctx)
    try:
        tasks = _tasks(ctx)
    except Exception as exc:  # noqa: BLE001 - the store may be briefly away; say so, keep going
        log.debug("task list failed", exc_info=True)
        tasks = []
        alerts.append({"level": "warning", "source": "store", "message": f"task list unavailable: {exc}"})
    return {
        "type": "summary",
        "time": time.time(),
        "system": _system(ctx, cache),
        "alerts": alerts + cache_alerts + stream_alerts,
        "cache": cache_part,
        "streams": streams,
        "tasks": tasks,
    }


class SharedSummary:
    """One summary per ``max_age_s`` for all open dashboards of an app, not one per tab.

    The first caller after the summary went stale builds it (under the lock, so concurrent
    callers wait for that one build rather than starting their own).
    """

    def __init__(self, ctx: Any, *, max_age_s: float = 0.5, clock: Any = time.monotonic) -> None:
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
