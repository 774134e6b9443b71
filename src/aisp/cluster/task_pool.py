"""``WorkerPool``: one :class:`~aisp.cluster.task_worker.TaskWorker` actor per alive node.

Why actors, one per node, rather than a Ray task per range: a range needs a runtime (the models
loaded, the engine's threads up); an actor builds it once and keeps it warm across ranges and
tasks, where a remote task would build it for every range (a MediaPipe graph load is ~100s of ms,
far more than a short range's work). Ray's own recovery would restart a lost actor somewhere,
state lost, and retry its calls there; the driver does better by itself: each worker is pinned to
its node (it dies with it), and the driver hands the lost node's ranges to the workers that are
alive at once, and starts a worker on each node that joins.

:meth:`WorkerPool.sync` reconciles the pool with ``ray.nodes()``: a worker for each alive node
that has none (slots = the node's CPUs), and the workers of dead nodes dropped. The actors are
owned by this driver (not detached): they end with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aisp.cluster.task_worker import TaskWorker, concurrency_groups, worker_options
from aisp.settings import Settings

__all__ = ["Worker", "WorkerPool"]

log = logging.getLogger("aisp.cluster")

#: how often :meth:`WorkerPool.sync` asks Ray for the nodes, at most
SYNC_INTERVAL_S = 0.5
#: a node whose worker was lost gets no new worker for this long, unless Ray reports it dead
#: first: Ray may still list a node that just died as alive (its health checks take seconds),
#: and a worker started there would hold ranges until Ray gives up on it
LOST_COOLDOWN_S = 30.0


@dataclass
class Worker:
    """One worker actor: its node, its range slots and the ranges it runs now."""

    node_id: str
    slots: int
    actor: Any
    busy: int = 0

    @property
    def free(self) -> int:
        return max(0, self.slots - self.busy)


class WorkerPool:
    def __init__(self, settings: Settings, *, setup: Callable[[], Any] | None = None,
                 max_slots: int | None = None) -> None:
        self.settings = settings
        self.setup = setup
        self.max_slots = max_slots
        self._workers: dict[str, Worker] = {}
        self._lock = threading.Lock()
        self._synced_at = 0.0
        self._remote: dict[int, Any] = {}
        self.closed = False
        self._lost: dict[str, float] = {}  # node id -> when its worker was lost

    def _actor_class(self, slots: int) -> Any:
        """``ray.remote(TaskWorker)`` with threads for ``slots`` ranges (one class per slot count)."""
        if slots not in self._remote:
            import ray

            self._remote[slots] = ray.remote(concurrency_groups=concurrency_groups(slots))(TaskWorker)
        return self._remote[slots]

    def sync(self, *, force: bool = False) -> list[Worker]:
        """The workers of the alive nodes, starting the missing ones; at most every
        :data:`SYNC_INTERVAL_S` unless ``force``."""
        import ray

        now = time.monotonic()
        with self._lock:
            if self.closed:
                return []
            if not force and now - self._synced_at < SYNC_INTERVAL_S:
                return list(self._workers.values())
            self._synced_at = now
            alive: dict[str, int] = {}
            for node in ray.nodes():
                if node.get("Alive"):
                    cpus = int((node.get("Resources") or {}).get("CPU", 1) or 1)
                    alive[node["NodeID"]] = max(1, min(cpus, self.max_slots or cpus))
            for node_id in [n for n in self._workers if n not in alive]:
                log.warning("task worker of node %s is gone (node dead)", node_id[:12])
                self._workers.pop(node_id)
            self._lost = {n: t for n, t in self._lost.items() if n in alive and now - t < LOST_COOLDOWN_S}
            for node_id, slots in alive.items():
                if node_id not in self._workers and node_id not in self._lost:
                    actor = self._actor_class(slots).options(**worker_options(node_id)).remote(
                        self.settings, slots, self.setup)
                    self._workers[node_id] = Worker(node_id, slots, actor)
                    log.info("task worker started on node %s (%d slot(s))", node_id[:12], slots)
            return list(self._workers.values())

    def drop(self, worker: Worker) -> None:
        """Forget a worker whose calls failed (its node died, or its actor did); its node gets a
        new worker after :data:`LOST_COOLDOWN_S` if it is still alive then."""
        with self._lock:
            if self._workers.get(worker.node_id) is worker:
                self._workers.pop(worker.node_id)
                self._lost[worker.node_id] = time.monotonic()

    def workers(self) -> list[Worker]:
        with self._lock:
            return list(self._workers.values())

    def slots(self) -> int:
        return sum(w.slots for w in self.sync(force=True))

    def close(self) -> None:
        import ray

        with self._lock:
            self.closed = True
            workers, self._workers = list(self._workers.values()), {}
        for w in workers:
            try:
                ray.kill(w.actor)
            except Exception:  # noqa: BLE001 - already dead with its node
                log.debug("task worker of node %s was already gone", w.node_id[:12])
