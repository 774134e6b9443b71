"""``ClusterService``: the API's :class:`~aisp.api.cluster_port.ClusterPort` on Ray.

``open`` connects (:class:`~aisp.cluster.connection.RayConnection`), refuses SQLite across nodes,
then starts the parts: stream actors and their supervisor (``streams``), batch tasks split over the
nodes (``tasks``), and the frames deployment on Ray Serve (``frames``).
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
    """``task_setup``: called on each node's task worker before it builds its runtime (register the
    custom models the tasks use there: a ``register_model`` in the driver does not reach the nodes)."""

    def __init__(self, settings: Settings, *, task_setup: Callable[[], Any] | None = None) -> None:
        self.settings = settings
        self.task_setup = task_setup
        self.connection: RayConnection | None = None
        self.streams: Any = None
        self.tasks: Any = None
        self.frames: Any = None

    def open(self, ctx: AppContext) -> None:
        self.connection = RayConnection.connect(self.settings)
        from aisp.cluster.tasks import ClusterTasks

        self.tasks = ClusterTasks(self.settings, setup=self.task_setup)
        self.tasks.start()  # a worker per node builds its runtime now, not at the first task

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
        tasks = self.tasks.by_node() if self.tasks is not None else {}
        return {"nodes": [{**n.to_dict(), "streams": [], "tasks": tasks.get(n.node_id, [])}
                          for n in self.connection.nodes()]}
