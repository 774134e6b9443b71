"""``TaskRunner``: batch jobs (a video file, folder or URL through some models), persisted.

Stages::

    submit() ─► store.tasks.create (queued) ─► bounded queue ─► runner thread ─► run_job()
                                                                  │ on_progress ─► store.tasks.set_progress
                                                                  └ result ─► completed | failed | cancelled

Outputs go to ``<data_dir>/tasks/<id>/``: ``events.jsonl`` (one line per frame) and
``annotated.mp4``. A failed, cancelled or interrupted task (after a crash it is ``interrupted``)
is resumed by ``POST /api/tasks/{id}/retry``. The resume point is read from the outputs, not from
the throttled progress in the store: each attempt writes ``events.part-<start>.jsonl``; before
the next attempt, every complete line of the parts is folded into ``events.jsonl`` (a line cut by
a crash is dropped), and the task resumes at the source frame after the last saved event. Sinks
write in frame order, so what is on disk is always a prefix: no frame is lost or written twice,
with any ``every`` or ``max_fps``. A resumed attempt's video (``annotated.part-<start>.mp4``) is
appended to ``annotated.mp4`` without re-encoding (the files: :mod:`aisp.api.task_outputs`).

Up to ``task_concurrency`` tasks run at once, each on its own runner thread, so one slow or stuck
task does not hold the others; a task that reads and processes no new frame for
``task_stall_timeout_seconds`` fails as stalled. A task's source goes through the source policy
(:mod:`aisp.api.sources`) each time it is opened; a URL of finite media (its container announces
a duration) is read once to its end, like a file.

The annotated video is fragmented MP4 (:class:`~aisp.pipeline.sinks.VideoSink`), readable up to
its last complete fragment (at most a second) after a crash. Before a resumed attempt, the saved
segments are joined and cut to the frames whose events were saved, so the video and the events
agree and no frame is written twice.

``DELETE /api/tasks/{id}`` cancels a task if it runs and removes its outputs and record; finished
tasks older than ``task_retention_days`` are removed the same way by the store's retention sweep.

On shutdown the running tasks are stopped and marked ``interrupted`` (so a retry resumes them).

On a cluster (``AISP_RAY_ADDRESS``; ``ctx.cluster.tasks``, an
:class:`~aisp.api.cluster_port.ClusterTasksPort`), a video file's frames are split into ranges over
the nodes instead of running on this machine; the queue, the store updates, cancel, retry and the
outputs stay here and look the same (docs/cluster.md, "Batch tasks").
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aisp.api.context import AppContext
from aisp.api.sources import api_source
from aisp.api.task_outputs import (
    EVENTS,
    VIDEO,
    cut_events,
    fold_events,
    join_video,
    prepare_video,
    resume_point,
)
from aisp.api.videojoin import frames_in
from aisp.errors import AISPError, ConflictError, OverloadedError
from aisp.netpolicy import redact_text, redact_url

__all__ = ["TaskRunner", "task_view", "EVENTS", "VIDEO"]

log = logging.getLogger("aisp.api")

_QUEUE_MAX = 1000


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat()


def task_view(rec: Any, task_dir: Path | None = None) -> dict[str, Any]:
    """The API's JSON form of a ``TaskRecord``."""
    progress = rec.progress
    out = {
        "id": rec.id,
        "state": rec.state,
        "source": redact_url(rec.source),
        "models": list(rec.models),
        "params": dict(rec.params or {}),
        "progress": 0.0 if progress is None else float(progress),
        "frames_done": rec.frames_done,
        "frames_total": rec.frames_total,
        "fps": rec.fps,
        "eta_s": None if rec.eta_seconds is None else round(rec.eta_seconds, 2),
        "error": None if rec.error is None else redact_text(rec.error),
        "result": rec.result,
        "attempts": rec.attempts,
        "created_at": _iso(rec.created_at),
        "updated_at": _iso(rec.updated_at),
        "started_at": _iso(rec.started_at),
        "finished_at": _iso(rec.finished_at),
    }
    if task_dir is not None:
        out["downloads"] = {
            "events": f"/api/tasks/{rec.id}/events"
            if (task_dir / EVENTS).exists() or any(task_dir.glob("events.part-*.jsonl"))
            else None,
            "video": f"/api/tasks/{rec.id}/video" if (task_dir / VIDEO).exists() else None,
        }
    return out


