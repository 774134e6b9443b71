"""One live stream as a detached, named Ray actor: decode and inference where the stream runs.

Placement (:func:`stream_actor_options`): name ``stream:<id>`` in the ``aisp`` namespace,
``lifetime="detached"`` (it outlives the API process that created it), one ``stream_slot``
resource (a node declares how many streams it takes), ``num_cpus=0`` (the slot is the budget),
``scheduling_strategy="SPREAD"``, ``max_restarts=-1`` and ``max_task_retries=-1`` (Ray restarts it on
a live node when its node dies, and replays the calls in flight there), threaded (a viewer's
blocking wait does not hold up the others).

Inside, the actor builds its own :class:`~aisp.runtime.Runtime` from the driver's settings (the
:func:`~aisp.cluster.connection.worker_settings`, with a CPU plan for its share of the node: the
node's CPUs over its stream slots) and runs the existing engine with the stream's spec. Its sinks
are local: the latest result and the latest frame (JPEG-encoded only when a viewer asks), the
window summaries and the discrete events, committed with the stream's position in one
transaction (:mod:`aisp.cluster.checkpoint`). Frames never leave the node.

Restart: ``ray.get_runtime_context().was_current_actor_reconstructed`` (or ``resume=True``, a
supervisor recreating a lost actor) makes it read the stream's latest definition and its stored
position from the store: a file seeks to the first frame whose events were not committed; a live
source simply connects again. A fresh start clears the position (frame 0, like a local start).

Event snapshots (JPEGs of events) are off in stream actors: they would be written to the local
disk of a node the API cannot serve from.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

from aisp.cluster.checkpoint import CheckpointSink, LedgerBus, StreamLedger
from aisp.cluster.connection import NAMESPACE, STREAM_SLOT, worker_settings
from aisp.errors import NotFoundError
from aisp.netpolicy import redact_text, redact_url
from aisp.pipeline.stream import DEFINITION_FIELDS
from aisp.settings import Settings

__all__ = ["ACTOR_PREFIX", "StreamActor", "actor_name", "stream_actor_options", "stream_settings"]

log = logging.getLogger("aisp.cluster")

ACTOR_PREFIX = "stream:"


def actor_name(stream_id: str) -> str:
    return f"{ACTOR_PREFIX}{stream_id}"


def stream_actor_options(stream_id: str) -> dict[str, Any]:
    """The ``.options(...)`` of a stream's actor (see the module docstring)."""
    return {
        "name": actor_name(stream_id),
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "max_restarts": -1,
        "max_task_retries": -1,
        "num_cpus": 0,
        "resources": {STREAM_SLOT: 1},
        "scheduling_strategy": "SPREAD",
        "max_concurrency": 32,
        "get_if_exists": True,
    }


