"""``StreamManager``: the API's side of live streams (engine + store + metrics + events).

A stream definition comes from ``POST /api/streams`` or from the store at startup. The manager
adds it to the shared :class:`aisp.pipeline.Engine` with extra sinks (the inference-time
histogram for ``/metrics``, an :class:`~aisp.pipeline.EventSink` writing to the store's event
writer, and, with MQTT, the per-frame counts of :mod:`aisp.api.count_feed`), persists it with its
desired state (``running``/``stopped``), and recreates it on restart. The demo stream
(``AISP_DEMO=1``) is not persisted.

A stream that reached a terminal state (stopped, failed) is rebuilt from its spec on ``start``.

On a cluster (``ctx.cluster.streams`` set, see :class:`~aisp.api.cluster_port.ClusterStreamsPort`)
the persisted streams run as actors on the cluster's nodes instead of the local engine: the
manager saves the definition and desired state in the store as usual, then asks the cluster to
apply it, and reads the stream through the cluster's view (same surface as a local stream, plus
``node_id``). Video outputs (push, HLS, recording) are not available there (400/409). The demo
stream, never persisted, stays on this machine.

A stream's source passes the source policy when it is defined (403 ``SOURCE_NOT_ALLOWED``) and
is opened through :func:`aisp.api.sources.api_source`, which checks it again on every
reconnect. At most ``max_streams`` streams are defined (running or stopped; 409 beyond), restored
ones included. What the manager shows (``source``, ``last_error``) has URL passwords hidden.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from typing import TYPE_CHECKING, Any

from aisp.api import modelops
from aisp.api.context import AppContext
from aisp.api.sources import api_source, check_source
from aisp.api.video_outputs import VideoOutputs, check_output, check_record, public_output
from aisp.errors import ConflictError, NotFoundError, ValidationError
from aisp.netpolicy import redact_text, redact_url

if TYPE_CHECKING:  # the pipeline pulls numpy: imported when the first stream is added
    from aisp.pipeline import Stream

__all__ = ["StreamManager", "DEMO_STREAM"]

log = logging.getLogger("aisp.api")

DEMO_STREAM = {"id": "demo", "source": "demo", "models": ["face_detection"], "live": True}
#: a stream id: a plain name, never "." or ".." (the same rule as ``StreamCreate.id``)
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SPEC_FIELDS = ("id", "source", "models", "priority", "max_fps", "every", "live", "track", "zones", "lines",
                "output", "record")


class StreamManager:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._lock = threading.RLock()
        self._specs: dict[str, dict[str, Any]] = {}  # streams this manager knows, by id
        self._persisted: set[str] = set()
        self._remote: set[str] = set()  # streams running as actors on the cluster

    @classmethod
    def of(cls, ctx: AppContext) -> StreamManager:
        mgr = getattr(ctx, "_stream_manager", None)
        if mgr is None:
            with ctx._lock:
                mgr = getattr(ctx, "_stream_manager", None)
                if mgr is None:
                    mgr = cls(ctx)
                    ctx._stream_manager = mgr  # type: ignore[attr-defined]
        return mgr

    def _cluster(self) -> Any:
        """The cluster's streams part (``ClusterStreamsPort``), or None on one machine."""
        cluster = self.ctx.cluster
        return None if cluster is None else getattr(cluster, "streams", None)

    # --- queries ---------------------------------------------------------------------------
    def ids(self) -> list[str]:
        with self._lock:
            return list(self._specs)

    def get(self, stream_id: str) -> Any:
        if stream_id in self._remote:
            return self._cluster().view(stream_id)
        engine = self.ctx.require_engine()
        stream = engine.get_stream(stream_id) if stream_id in self._specs else None
        if stream is None:
            raise NotFoundError(f"stream '{stream_id}' not found", kind="stream", key=stream_id)
        return stream

    def entries(self) -> list[tuple[dict[str, Any], Stream]]:
        """(definition, engine stream) of every stream this manager knows and the engine runs."""
        engine = self.ctx.require_engine()
        with self._lock:
            specs = [dict(spec) for spec in self._specs.values()]
        out = []
        for spec in specs:
            if spec["id"] in self._remote:
                out.append((spec, self._cluster().view(spec["id"])))
                continue
            try:
                out.append((spec, engine.get_stream(spec["id"])))
            except NotFoundError:  # removed meanwhile
                continue
        return out

    def describe(self, stream_id: str) -> dict[str, Any]:
        with self._lock:
            spec = dict(self._specs.get(stream_id) or {})
        if stream_id in self._remote:
            return self._describe_remote(stream_id, spec)
        stream = self.get(stream_id)
        return {
            **{k: spec.get(k) for k in _SPEC_FIELDS},
            "source": redact_url(str(spec.get("source"))),
            "priority": spec.get("priority") or 0,
            "every": spec.get("every") or 1,
            "output": public_output(spec.get("output")),
            "track": bool(stream.spec.track),
            "zones": [z.to_dict() for z in stream.spec.zones],
            "lines": [ln.to_dict() for ln in stream.spec.lines],
            "state": stream.state,
            "last_error": None if stream.last_error is None else redact_text(stream.last_error),
            "stats": {**stream.stats.snapshot().to_dict(), **stream.analytics_stats()},
            "video": self._video_stats(stream_id),
            "node_id": None,
        }

    def _describe_remote(self, stream_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        """A stream on the cluster: its definition from here, its state from its actor."""
        from aisp.pipeline.zones import parse_lines, parse_zones

        info = self._cluster().info(stream_id)
        zones = [z.to_dict() for z in parse_zones(spec.get("zones") or [])]
        lines = [ln.to_dict() for ln in parse_lines(spec.get("lines") or [])]
        error = info.get("last_error")
        return {
            **{k: spec.get(k) for k in _SPEC_FIELDS},
            "source": redact_url(str(spec.get("source"))),
            "priority": spec.get("priority") or 0,
            "every": spec.get("every") or 1,
            "output": None,
            "track": bool(spec.get("track")) or bool(zones or lines),
            "zones": list(zones),
            "lines": list(lines),
            "state": info.get("state") or "stopped",
            "last_error": None if error is None else redact_text(str(error)),
            "stats": {**(info.get("stats") or {}), **(info.get("analytics") or {})},
            "video": None,
            "node_id": info.get("node_id"),
        }

    def _video_stats(self, stream_id: str) -> dict[str, Any] | None:
        video = VideoOutputs.of(self.ctx).find(stream_id)
        return video.stats() if video is not None else None

    def describe_all(self) -> list[dict[str, Any]]:
        out = []
        for sid in self.ids():
            try:
                out.append(self.describe(sid))
            except NotFoundError:
                continue
        return out

    # --- changes ---------------------------------------------------------------------------
    def create(self, body: dict[str, Any], *, start: bool = True, persist: bool = True) -> dict[str, Any]:
        spec = {k: body.get(k) for k in _SPEC_FIELDS if body.get(k) is not None}
        spec["id"] = spec.get("id") or f"s-{secrets.token_hex(4)}"
        if not isinstance(spec["id"], str) or not _ID_RE.fullmatch(spec["id"]):  # restored ones too
            raise ValidationError(
                "id: expected letters, digits, '_', '.' or '-', starting with a letter or digit, at most 64",
                field="id",
            )
        check_source(self.ctx, str(spec.get("source") or ""))  # 403 before any model is loaded
        spec["models"] = modelops.check_models(spec.get("models") or [], self.ctx.settings.resolved_model_dir)
        remote = persist and self._cluster() is not None  # the demo (not persisted) runs here
        for key, check in (("output", lambda v: check_output(self.ctx, v)), ("record", check_record)):
            if key in spec and remote:
                raise ValidationError(f"{key}: video outputs are not available for streams on a cluster "
                                      "(AISP_RAY_ADDRESS is set); leave it out", field=key)
            if key in spec:
                spec[key] = check(spec[key])
        engine = self.ctx.require_engine()
        sid = spec["id"]
        limit = self.ctx.settings.max_streams
        with self._lock:
            if sid in self._specs:
                raise ConflictError(
                    f"stream '{sid}' already exists; delete it first or choose another id",
                    details={"stream_id": sid},
                )
            if len(self._specs) >= limit:
                raise ConflictError(
                    f"{len(self._specs)} streams are defined, the most allowed (max_streams={limit}, "
                    "AISP_MAX_STREAMS); delete one first",
                    details={"limit": limit, "setting": "AISP_MAX_STREAMS"},
                )
            if remote:
                self._remote.add(sid)
            else:
                self._add_to_engine(engine, spec)
            self._specs[sid] = spec
            if persist and self.ctx.store is not None:
                self.ctx.store.streams.save(spec, desired_state="running" if start else "stopped")
                self._persisted.add(sid)
        if start and remote:
            self._cluster().apply(sid, fresh=True)
        elif start:
            self._start(engine, sid)
        log.info(
            "stream %s created (source=%s, models=%s, start=%s)", sid, redact_url(spec["source"]),
            spec["models"], start,
        )
        return self.describe(sid)

    def _add_to_engine(self, engine: Any, spec: dict[str, Any]) -> Any:
        from aisp.pipeline import StreamSpec
        from aisp.pipeline.stream import DEFINITION_FIELDS

        fields = {k: v for k, v in spec.items() if k in DEFINITION_FIELDS}
        source = api_source(self.ctx, spec["source"], live=spec.get("live"))
        video = VideoOutputs.of(self.ctx)
        sinks = self._sinks(spec["id"]) + [video.sink_for(spec["id"], spec)]
        try:
            return engine.add_stream(StreamSpec(**{**fields, "source": source}), sinks=sinks)
        except BaseException:
            if spec["id"] not in self._specs:  # a new stream that could not be added: no video out
                video.remove(spec["id"])
            raise

    def _sinks(self, stream_id: str) -> list[Any]:
        from aisp.pipeline.sinks import CallbackSink

        metrics = self.ctx.metrics

        def observe(result: Any) -> None:
            for name, res in result.results.items():
                metrics.observe_inference(name, float(getattr(res, "inference_ms", 0.0) or 0.0), "stream")

        sinks: list[Any] = [CallbackSink(observe)]
        delivery = self.ctx.delivery
        if delivery is not None and delivery.counts is not None and self.ctx.settings.mqtt_counts == "frames":
            from aisp.api.count_feed import FrameCountFeed

            feed = FrameCountFeed(delivery.counts, stream_id,
                                  interval=self.ctx.settings.mqtt_count_interval_seconds)
            sinks.append(CallbackSink(feed))
        if self.ctx.store is not None:
            from aisp.pipeline import EventSink

            sinks.append(
                EventSink(
                    self.ctx.store.events,
                    stream_id=stream_id,
                    window_seconds=self.ctx.settings.event_window_seconds,
                )
            )
        return sinks

    def _start(self, engine: Any, sid: str) -> None:
        stream = engine.get_stream(sid)
        if stream.done:  # a stopped stream's threads are gone: rebuild it from its spec
            engine.remove_stream(sid, timeout=self.ctx.settings.drain_timeout_seconds)
            self._add_to_engine(engine, self._specs[sid])
        engine.start_stream(sid)

    def start(self, stream_id: str) -> dict[str, Any]:
        if stream_id in self._remote:
            stream = self.get(stream_id)
            with self._lock:
                self._save_state(stream_id, "running")
                fresh = stream.state not in ("running", "starting", "reconnecting")
            self._cluster().apply(stream_id, fresh=fresh)
            return self.describe(stream_id)
        engine = self.ctx.require_engine()
        stream = self.get(stream_id)
        with self._lock:
            if stream.state not in ("running", "starting", "reconnecting"):
                self._start(engine, stream_id)
            self._save_state(stream_id, "running")
        return self.describe(stream_id)

    def stop(self, stream_id: str) -> dict[str, Any]:
        if stream_id in self._remote:
            with self._lock:
                self._save_state(stream_id, "stopped")
            self._cluster().apply(stream_id)
            return self.describe(stream_id)
        engine = self.ctx.require_engine()
        self.get(stream_id)
        with self._lock:
            engine.stop_stream(stream_id, timeout=self.ctx.settings.drain_timeout_seconds)
            self._save_state(stream_id, "stopped")
        return self.describe(stream_id)

    def delete(self, stream_id: str) -> None:
        if stream_id in self._remote:
            with self._lock:
                self._specs.pop(stream_id, None)
                self._remote.discard(stream_id)
                if stream_id in self._persisted and self.ctx.store is not None:
                    self.ctx.store.streams.delete(stream_id)
                    self._persisted.discard(stream_id)
            self._cluster().apply(stream_id)  # no definition: the actor goes, its position too
            log.info("stream %s deleted", stream_id)
            return
        engine = self.ctx.require_engine()
        self.get(stream_id)
        with self._lock:
            engine.remove_stream(stream_id, timeout=self.ctx.settings.drain_timeout_seconds)
            VideoOutputs.of(self.ctx).remove(stream_id)
            self._specs.pop(stream_id, None)
            if stream_id in self._persisted and self.ctx.store is not None:
                self.ctx.store.streams.delete(stream_id)
                self._persisted.discard(stream_id)
        log.info("stream %s deleted", stream_id)

    def set_hls(self, stream_id: str, enabled: bool) -> dict[str, Any]:
        """Allow (and start now) or stop HLS on a stream; persisted with its definition."""
        self.get(stream_id)
        if stream_id in self._remote:
            raise ConflictError(f"stream '{stream_id}' runs on a cluster node: HLS is not available there",
                                details={"stream_id": stream_id})
        with self._lock:
            spec = self._specs[stream_id]
            spec["output"] = {**(spec.get("output") or {"push": None}), "hls": enabled}
            if stream_id in self._persisted and self.ctx.store is not None:
                self.ctx.store.streams.save(spec)  # keeps the desired state
        VideoOutputs.of(self.ctx).get(stream_id).set_hls(enabled)
        return self.describe(stream_id)

    def set_zones(self, stream_id: str, zones: list[dict[str, Any]], lines: list[dict[str, Any]]
                  ) -> dict[str, Any]:
        """Replace a stream's zones and lines (validated first), persist them, and apply them: at the
        next frame when the stream already tracks, else by restarting a running stream with
        tracking on. Counts start over."""
        from aisp.pipeline import StreamSpec
        from aisp.pipeline.stream import DEFINITION_FIELDS
        from aisp.pipeline.zones import ZoneTracker, parse_lines, parse_zones

        engine = self.ctx.require_engine()
        stream = self.get(stream_id)
        parsed_zones, parsed_lines = parse_zones(zones), parse_lines(lines)
        with self._lock:
            spec = dict(self._specs[stream_id])
            spec["zones"], spec["lines"] = zones or None, lines or None
            if spec.get("track") is False and (zones or lines):
                spec["track"] = None  # zones and lines need tracking
            check = {k: v for k, v in spec.items() if k in DEFINITION_FIELDS}
            StreamSpec(**{**check, "source": "check"})  # names unique across zones and lines, etc.
            self._specs[stream_id] = spec
            if stream_id in self._persisted and self.ctx.store is not None:
                self.ctx.store.streams.save(spec)  # the desired state is kept
            if stream_id in self._remote:
                self._cluster().set_zones(stream_id, zones, lines, spec)
            elif stream.analytics is not None:
                stream.spec.zones, stream.spec.lines = parsed_zones, parsed_lines
                stream.analytics.set_zones(ZoneTracker(parsed_zones, parsed_lines))
            else:
                running = stream.state in ("running", "starting", "reconnecting")
                engine.remove_stream(stream_id, timeout=self.ctx.settings.drain_timeout_seconds)
                self._add_to_engine(engine, spec)
                if running:
                    engine.start_stream(stream_id)
        log.info("stream %s: %s zone(s), %s line(s)", stream_id, len(parsed_zones), len(parsed_lines))
        return self.describe(stream_id)

    def _save_state(self, stream_id: str, state: str) -> None:
        if stream_id in self._persisted and self.ctx.store is not None:
            self.ctx.store.streams.set_desired_state(stream_id, state)

    # --- startup ---------------------------------------------------------------------------
    def restore(self) -> int:
        """Recreate the saved streams, starting those whose desired state is running."""
        store = self.ctx.store
        if store is None:
            return 0
        if self._cluster() is not None:
            return self._restore_remote()
        count = 0
        for rec in store.streams.list():
            try:
                body = {k: rec.spec.get(k) for k in _SPEC_FIELDS}
                body["id"] = rec.id
                self.create(body, start=rec.desired_state == "running", persist=False)
                self._persisted.add(rec.id)
                count += 1
            except Exception as exc:  # noqa: BLE001 - one bad definition must not stop the others
                log.error("could not restore stream %s: %s", rec.id, getattr(exc, "message", None) or exc)
        if count:
            log.info("restored %s stream(s) from the store", count)
        return count

    def _restore_remote(self) -> int:
        """On a cluster the actors may well be running (they outlive the API): know the definitions,
        and let the supervisor create the actors that are missing."""
        assert self.ctx.store is not None
        records = self.ctx.store.streams.list()
        with self._lock:
            for rec in records:
                spec = {k: rec.spec.get(k) for k in _SPEC_FIELDS if rec.spec.get(k) is not None}
                spec["id"] = rec.id
                self._specs[rec.id] = spec
                self._remote.add(rec.id)
                self._persisted.add(rec.id)
        self._cluster().reconcile()
        if records:
            log.info("restored %s stream(s) on the cluster", len(records))
        return len(records)

    def ensure_demo(self) -> None:
        if DEMO_STREAM["id"] in self._specs:
            return
        self.create(dict(DEMO_STREAM), start=True, persist=False)
