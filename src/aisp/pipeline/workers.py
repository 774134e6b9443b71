"""The inference workers shared by all streams.

Each worker takes a batch of frames of one stream from the scheduler, runs the stream's
models on it (``infer_batch`` when a model supports batches), annotates the frames when a
sink wants pixels, and hands the results back in a callback. Every frame taken produces a
result, an error result if a model failed, so the stream's reorder buffer never waits for
a hole. Worker ``i`` asks the loader for instance ``f"w{i}"``: a backend that is not
thread-safe (MediaPipe) gets one instance per worker, a thread-safe one is shared.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from aisp.errors import AISPError, ModelLoadError
from aisp.pipeline.frame_types import Frame, FrameResult

__all__ = ["WorkerPool", "default_loader", "annotate_frame"]

log = logging.getLogger("aisp.pipeline")

Loader = Callable[[str, str], Any]


def default_loader(cache: Any = None) -> Loader:
    """Models through :func:`aisp.models.load_model`, one instance per worker where needed."""

    def load(name: str, instance: str) -> Any:
        from aisp.models import cache_key, get_spec, load_model

        if cache is None or isinstance(cache, bool):
            return load_model(name, instance=instance)
        key = cache_key(get_spec(name), instance)  # an engine-specific ModelCache
        return cache.get_or_load(key, lambda: load_model(name, instance=instance, cache=False))

    return load


def annotate_frame(image: Any, results: Iterable[Any]) -> Any:
    """The annotated RGB image (``aisp.models.annotate``), a copy of the frame without results."""
    results = list(results)
    try:
        from aisp.models.annotate import annotate
    except ImportError:  # the models area is not installed: draw the boxes ourselves
        return _draw_boxes(image, results)
    return annotate(image, results)


def _draw_boxes(image: Any, results: list[Any]) -> Any:
    import cv2

    out = image.copy()
    for result in results:
        detections = getattr(result, "detections", None)
        if detections is None:
            continue
        for x0, y0, x1, y1 in getattr(detections, "xyxy", []):
            cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)), (0, 255, 0), 2)
    return out


class WorkerPool:
    def __init__(
        self,
        scheduler: Any,
        size: int,
        loader: Loader,
        on_done: Callable[[Any, list[FrameResult]], None],
    ) -> None:
        if size < 1:
            raise ValueError(f"workers expected >= 1, got {size!r}")
        self.scheduler = scheduler
        self.size = size
        self.loader = loader
        self.on_done = on_done
        #: stream id -> (model names, needs annotated image, stream handed to ``on_done``)
        self.jobs: dict[str, tuple[list[str], bool, Any]] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def check_models(self, names: list[str]) -> bool:
        """Load each model for every worker now (errors surface before a stream starts, and no
        worker pays a load on its first frame); True if every model takes batches."""
        batchable = True
        for name in names:
            for i in range(self.size):
                model = self.loader(name, f"w{i}")
            batchable = batchable and bool(getattr(model, "supports_batch", False))
        return batchable

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
            job = self.jobs.get(queue.stream_id)  # held until the results are handed over
            target = job[2] if job is not None else None
            try:
                if job is None:
                    raise RuntimeError(f"stream {queue.stream_id!r} has no job")
                results = self.run(worker, frames, job[0], job[1])
            except BaseException as exc:  # every frame taken must come out
                message = _describe(exc)
                log.error("worker %d: stream %s: %s", worker, queue.stream_id, message)
                results = [FrameResult(f, {}, None, error=message) for f in frames]
                if not isinstance(exc, Exception):
                    self.on_done(target, results)
                    raise
            self.on_done(target, results)

    def run(
        self, worker: int, frames: list[Frame], models: list[str], needs_image: bool
    ) -> list[FrameResult]:
        per_frame: list[dict[str, Any]] = [{} for _ in frames]
        for name in models:
            model = self.loader(name, f"w{worker}")
            if len(frames) > 1 and getattr(model, "supports_batch", False):
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AISPError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"
