"""``ClusterTasks``: a batch task's video split into frame ranges over the nodes, merged in order.

::

    run_task(task_id, source, models, task_dir, start, ...)            on the task runner's thread
      ├─ policy check, scan_video (packets, no decoding), plan_ranges (keyframes; ~3 per slot)
      ├─ dispatch: each range to a worker with a free slot (WorkerPool: one actor per node)
      ├─ ray.wait: a result ─► RangeMerger.accept (once per range) ─► on_progress(frames of the
      │                        accepted ranges, total, fps)         ─► the store, exactly once
      │            a lost worker (node died) ─► its ranges go back to the queue, redone elsewhere
      │            a range that failed (source error) ─► the task fails, like a local run
      └─ ClusterJobSummary (a JobSummary, plus which node ran how many ranges)

Failure semantics: a range is accepted once (the first complete result; results are whole ranges,
so nothing of a lost range is kept and nothing is doubled); a range is tried at most
:data:`MAX_ATTEMPTS` times (a range that kills its worker every time fails the task instead of
looping). Cancel stops the ranges that run (each worker's cancel flag) and keeps the complete
ranges that form a prefix of the task; a retry resumes after them.

Not split (one range on one worker, the same result as a single machine): a task with a stateful
model (``motion``: results depend on every earlier frame) or with ``max_fps`` (which frames are
kept depends on the ones kept before). Only video files are split; the task runner runs other
sources (URLs, image folders, ``demo``) on its own machine.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aisp.cluster.task_merge import RangeMerger
from aisp.cluster.task_plan import DEFAULT_PER_WORKER, FrameRange, plan_ranges, scan_video, single_range
from aisp.cluster.task_pool import Worker, WorkerPool
from aisp.cluster.task_worker import RangeJob, RangeResult
from aisp.errors import AISPError, SourceError
from aisp.pipeline.job import JobSummary
from aisp.pipeline.policy_source import OPEN_FAILED
from aisp.pipeline.sources import IMAGE_EXTENSIONS
from aisp.settings import Settings

__all__ = ["ClusterJobSummary", "ClusterTasks", "MAX_ATTEMPTS"]

log = logging.getLogger("aisp.cluster")

#: tries of one range before the task fails (each lost node costs its ranges one try)
MAX_ATTEMPTS = 4
_WAIT_S = 0.2

Progress = Callable[[int, "int | None", float], None]
#: called with each accepted range's result (tests, benchmarks: "some ranges are done")
RangeHook = Callable[[RangeResult], None]


@dataclass
class ClusterJobSummary(JobSummary):
    """A split task's summary: the :class:`JobSummary` fields over all its ranges, plus ``cluster``:
    the ranges, which node ran how many, and how many were redone after a loss."""

    cluster: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Run:
    """One attempt of one task on the cluster (the scheduler's state)."""

    task_id: str
    run_id: str
    ranges: list[FrameRange]
    pending: collections.deque[FrameRange]
    inflight: dict[Any, tuple[FrameRange, Worker]] = field(default_factory=dict)
    attempts: collections.Counter[int] = field(default_factory=collections.Counter)
    by_node: collections.Counter[str] = field(default_factory=collections.Counter)
    #: range index -> its summary, for the accepted ranges
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    redone: int = 0
    error: str | None = None


class ClusterTasks:
    """The task runner's :class:`~aisp.api.cluster_port.ClusterTasksPort` on Ray."""

    def __init__(self, settings: Settings, *, setup: Callable[[], Any] | None = None,
                 per_worker: int = DEFAULT_PER_WORKER, max_slots: int | None = None,
                 on_range: RangeHook | None = None) -> None:
        from aisp.netpolicy import SourcePolicy

        self.settings = settings
        self.per_worker = per_worker
        self.policy = SourcePolicy.from_settings(settings)
        self.pool = WorkerPool(settings, setup=setup, max_slots=max_slots)
        self.on_range = on_range
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        #: (run id, range index) -> (task id, node id) of every range running now
        self._running: dict[tuple[str, int], tuple[str, str]] = {}

    def start(self) -> None:
        """Start the workers now, so that the first task finds their runtimes built."""
        self.pool.sync(force=True)

    # --- what the API asks --------------------------------------------------------------------
    def accepts(self, source: str) -> bool:
        """True for a source the cluster splits: a video file the source policy allows."""
        try:
            target = self.policy.check_source(source)
        except AISPError:
            return False
        path = Path(target)
        return ("://" not in target and not target.startswith("demo") and path.is_file()
                and path.suffix.lower() not in IMAGE_EXTENSIONS)

    def by_node(self) -> dict[str, list[str]]:
        """node id -> the tasks that have a range running there (``GET /api/cluster``)."""
        with self._lock:
            out: dict[str, set[str]] = {}
            for task_id, node_id in self._running.values():
                out.setdefault(node_id, set()).add(task_id)
        return {node: sorted(ids) for node, ids in out.items()}

    def close(self) -> None:
        self.pool.close()

    # --- one task -----------------------------------------------------------------------------
    def run_task(self, task_id: str, source: str, models: list[str], *, task_dir: Path, start: int = 0,
                 every: int = 1, max_fps: float | None = None, video: bool = True,
                 cancel: threading.Event | None = None, on_progress: Progress | None = None,
                 stall_timeout: float | None = None) -> ClusterJobSummary:
        """Run frames ``start..`` of the video ``source`` split over the nodes; write the events
        part and the video segments of this attempt into ``task_dir`` in frame order (the task
        runner folds and joins them). Raises ``SourceError`` when the file cannot be read."""
        import ray

        cancel = cancel or threading.Event()
        t0 = time.monotonic()
        target = self.policy.check_source(source)
        try:
            index = scan_video(target)
        except Exception as exc:  # noqa: BLE001 - the caller sees one text, the log the reason
            log.warning("task %s: cannot read the keyframes of its source: %s", task_id, exc)
            raise SourceError(OPEN_FAILED, details={"phase": "open"}) from None
        whole = max_fps is not None or self._stateful(list(models))
        ranges = (single_range(start) if start < index.frames else []) if whole else plan_ranges(
            index, max(1, self.pool.slots()), start=start, every=every, per_worker=self.per_worker)
        total = _expected(index.frames, start, every, max_fps, index.fps)
        run = _Run(task_id, uuid.uuid4().hex[:12], ranges, collections.deque(ranges))
        merger = RangeMerger(task_dir, start, len(ranges), [r.start for r in ranges])
        log.info("task %s: %d frames from %d in %d range(s) over %d node(s)%s", task_id, total, start,
                 len(ranges), len(self.pool.workers()), " (not split)" if whole else "")
        if on_progress is not None:
            on_progress(0, total, 0.0)  # the total is known: the task shows 0 % until a range is done
        try:
            while not merger.done and run.error is None and not cancel.is_set():
                self._dispatch(run, source, models, every, max_fps, video, stall_timeout)
                if not run.inflight:
                    if self.pool.closed:
                        run.error = "the cluster's task workers were stopped during the task"
                        break
                    cancel.wait(_WAIT_S)  # no worker up yet (a node is starting)
                    continue
                ready, _ = ray.wait(list(run.inflight), num_returns=1, timeout=_WAIT_S)
                for ref in ready:
                    result = self._collect(run, ref)
                    if result is not None and merger.accept(result):
                        run.results[result.index] = result.summary
                        run.by_node[result.node_id] += 1
                        if self.on_range is not None:
                            self.on_range(result)
                        if on_progress is not None:
                            elapsed = time.monotonic() - t0
                            on_progress(merger.frames, total, merger.frames / elapsed if elapsed > 0 else 0.0)
        finally:
            self._stop(run, merger)
            merger.close()
            self._forget(run)
        return self._summary(run, merger, total, time.monotonic() - t0, cancel.is_set())

    def warm(self, models: list[str]) -> None:
        """Every worker up, with ``models`` loaded (benchmarks time the work, not the start)."""
        import ray

        ray.get([w.actor.stateful.options(concurrency_group="work").remote(list(models))
                 for w in self.pool.sync(force=True)])

    def _stateful(self, models: list[str]) -> bool:
        """Ask a worker (it loads the models: the first ranges find them warm)."""
        import ray

        for worker in self.pool.sync(force=True):
            try:
                return bool(ray.get(worker.actor.stateful.options(concurrency_group="work").remote(models)))
            except ray.exceptions.RayTaskError as exc:
                raise _cause(exc) from None  # an unknown model, a missing dependency
            except ray.exceptions.RayError:
                self.pool.drop(worker)
        raise SourceError("no task worker is alive on the cluster", details={"phase": "open"})

    def _acquire(self) -> Worker | None:
        current = self.pool.sync()  # may ask Ray for the nodes: not under the lock
        with self._lock:
            workers = [w for w in current if w.free > 0]
            if not workers:
                return None
            worker = max(workers, key=lambda w: w.free)
            worker.busy += 1
            return worker

    def _release(self, worker: Worker) -> None:
        with self._lock:
            worker.busy = max(0, worker.busy - 1)

    def _dispatch(self, run: _Run, source: str, models: list[str], every: int, max_fps: float | None,
                  video: bool, stall_timeout: float | None) -> None:
        while run.pending:
            worker = self._acquire()
            if worker is None:
                return
            r = run.pending.popleft()
            job = RangeJob(run.run_id, r.index, r.start, r.end, r.first, source, tuple(models), every,
                           max_fps, video, stall_timeout)
            ref = worker.actor.run_range.options(concurrency_group="work").remote(job)
            run.inflight[ref] = (r, worker)
            run.attempts[r.index] += 1
            with self._lock:
                self._running[(run.run_id, r.index)] = (run.task_id, worker.node_id)

    def _collect(self, run: _Run, ref: Any) -> RangeResult | None:
        """The result behind ``ref``; a lost range goes back to the queue (None)."""
        import ray

        r, worker = run.inflight.pop(ref)
        self._release(worker)
        with self._lock:
            self._running.pop((run.run_id, r.index), None)
        try:
            result: RangeResult = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # raised by the pipeline: the task fails
            run.error = _cause(exc).message
            return None
        except ray.exceptions.RayError as exc:  # the worker or its node died: redo elsewhere
            self.pool.drop(worker)
            if run.attempts[r.index] >= MAX_ATTEMPTS:
                run.error = (f"frames {r.start}..{r.end} were lost {MAX_ATTEMPTS} times "
                             "(nodes or workers died)")
                return None
            log.warning("task %s: range %d (frames %s..%s) lost on node %s (%s); redone elsewhere",
                        run.task_id, r.index, r.start, r.end, worker.node_id[:12], type(exc).__name__)
            run.redone += 1
            run.pending.appendleft(r)
            return None
        result.task_id = run.task_id
        if result.error is not None:
            run.error = result.error
            return None
        return result

    def _stop(self, run: _Run, merger: RangeMerger) -> None:
        """Tell the workers to stop this attempt's ranges; wait for them (bounded) and keep the
        complete ones, so a cancel keeps every finished range of the prefix."""
        import ray

        if not run.inflight:
            return
        for worker in {id(w): w for _, w in run.inflight.values()}.values():
            try:
                worker.actor.cancel.options(concurrency_group="control").remote(run.run_id)
            except Exception:  # noqa: BLE001 - a dead worker has nothing to stop
                log.debug("cancel of task %s on node %s failed", run.task_id, worker.node_id[:12])
        deadline = time.monotonic() + self.settings.drain_timeout_seconds
        while run.inflight and time.monotonic() < deadline:
            ready, _ = ray.wait(list(run.inflight), num_returns=1, timeout=_WAIT_S)
            for ref in ready:
                error = run.error
                result = self._collect(run, ref)
                run.error = error  # the first error is the task's
                if result is not None and merger.accept(result):
                    run.results[result.index] = result.summary
                    run.by_node[result.node_id] += 1
        for r, worker in run.inflight.values():
            self._release(worker)
            with self._lock:
                self._running.pop((run.run_id, r.index), None)
        run.inflight.clear()

    def _forget(self, run: _Run) -> None:
        """Drop the attempt's cancel flag on every worker (fire and forget)."""
        for worker in self.pool.workers():
            try:
                worker.actor.forget.options(concurrency_group="control").remote(run.run_id)
            except Exception:  # noqa: BLE001 - a dead worker holds nothing
                log.debug("forget of task %s on node %s failed", run.task_id, worker.node_id[:12])

    def _summary(self, run: _Run, merger: RangeMerger, total: int, duration: float,
                 cancelled: bool) -> ClusterJobSummary:
        frames = merger.saved_frames  # all of them when every range is done; else the prefix kept
        parts = [run.results[i] for i in range(merger.promoted)]
        weight = max(1, sum(int(p.get("frames", 0)) for p in parts))

        def mean(key: str) -> float:
            return round(sum(float(p.get(key, 0.0)) * int(p.get("frames", 0)) for p in parts) / weight, 3)

        return ClusterJobSummary(
            frames=frames,
            detections=sum(int(p.get("detections", 0)) for p in parts),
            fps=round(frames / duration, 3) if duration > 0 else 0.0,
            latency_p50_ms=mean("latency_p50_ms"),
            latency_p99_ms=max((float(p.get("latency_p99_ms", 0.0)) for p in parts), default=0.0),
            drops=sum(int(p.get("drops", 0)) for p in parts),
            duration_s=round(duration, 3),
            error=run.error,
            state="failed" if run.error else "stopped",
            cancelled=cancelled and run.error is None,
            frames_total=total,
            inference_ms_p50=mean("inference_ms_p50"),
            cluster={"ranges": len(run.ranges), "ranges_done": len(parts), "redone": run.redone,
                     "nodes": dict(run.by_node)},
        )


def _cause(exc: Any) -> AISPError:
    """The AISP error inside a ``RayTaskError`` (its message is what the task shows), or one
    built from whatever was raised."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, AISPError):
        return cause
    return AISPError(f"{type(cause).__name__ if cause else 'error'}: {cause or exc}")


def _expected(frames: int, start: int, every: int, max_fps: float | None, fps: float | None) -> int:
    """Frames the task will process (as :func:`aisp.pipeline.job.expected_frames` counts)."""
    n = max(0, math.ceil((frames - start) / every))
    if max_fps and fps and max_fps * every < fps:
        n = math.ceil(n * max_fps * every / fps)
    return n
