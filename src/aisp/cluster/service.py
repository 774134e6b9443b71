"""``ClusterService``: the API's :class:`~aisp.api.cluster_port.ClusterPort` on Ray.

``open`` connects (:class:`~aisp.cluster.connection.RayConnection`), refuses SQLite across nodes,
then starts the parts: stream actors and their supervisor (``streams``), batch tasks split over the
nodes (``tasks``), and the frames deployment on Ray Serve (``frames``, :mod:`aisp.cluster.frames`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aisp.cluster.connection import RayConnection
from aisp.settings import Settings

if TYPE_CHECKING:
    from aisp.api.context import AppContext

__all__ = ["ClusterService"]

log = logging.getLogger("aisp.cluster")


class ClusterService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connection: RayConnection | None = None
        self.streams: Any = None
        self.tasks: Any = None
        self.frames: Any = None
        #: who answers POST /api/frames/process: "serve" (a replica per node) or "local"
        self.frames_path = "local"

    def open(self, ctx: AppContext) -> None:
        self.connection = RayConnection.connect(self.settings)
        self._open_frames(ctx)

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
        for name in ("frames", "tasks", "streams"):
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
        if self.connection is None:
            return {"nodes": [], "frames": frames}
        return {"nodes": [{**n.to_dict(), "streams": [], "tasks": []} for n in self.connection.nodes()],
                "frames": frames}
