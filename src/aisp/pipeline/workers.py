"""The inference workers shared by all streams.

Each worker takes a batch of frames of one stream from the scheduler, runs the stream's
models on it (``infer_batch`` when a model supports batches), annotates the frames when a
sink wants pixels, and hands the results to the stream's :class:`WorkerJob` (its ``deliver``
callable). Every frame taken produces a result, an error result if a model failed, so the
stream's reorder buffer never waits for a hole. Worker ``i`` asks the loader for instance
``f"w{i}"``: a backend that is not thread-safe (MediaPipe) gets one instance per worker, a
thread-safe one is shared (the loader's owner, the model registry, decides).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from aisp.errors import ModelLoadError
from aisp.models import Model, ModelResult
from aisp.models.annotate import annotate
from aisp.pipeline._describe import describe
from aisp.pipeline.frame_types import Frame, FrameResult
from aisp.pipeline.scheduler import Scheduler

__all__ = ["Loader", "WorkerJob", "WorkerPool", "annotate_frame", "worker_instance"]

log = logging.getLogger("aisp.pipeline")

#: ``loader(name, instance)``: the model ``name`` for the worker ``instance`` (``"w0"``, ``"w1"``...).
Loader = Callable[[str, str], Model]


def worker_instance(worker: int) -> str:
    """The instance name worker ``worker`` asks the loader for."""
    return f"w{worker}"


@dataclass(frozen=True)
class WorkerJob:
    """What the workers do with a stream's frames: run ``models`` in order, annotate the frames
    when ``needs_image``, and hand the results to ``deliver`` (the stream's reorder buffer)."""

    models: tuple[str, ...]
    needs_image: bool
    deliver: Callable[[Sequence[FrameResult]], None]


def annotate_frame(image: np.ndarray, results: Iterable[ModelResult]) -> np.ndarray:
    """The annotated RGB image (:func:`aisp.models.annotate`), a copy of the frame without results."""
    return annotate(image, list(results))


class WorkerPool:
    """``size`` worker threads serving every stream's queue; a stream is served once it has a job."""

    def __init__(self, scheduler: Scheduler, size: int, loader: Loader) -> None:
        if size < 1:
            raise ValueError(f"workers expected >= 1, got {size!r}")
        self.scheduler = scheduler
        self.size = size
        self.loader = loader
        self._jobs: dict[str, WorkerJob] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- jobs ------------------------------------------------------------------------------
    def set_job(self, stream_id: str, job: WorkerJob) -> None:
        with self._lock:
            self._jobs[stream_id] = job

    def remove_job(self, stream_id: str) -> None:
        """Forget a stream: results of frames it still had in flight are discarded."""
        with self._lock:
            self._jobs.pop(stream_id, None)

    def job(self, stream_id: str) -> WorkerJob | None:
        with self._lock:
            return self._jobs.get(stream_id)

    def check_models(self, names: Sequence[str]) -> bool:
        """Load each model for every worker now (errors surface before a stream starts, and no
        worker pays a load on its first frame); True if every model takes batches."""
        batchable = True
        for name in names:
            models = [self.loader(name, worker_instance(i)) for i in range(self.size)]
            batchable = batchable and all(bool(m.supports_batch) for m in models)
        return batchable

    # -- threads ---------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._threads:
                return
            for i in range(self.size):
                t = threading.Thread(target=self._loop, args=(i,), name=f"aisp-worker-{i}", daemon=True)
                self._threads.append(t)
                t.start()

    def join(self, timeout: float | None = None) -> bool:
        for t in list(self._threads):
            t.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def _loop(self, worker: int) -> None:
        while True:
            got = self.scheduler.get()
            if got is None:
                return
            queue, frames = got
            job = self.job(queue.stream_id)  # held until the results are handed over
            try:
                if job is None:
                    raise RuntimeError(f"stream {queue.stream_id!r} has no job")
                results = self.run(worker, frames, job.models, job.needs_image)
            except BaseException as exc:  # every frame taken must come out
                message = describe(exc)
                log.error("worker %d: stream %s: %s", worker, queue.stream_id, message)
                results = [FrameResult(f, {}, None, error=message) for f in frames]
                if not isinstance(exc, Exception):
                    if job is not None:
                        job.deliver(results)
                    raise
            if job is not None:  # None: the stream was removed before its frames were taken
                job.deliver(results)

    def run(
        self, worker: int, frames: list[Frame], models: Sequence[str], needs_image: bool
    ) -> list[FrameResult]:
        per_frame: list[dict[str, ModelResult]] = [{} for _ in frames]
        for name in models:
            model = self.loader(name, worker_instance(worker))
            if len(frames) > 1 and model.supports_batch:
                outputs = list(model.infer_batch([f.image for f in frames]))
                if len(outputs) != len(frames):
                    raise ModelLoadError(
                        f"model {name!r} returned {len(outputs)} results for a batch of {len(frames)}",
                        model_name=name,
                    )
            else:
                outputs = [model.infer(f.image) for f in frames]
            for bucket, output in zip(per_frame, outputs, strict=True):
                bucket[name] = output
        return [
            FrameResult(f, results, annotate_frame(f.image, results.values()) if needs_image else None)
            for f, results in zip(frames, per_frame, strict=True)
        ]