class TaskRunner:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.store = ctx.require_store()
        self.root = Path(ctx.settings.data_dir) / "tasks"
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=_QUEUE_MAX)
        self._cancel: dict[str, threading.Event] = {}
        self._shutdown_ids: set[str] = set()
        self._running: set[str] = set()
        self._pending = 0  # queued or running, counted from enqueue to the end of its run
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"aisp-tasks-{i}", daemon=True)
            for i in range(ctx.settings.task_concurrency)
        ]
        for thread in self._threads:
            thread.start()
        retention = getattr(self.store, "retention", None)
        if retention is not None and ctx.settings.task_retention_days > 0:
            retention.add_job("tasks", self.sweep)

    def task_dir(self, task_id: str) -> Path:
        return self.root / task_id

    # --- API -------------------------------------------------------------------------------
    def submit(self, source: str, models: list[str], params: dict[str, Any]) -> Any:
        if self._queue.full():
            raise OverloadedError(f"task queue full ({_QUEUE_MAX} queued); retry later", retry_after=5)
        rec = self.store.tasks.create(source=source, models=models, params=params)
        self._enqueue(rec.id)
        log.info("task %s queued: %s with %s", rec.id, redact_url(source), models)
        return rec

    def _enqueue(self, task_id: str) -> None:
        with self._lock:
            self._cancel[task_id] = threading.Event()
            self._pending += 1
        try:
            self._queue.put_nowait(task_id)
        except queue.Full:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()
            self.store.tasks.update(task_id, state="interrupted", error="task queue full")
            raise OverloadedError(
                f"task queue full ({_QUEUE_MAX} queued); retry later", retry_after=5
            ) from None

    def cancel(self, task_id: str) -> Any:
        rec = self.store.tasks.get(task_id)
        if rec.state in ("completed", "failed", "cancelled"):
            raise ConflictError(
                f"task '{task_id}' is already {rec.state}", details={"task_id": task_id, "state": rec.state}
            )
        with self._lock:
            ev = self._cancel.get(task_id)
            running = task_id in self._running
        if ev is not None:
            ev.set()
        if not running:  # queued or interrupted: no thread to tell
            return self.store.tasks.cancel(task_id)
        return rec

    def retry(self, task_id: str) -> Any:
        rec = self.store.tasks.retry(task_id, resume=True)
        self._enqueue(task_id)
        log.info("task %s queued again (resumes at frame %s)", task_id, rec.frames_done)
        return rec

    def delete(self, task_id: str, timeout: float | None = None) -> None:
        """Cancel the task if it is queued or running, then remove its outputs and its record.

        404 for an unknown task; 503 (retry) if a running task did not stop within ``timeout``
        (default: the drain timeout)."""
        rec = self.store.tasks.get(task_id)
        with self._lock:
            ev = self._cancel.get(task_id)
            running = task_id in self._running
        if ev is not None:
            ev.set()
        if running:
            wait = self.ctx.settings.drain_timeout_seconds if timeout is None else timeout
            with self._idle:
                stopped = self._idle.wait_for(lambda: task_id not in self._running, wait)
            if not stopped:
                raise OverloadedError(f"task '{task_id}' is still stopping; retry the delete", retry_after=1)
        elif rec.state == "queued":
            self.store.tasks.cancel(task_id)
        self._remove(task_id)
        log.info("task %s deleted", task_id)

    def _remove(self, task_id: str) -> None:
        task_dir = self.task_dir(task_id)
        if task_dir.parent == self.root and task_dir.exists():  # ids come from the store: no "..", no "/"
            shutil.rmtree(task_dir, ignore_errors=True)
        self.store.tasks.delete(task_id)
        with self._lock:
            self._cancel.pop(task_id, None)

    def sweep(self, now: float | None = None) -> int:
        """Delete finished tasks (completed, failed, cancelled) older than ``task_retention_days``:
        their outputs and their records. The store's retention worker calls this periodically."""
        days = self.ctx.settings.task_retention_days
        if days <= 0:
            return 0
        cutoff = (time.time() if now is None else now) - days * 86400.0
        removed = 0
        for task_id in self.store.tasks.finished_before(cutoff):
            try:
                self._remove(task_id)
                removed += 1
            except AISPError as exc:  # retried or deleted meanwhile
                log.debug("task retention skipped %s: %s", task_id, exc)
        if removed:
            log.info("task retention deleted %s finished task(s) older than %g days", removed, days)
        return removed

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no task is queued or running (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            for current in self._running:
                self._shutdown_ids.add(current)
                ev = self._cancel.get(current)
                if ev is not None:
                    ev.set()
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:  # the threads see _stopping at their next task
                break
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- the runner thread -----------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            task_id = self._queue.get()
            try:
                if task_id is None or self._stopping.is_set():
                    return
                self._run(task_id)
            except Exception:  # noqa: BLE001 - the loop must survive any task
                log.exception("task %s crashed the runner step", task_id)
            finally:
                with self._idle:
                    self._running.discard(task_id)  # type: ignore[arg-type]
                    if task_id is not None:
                        self._pending -= 1
                    self._idle.notify_all()
                self._queue.task_done()

    def _run(self, task_id: str) -> None:
        rec = self.store.tasks.find(task_id)
        if rec is None or rec.state != "queued":
            return
        with self._lock:
            self._running.add(task_id)
            cancel = self._cancel.setdefault(task_id, threading.Event())
        if cancel.is_set():
            self.store.tasks.cancel(task_id)
            return
        out = self.task_dir(task_id)
        out.mkdir(parents=True, exist_ok=True)
        params = dict(rec.params or {})
        every = int(params.get("every") or 1)
        start, kept = resume_point(out, every)  # source frame to start at, frames already saved
        if params.get("video", True) and kept:
            in_video = frames_in(out / VIDEO)
            if in_video < kept:  # the crash cut the video's last fragment: redo those frames too
                cut_events(out, in_video)
                start, kept = resume_point(out, every)
            prepare_video(out, kept)
        elif params.get("video", True):
            prepare_video(out, 0)
        events_path = out / f"events.part-{start:09d}.jsonl"
        video_path = (
            (out / (VIDEO if start == 0 else f"annotated.part-{start:09d}.mp4"))
            if params.get("video", True)
            else None
        )
        split = self._split_runner(rec.source)
        self.store.tasks.start(task_id)
        log.info("task %s running from source frame %s (%s frames saved before)%s", task_id, start, kept,
                 " split over the cluster" if split is not None else "")

        def on_progress(done: int, total: int | None, fps: float | None) -> None:
            # run_job counts this attempt's frames; the task counts all of them
            self.store.tasks.set_progress(
                task_id, kept + int(done), None if total is None else kept + int(total), fps
            )

        stall = self.ctx.settings.task_stall_timeout_seconds
        try:
            if split is not None:  # frame ranges on the nodes, merged here in frame order
                summary = split.run_task(
                    task_id, rec.source, list(rec.models), task_dir=out, start=start, every=every,
                    max_fps=params.get("max_fps"), video=bool(params.get("video", True)), cancel=cancel,
                    on_progress=on_progress, stall_timeout=stall,
                )
            else:
                summary = self._run_here(rec, start, every, events_path, video_path, on_progress, cancel)
        except Exception as exc:  # noqa: BLE001 - any failure ends the task, with its message
            fold_events(out)
            join_video(out)
            msg = exc.message if isinstance(exc, AISPError) else f"{type(exc).__name__}: {exc}"
            log.warning("task %s failed: %s", task_id, msg)
            self.store.tasks.fail(task_id, msg)
            return
        self._finish(task_id, out, summary, kept, cancel)

    def _split_runner(self, source: str) -> Any:
        """The cluster's task runner (:class:`~aisp.api.cluster_port.ClusterTasksPort`) when the
        app runs on a cluster and splits this source over its nodes; else None (run here)."""
        cluster = self.ctx.cluster
        tasks = getattr(cluster, "tasks", None) if cluster is not None else None
        return tasks if tasks is not None and tasks.accepts(source) else None

    def _run_here(self, rec: Any, start: int, every: int, events_path: Path, video_path: Path | None,
                  on_progress: Any, cancel: threading.Event) -> Any:
        """One attempt of the task on this machine's runtime."""
        params = dict(rec.params or {})
        stall = self.ctx.settings.task_stall_timeout_seconds
        source = None
        try:
            runtime = self.ctx.require_runtime()
            # a URL of finite media is read like a file; opened here so the engine knows which, with
            # the codec threads the engine gives a new reader (fixed once the codec is open)
            source = api_source(self.ctx, rec.source, finite_ends=True, read_timeout=min(10.0, stall + 2.0))
            runtime.engine.assign_decode_threads(source)
            source.open()
            return runtime.run_job(
                source,
                list(rec.models),
                out_video=video_path,
                events_path=events_path,
                max_fps=params.get("max_fps"),
                every=every,
                on_progress=on_progress,
                cancel=cancel,
                start_frame=start,
                stall_timeout=stall,
            )
        except BaseException:
            if source is not None:
                source.close()  # idempotent; the engine closes it too once it owns it
            raise

    def _finish(self, task_id: str, out: Path, summary: Any, kept: int, cancel: threading.Event) -> None:
        """Fold and join the attempt's outputs; record how the task ended."""
        result = summary.to_dict()
        frames = summary.frames
        done = kept + frames
        fold_events(out)
        skipped = join_video(out)
        if skipped:
            result["video_segments_skipped"] = skipped
        if cancel.is_set():
            with self._lock:
                by_shutdown = task_id in self._shutdown_ids
            state = "interrupted" if by_shutdown else "cancelled"
            self.store.tasks.update(
                task_id,
                state=state,
                frames_done=done,
                result=result,
                error="the server shut down during the task" if by_shutdown else None,
            )
            log.info("task %s %s at frame %s", task_id, state, done)
            return
        if summary.error:
            self.store.tasks.fail(task_id, summary.error, frames_done=done, result=result)
            return
        cur = self.store.tasks.get(task_id)
        total = cur.frames_total if cur.frames_total else done
        self.store.tasks.complete(
            task_id, result, frames_done=max(done, total), frames_total=max(done, total)
        )
        log.info(
            "task %s completed: %s frames in %.1f s", task_id, frames, summary.duration_s
        )