def stream_settings(settings: Settings, node_cpus: float, node_slots: float) -> Settings:
    """The settings a stream actor builds its runtime from: its share of the node's CPUs (``cpu_cores``:
    CPUs over stream slots, at least 1), the plan's workers for that, no event snapshots."""
    share = max(1, int(node_cpus // max(1.0, node_slots)))
    return worker_settings(settings, cpu_cores=share, workers=0, event_snapshots=False)


def _node_share(node_id: str) -> tuple[float, float]:
    import ray

    for node in ray.nodes():
        if node.get("NodeID") == node_id:
            res = node.get("Resources") or {}
            return float(res.get("CPU", 1.0)), float(res.get(STREAM_SLOT, 1.0))
    return 1.0, 1.0


class StreamActor:
    """The actor's body (wrapped by ``ray.remote`` in :mod:`aisp.cluster.streams`)."""

    def __init__(self, spec: dict[str, Any], settings: Settings, *, resume: bool = False,
                 checkpoint_interval: float = 0.5) -> None:
        import ray

        from aisp.runtime import build

        started = time.perf_counter()
        context = ray.get_runtime_context()
        self.node_id: str = context.get_node_id()
        self.restored = bool(context.was_current_actor_reconstructed)
        #: changes with every (re)start: viewers' sequence numbers start over with it
        self.incarnation = secrets.token_hex(6)
        self.stream_id: str = spec["id"]
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.stream: Any = None
        self.settings = stream_settings(settings, *_node_share(self.node_id))
        bus = LedgerBus()
        self.runtime = build(self.settings, events=bus)
        store = self.runtime.store
        assert store is not None
        store.open(migrate=False, background=False)  # the API migrated; no retention worker per stream
        self.store = store
        resume = resume or self.restored
        position = frames = 0
        if resume:
            try:
                spec = {**spec, **store.streams.get(self.stream_id).spec}  # zones may have changed
            except NotFoundError:
                pass
            saved = store.stream_positions.get(self.stream_id)
            if saved is not None:
                position, frames = saved.position, saved.frames
        else:
            store.stream_positions.clear(self.stream_id)
        self.spec = spec
        self.ledger = StreamLedger(self._commit, position=position, frames=frames,
                                   interval=checkpoint_interval, step=int(spec.get("every") or 1))
        bus.ledger = self.ledger
        try:
            self.stream = self._add(spec, position)
        except Exception as exc:  # the actor stays up and says why (a dead actor would be recreated)
            self.last_error = redact_text(getattr(exc, "message", None) or str(exc))
            log.error("stream %s: cannot start on node %s: %s", self.stream_id, self.node_id[:8],
                      self.last_error)
        log.info("stream %s on node %s (%s, from frame %d) in %.2f s", self.stream_id, self.node_id[:8],
                 "restored" if self.restored else ("resumed" if resume else "new"), position,
                 time.perf_counter() - started)

    def _commit(self, position: int | None, frames: int, events: Any, summaries: Any) -> None:
        self.store.stream_positions.commit(self.stream_id, position, frames, events, summaries)

    def _add(self, spec: dict[str, Any], position: int) -> Any:
        from aisp.netpolicy import SourcePolicy
        from aisp.pipeline import EventSink, StreamSpec
        from aisp.pipeline.policy_source import PolicySource

        policy = SourcePolicy.from_settings(self.settings)  # checked again on every (re)connect
        source = PolicySource(str(spec["source"]), policy, live=spec.get("live"))
        fields = {k: v for k, v in spec.items() if k in DEFINITION_FIELDS and v is not None}
        start = 0 if source.live else position
        windows = EventSink(self.ledger, stream_id=self.stream_id,
                            window_seconds=self.settings.event_window_seconds)
        self._checkpoint = CheckpointSink(self.ledger, windows)
        sinks = [windows, self._checkpoint]
        spec_obj = StreamSpec(**{**fields, "source": source, "start_frame": start})
        stream = self.runtime.engine.add_stream(spec_obj, sinks=sinks)  # loads the models
        self._started_at = time.monotonic()
        return self.runtime.engine.start_stream(stream.id)

    # --- what the API reads -----------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """State, error, statistics, spec and placement in one call (``GET /api/streams/{id}``)."""
        stream = self.stream
        base = {"id": self.stream_id, "node_id": self.node_id, "incarnation": self.incarnation,
                "restored": self.restored, "position": self.ledger.position,
                "frames_committed": self.ledger.committed_frames}
        if stream is None:
            spec = {**self.spec, "source": redact_url(str(self.spec.get("source")))}
            return {**base, "state": "failed", "last_error": self.last_error, "stats": {}, "analytics": {},
                    "spec": spec, "seq": 0}
        spec = stream.spec.to_dict()
        spec["source"] = redact_url(str(spec.get("source")))  # no camera password leaves the actor
        error = stream.last_error
        return {**base, "state": stream.state, "last_error": None if error is None else redact_text(error),
                "stats": stream.stats.snapshot().to_dict(), "analytics": stream.analytics_stats(),
                "spec": spec, "seq": stream.latest.seq}

    def wait_result(self, after_seq: int, timeout: float, incarnation: str | None = None
                    ) -> tuple[str, int, dict[str, Any] | None]:
        """``(incarnation, seq, result dict)`` of the next result after ``after_seq`` (seq 0 and None
        on timeout). A caller that knew another incarnation gets the latest result at once."""
        return self._wait("latest", after_seq, timeout, incarnation)

    def wait_jpeg(self, after_seq: int, timeout: float, incarnation: str | None = None
                  ) -> tuple[str, int, bytes | None]:
        """The same for the latest annotated frame as JPEG (encoded only for viewers)."""
        return self._wait("mjpeg", after_seq, timeout, incarnation)

    def _wait(self, which: str, after_seq: int, timeout: float, incarnation: str | None
              ) -> tuple[str, int, Any]:
        stream = self.stream
        sink = None if stream is None else getattr(stream, which)
        if sink is None:
            return self.incarnation, 0, None
        if incarnation != self.incarnation:
            after_seq = 0
        got = sink.wait_next(after_seq, timeout)
        if got is None:
            return self.incarnation, 0, None
        seq, value = got
        return self.incarnation, seq, value.to_dict() if which == "latest" else value

    def ping(self) -> str:
        return self.node_id

    def wait_done(self, timeout: float) -> dict[str, Any]:
        """Wait (at most ``timeout`` s) for a finite stream to end: ``state``, ``frames`` emitted and
        ``seconds`` from its start to its last frame (the benchmarks' figure)."""
        stream = self.stream
        if stream is None:
            return {"state": "failed", "frames": 0, "seconds": 0.0}
        stream.wait(timeout)
        ended = self._checkpoint.closed_at or time.monotonic()
        return {"state": stream.state, "frames": stream.stats.snapshot().frames_out,
                "seconds": ended - self._started_at}

    # --- changes ------------------------------------------------------------------------------
    def set_zones(self, zones: list[dict[str, Any]], lines: list[dict[str, Any]], spec: dict[str, Any]
                  ) -> None:
        """Apply new zones and lines: at the next frame when the stream tracks, else by restarting the
        stream here with tracking on (from its committed position). Counts start over."""
        from aisp.pipeline.zones import ZoneTracker, parse_lines, parse_zones

        with self._lock:
            self.spec = spec
            stream = self.stream
            if stream is not None and stream.analytics is not None:
                parsed_zones, parsed_lines = parse_zones(zones), parse_lines(lines)
                stream.spec.zones, stream.spec.lines = parsed_zones, parsed_lines
                stream.analytics.set_zones(ZoneTracker(parsed_zones, parsed_lines))
                return
            engine = self.runtime.engine
            if stream is not None:
                engine.remove_stream(self.stream_id, timeout=self.settings.drain_timeout_seconds)
                self.ledger.flush()
            self.stream = self._add(spec, self.ledger.position)

    def stop(self) -> dict[str, Any]:
        """Stop the stream (frames in flight are emitted), commit the checkpoint, close the runtime.
        The caller kills the actor next."""
        with self._lock:
            stream = self.stream
            if stream is not None:
                self.runtime.engine.stop_stream(self.stream_id, timeout=self.settings.drain_timeout_seconds)
            self.ledger.close()
            out = self.info()
            self.runtime.close(timeout=self.settings.drain_timeout_seconds)
        return out
