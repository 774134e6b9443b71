"""``TaskWorker``: the Ray actor, one per node, that runs frame ranges of split tasks.

Each worker builds its own :class:`~aisp.runtime.Runtime` once, from the driver's settings
(:func:`~aisp.cluster.connection.worker_settings`) with a CPU plan for its node's cores, and keeps
it warm: its models stay loaded between ranges and tasks (a runtime per range would pay the
model loads and the engine's threads again for every range). It runs up to ``slots`` ranges at
once (the node's cores), each as one more reader on its one engine, the way concurrent tasks
share a single machine's engine.

A range runs the pipeline's own job code (:meth:`aisp.runtime.Runtime.run_job`) on
:class:`~aisp.cluster.range_source.RangeSource` over the task's source, opened under the source
policy of the node (:class:`~aisp.pipeline.policy_source.PolicySource`): the frames are decoded
and inferred on this node and never leave it. What comes back through Ray's object store is the
range's events (JSONL bytes, the lines ``aisp run`` writes) and its encoded video segment (MP4
bytes); the worker's temporary files are removed before it answers.

The source is opened by path on every node: on one machine, or with the media directories on
storage every node mounts at the same path (NFS, a cluster file system). A node that cannot open
it fails the range with the generic "cannot open the source" text (the reason is in the node's
log), so no path or password reaches the task's error.

Concurrency groups: ``work`` (``slots`` threads) runs ranges; ``control`` answers ``cancel`` and
``info`` while ranges run.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aisp.cluster.connection import worker_settings
from aisp.settings import Settings

__all__ = ["RangeJob", "RangeResult", "TaskWorker", "concurrency_groups", "worker_options"]

log = logging.getLogger("aisp.cluster")


@dataclass(frozen=True)
class RangeJob:
    """One range of one task, as sent to a worker (small: no frame, no file content)."""

    task_id: str
    index: int
    start: int
    end: int | None
    first: int
    source: str
    models: tuple[str, ...]
    every: int = 1
    max_fps: float | None = None
    video: bool = True
    stall_timeout: float | None = None


@dataclass
class RangeResult:
    """What a worker sends back for a range: its events and video segment, and where it ran."""

    task_id: str
    index: int
    frames: int
    events: bytes
    video: bytes | None
    summary: dict[str, Any] = field(default_factory=dict)
    node_id: str = ""
    error: str | None = None
    cancelled: bool = False

    @property
    def complete(self) -> bool:
        return self.error is None and not self.cancelled


def concurrency_groups(slots: int) -> dict[str, int]:
    """Threads for ``slots`` ranges, and one for the control calls (given to ``ray.remote``:
    Ray takes them there only, not in ``.options()``)."""
    return {"work": max(1, slots), "control": 1}


def worker_options(node_id: str) -> dict[str, Any]:
    """Ray options of the worker of ``node_id``: pinned to that node (it dies with it; the driver
    moves its ranges).

    ``num_cpus=0``: the worker is placed by node, not by Ray's CPU count, and sizes its threads
    from the node's cores itself (its CPU plan), so it never waits for a CPU that a stream or a
    Serve replica holds on that node.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {
        "num_cpus": 0,
        "max_restarts": 0,
        "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False),
    }


class TaskWorker:
    """The actor's class (wrapped with ``ray.remote`` by the pool; plain Python here)."""

    def __init__(self, settings: Settings, cores: int, setup: Callable[[], Any] | None = None) -> None:
        from aisp.netpolicy import SourcePolicy
        from aisp.runtime import build

        if setup is not None:  # e.g. register_model() of the driver's custom models, on this node
            setup()
        self.cores = max(1, int(cores))
        self.settings = worker_settings(settings, cpu_cores=self.cores, workers=self.cores)
        self.runtime = build(self.settings, store=False)
        if self.settings.prewarm:  # AISP_PREWARM: the node's cache holds them before the first range
            report = self.runtime.prewarm()
            if report.failed:
                log.warning("task worker: prewarm failed for %s", report.failed)
        self.policy = SourcePolicy.from_settings(self.settings)
        self.node_id = _node_id()
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        log.info("task worker up on node %s: %d core(s), pid %d", self.node_id[:12], self.cores, os.getpid())

    # --- control group ---------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "pid": os.getpid(), "cores": self.cores}

    def cancel(self, task_id: str) -> None:
        with self._lock:
            self._cancel.setdefault(task_id, threading.Event()).set()

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._cancel.pop(task_id, None)

    # --- work group ------------------------------------------------------------------------
    def stateful(self, models: list[str]) -> bool:
        """Load ``models`` into this worker's cache (the first range then finds them warm) and
        say whether one of them depends on earlier frames (then the task is not split)."""
        return any(bool(getattr(self.runtime.models.load(name), "stateful", False)) for name in models)

    def run_range(self, job: RangeJob) -> RangeResult:
        from aisp.cluster.range_source import RangeSource
        from aisp.pipeline.policy_source import PolicySource

        with self._lock:
            cancel = self._cancel.setdefault(job.task_id, threading.Event())
        tmp = Path(tempfile.mkdtemp(prefix=f"aisp-range-{job.index}-"))
        try:
            events_path = tmp / "events.jsonl"
            video_path = tmp / "segment.mp4" if job.video else None
            source = RangeSource(PolicySource(job.source, self.policy, finite_ends=True,
                                              read_timeout=min(10.0, (job.stall_timeout or 8.0) + 2.0)),
                                 job.end)
            summary = self.runtime.run_job(
                source, list(job.models), out_video=video_path, events_path=events_path,
                max_fps=job.max_fps, every=job.every, cancel=cancel, start_frame=job.first,
                stall_timeout=job.stall_timeout,
            )
            events = events_path.read_bytes() if events_path.exists() else b""
            video = video_path.read_bytes() if video_path is not None and video_path.exists() else None
            return RangeResult(job.task_id, job.index, summary.frames, events, video, summary.to_dict(),
                               self.node_id, summary.error, summary.cancelled)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def close(self) -> None:
        self.runtime.close()


def _node_id() -> str:
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # noqa: BLE001 - outside Ray (unit tests of the class)
        return ""
