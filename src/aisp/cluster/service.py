"""``ClusterService``: the API's :class:`~aisp.api.cluster_port.ClusterPort` on Ray.

``open`` connects (:class:`~aisp.cluster.connection.RayConnection`), refuses SQLite across nodes,
then starts the parts: stream actors and their supervisor (``streams``,
:class:`~aisp.cluster.streams.ClusterStreams`; needs the store, which holds the streams' desired
state), batch tasks split over the nodes (``tasks``), and the frames deployment on Ray Serve
(``frames``, :mod:`aisp.cluster.frames`). With streams on the cluster, an event relay
(:mod:`aisp.cluster.event_relay`) publishes the events the stream actors stored on the API's
event bus (WebSockets, MQTT, webhooks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aisp.cluster.connection import RayConnection
from aisp.settings import Settings

if TYPE_CHECKING:
    from aisp.api.context import AppContext

__all__ = ["ClusterService"]

log = logging.getLogger("aisp.cluster")


class ClusterService:
    """``keep_streams`` (default True): stream actors outlive this API process (they are detached;
    a restarted API finds them). False: :meth:`close` stops and kills them (tests, one-off runs).
    ``stream_options`` go to :class:`~aisp.cluster.streams.ClusterStreams` (supervisor interval,
    checkpoint interval). ``task_setup``: called on each node's task worker before it builds its
    runtime (register the custom models the tasks use there: a ``register_model`` in the driver
    does not reach the nodes)."""

    def __init__(self, settings: Settings, *, keep_streams: bool = True,
                 task_setup: Callable[[], Any] | None = None, **stream_options: Any) -> None:
        self.settings = settings
        self.keep_streams = keep_streams
        self.stream_options = stream_options
        self.task_setup = task_setup
        self.connection: RayConnection | None = None
        self.streams: Any = None
        self.tasks: Any = None
        self.frames: Any = None
        self.relay: Any = None
        #: who answers POST /api/frames/process: "serve" (a replica per node) or "local"
        self.frames_path = "local"

    def open(self, ctx: AppContext) -> None:
        self.connection = RayConnection.connect(self.settings)
        if ctx.store is None:
            log.warning("cluster: no store, so streams run on this machine (the cluster's streams are "
                        "defined in the database)")
        else:
            from aisp.cluster.streams import ClusterStreams

            self.streams = ClusterStreams(self.settings, ctx.store, keep_on_close=self.keep_streams,
                                          **self.stream_options).start()
            self._open_relay(ctx)
        from aisp.cluster.tasks import ClusterTasks

        self.tasks = ClusterTasks(self.settings, setup=self.task_setup)
        self.tasks.start()  # a worker per node builds its runtime now, not at the first task
        self._open_frames(ctx)

    def _open_relay(self, ctx: AppContext) -> None:
        """Events of stream actors go to the store only; the relay brings them to this process's bus."""
        from aisp.cluster.event_relay import EventRelay

        assert ctx.store is not None
        self.relay = EventRelay(
            ctx.store.event_records, ctx.require_runtime().events,
            interval=self.settings.ray_event_poll_seconds,
            # MQTT and webhooks subscribe in a later start-up step; hold the events for them
            ready=lambda: ctx.components.get("delivery", "pending") != "pending" or ctx.stopping.is_set(),
        ).start()

    def _open_frames(self, ctx: AppContext) -> None:
        from aisp.cluster.frames import ServeFrames, frames_path

        assert self.connection is not None
        alive = sum(1 for n in self.connection.nodes() if n.alive)
        self.frames_path = frames_path(self.settings, alive)
        if self.frames_path == "serve":
            self.frames = ServeFrames.deploy(self.settings, alive_nodes=alive, metrics=ctx.metrics)
        else:
            log.info("frames: answered by this process (AISP_RAY_FRAMES=%s, %d node(s) alive)",
                     self.settings.ray_frames, alive)

    def close(self) -> None:
        for name in ("frames", "tasks", "streams", "relay"):
            part = getattr(self, name)
            if part is not None:
                try:
                    part.close()
                except Exception:  # noqa: BLE001 - keep closing the rest
                    log.exception("cluster: closing %s failed", name)
                setattr(self, name, None)
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def describe(self) -> dict[str, Any]:
        frames = {"path": self.frames_path,
                  "replicas": self.frames.replicas if self.frames is not None else 0}
        events = self.relay.stats() if self.relay is not None else None
        if self.connection is None:
            return {"nodes": [], "frames": frames, "events": events}
        by_node: dict[str, list[str]] = {}
        if self.streams is not None:
            for sid, node in sorted(self.streams.placements().items()):
                by_node.setdefault(node, []).append(sid)
        tasks = self.tasks.by_node() if self.tasks is not None else {}
        return {"nodes": [{**n.to_dict(), "streams": by_node.get(n.node_id, []),
                           "tasks": tasks.get(n.node_id, [])}
                          for n in self.connection.nodes()],
                "frames": frames, "events": events}
