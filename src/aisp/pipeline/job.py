"""Batch jobs (``aisp run``, tasks): one finite source through the engine, with a summary.

:func:`run_job` and :class:`Pipeline` each run their own :class:`~aisp.pipeline.engine.Engine`.
The services it needs are handed in: ``settings`` and ``loader(name, instance)`` (the runtime
passes its own; ``aisp run`` and the task runner go through it). A library user may leave them
out: the job then reads the settings from the environment (:func:`aisp.settings.load_settings`)
and builds a private model cache and registry, which it closes when it ends. Nothing is taken
from, or left in, a process global.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aisp.models import ModelRegistry
from aisp.pipeline.engine import Engine
from aisp.pipeline.frame_types import FrameResult
from aisp.pipeline.sinks import CallbackSink, JsonlSink, Sink, VideoSink
from aisp.pipeline.source_factory import open_source
from aisp.pipeline.sources import Source
from aisp.pipeline.stats import Clock
from aisp.pipeline.stream import Stream, StreamSpec
from aisp.pipeline.workers import Loader
from aisp.settings import Settings, load_settings

__all__ = ["JobSummary", "run_job", "Pipeline"]

Progress = Callable[[int, "int | None", float], None]


@dataclass
class JobSummary:
    frames: int
    detections: int
    fps: float
    latency_p50_ms: float
    latency_p99_ms: float
    drops: int
    duration_s: float
    error: str | None = None
    state: str = "stopped"
    cancelled: bool = False
    frames_total: int | None = None
    inference_ms_p50: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Services:
    """What a job's engine runs with, and how to release what the job built for itself."""

    settings: Settings
    loader: Loader
    close: Callable[[], None]


def _services(settings: Settings | None, loader: Loader | None) -> _Services:
    """``settings`` and ``loader`` as handed in; what is missing is built privately."""
    settings = settings if settings is not None else load_settings()
    if loader is not None:
        return _Services(settings, loader, lambda: None)
    registry = ModelRegistry.from_settings(settings)
    assert registry.cache is not None  # from_settings always gives it one
    return _Services(settings, registry.load_instance, registry.cache.close)


def expected_frames(
    source: Source, *, every: int = 1, start_frame: int = 0, max_fps: float | None = None
) -> int | None:
    total = source.total_frames
    if total is None:
        return None
    n = max(0, math.ceil((total - start_frame) / every))
    if max_fps and source.fps and max_fps * every < source.fps:
        n = math.ceil(n * max_fps * every / source.fps)
    return n


def summarize(stream: Stream, duration_s: float, *, cancelled: bool = False, total: int | None = None,
              outputs: dict[str, str] | None = None) -> JobSummary:
    snap = stream.stats.snapshot()
    frames = snap.frames_out
    return JobSummary(
        frames=frames,
        detections=snap.detections,
        fps=round(frames / duration_s, 3) if duration_s > 0 else 0.0,
        latency_p50_ms=snap.latency_ms.p50,
        latency_p99_ms=snap.latency_ms.p99,
        drops=snap.dropped,
        duration_s=round(duration_s, 3),
        error=stream.last_error if stream.state == "failed" else None,
        state=stream.state,
        cancelled=cancelled,
        frames_total=total,
        inference_ms_p50=snap.inference_ms.p50,
        outputs=dict(outputs or {}),
    )


def run_job(
    source_spec: str | int | Path | Source,
    models: str | Sequence[str],
    *,
    out_video: str | Path | None = None,
    events_path: str | Path | None = None,
    workers: int | None = None,
    max_fps: float | None = None,
    every: int = 1,
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
    start_frame: int = 0,
    sinks: Sequence[Sink] = (),
    settings: Settings | None = None,
    loader: Loader | None = None,
    clock: Clock = time.monotonic,
    live: bool | None = None,
    timeout: float | None = None,
    stall_timeout: float | None = None,
) -> JobSummary:
    """Run ``models`` over every frame of a finite source; write the outputs; summarize.

    Raises SourceError(phase="open") for a source that cannot be opened and NotFoundError for
    an unknown model. A source that breaks mid-way is processed as far as it goes and the
    summary carries the error. ``cancel`` stops reading; what was processed is kept.
    ``stall_timeout`` (seconds of ``clock``): a job that reads and processes no new frame for that
    long fails with a "stalled" error (a server that stops sending, a source that keeps failing).
    Without ``settings``/``loader`` the job builds its own (see the module docstring).
    """
    source = source_spec if isinstance(source_spec, Source) else open_source(source_spec, live=live)
    services = _services(settings, loader)
    try:
        engine = Engine(services.settings, services.loader, clock, workers=workers)
    except BaseException:
        services.close()
        raise
    outputs: dict[str, str] = {}
    all_sinks: list[Sink] = list(sinks)
    if events_path is not None:
        all_sinks.append(JsonlSink(events_path))
        outputs["events"] = str(events_path)
    names = models.split(",") if isinstance(models, str) else list(models)
    spec = StreamSpec("job", source, names, max_fps=max_fps, every=every, start_frame=start_frame, live=live)
    cancelled = False
    t0 = clock()
    try:
        stream = engine.add_stream(spec, mjpeg=False)  # opens the source: errors are raised here
        total = expected_frames(source, every=every, start_frame=start_frame, max_fps=max_fps)
        if out_video is not None:
            fps = (source.fps or 30.0) / every
            video = VideoSink(out_video, fps=min(fps, max_fps) if max_fps else fps)
            all_sinks.append(video)
            outputs["video"] = str(out_video)
        if on_progress is not None:
            done = [0]

            def progress(_: FrameResult) -> None:
                done[0] += 1
                elapsed = clock() - t0
                on_progress(done[0], total, done[0] / elapsed if elapsed > 0 else 0.0)

            all_sinks.append(CallbackSink(progress))
        engine.add_sinks(spec.id, all_sinks)
        engine.start_stream(spec.id)
        deadline = None if timeout is None else time.monotonic() + timeout
        # A cancel must stop reading at once (a task's cancel is expected to leave the frames
        # after it unread), so poll briskly when one can come; 200 wake-ups/s cost nothing.
        poll = 0.005 if cancel is not None else 0.1
        mark, mark_at = (-1, -1), clock()
        while not stream.wait(poll):
            if stall_timeout is not None and not cancelled:
                now = clock()
                seen = (stream.stats.input.total, stream.stats.processed.total)
                if seen != mark:
                    mark, mark_at = seen, now
                elif now - mark_at >= stall_timeout:
                    stream.abort(f"stalled: no new frame for {now - mark_at:.1f} s "
                                 f"(task_stall_timeout_seconds={stall_timeout:g})")
                    stall_timeout = None
            if cancel is not None and cancel.is_set() and not cancelled:
                cancelled = True
                engine.stop_stream(spec.id, timeout=0)
            if deadline is not None and time.monotonic() > deadline:
                cancelled = True
                engine.stop_stream(spec.id, timeout=0)
                deadline = None
        if cancel is not None and cancel.is_set():
            cancelled = True
    finally:
        engine.shutdown(engine.settings.drain_timeout_seconds)
        services.close()
    return summarize(stream, clock() - t0, cancelled=cancelled, total=total, outputs=outputs)


class Pipeline:
    """One stream on its own engine: the simple facade.

    >>> with Pipeline("demo", "face_detection", sinks=[ListSink()]) as p:  # doctest: +SKIP
    ...     p.wait()
    """

    def __init__(self, source: str | int | Path | Source, models: str | Sequence[str], *,
                 sinks: Sequence[Sink] = (), settings: Settings | None = None, workers: int | None = None,
                 loader: Loader | None = None, clock: Clock = time.monotonic, stream_id: str = "main",
                 **spec: Any) -> None:
        names = models.split(",") if isinstance(models, str) else list(models)
        self.spec = StreamSpec(stream_id, source, names, **spec)
        self._services = _services(settings, loader)
        try:
            self.engine = Engine(self._services.settings, self._services.loader, clock, workers=workers)
        except BaseException:
            self._services.close()
            raise
        self._sinks = list(sinks)
        self.stream: Stream | None = None

    def start(self) -> Stream:
        if self.stream is None:
            self.stream = self.engine.add_stream(self.spec, self._sinks, start=True)
        return self.stream

    def wait(self, timeout: float | None = None) -> bool:
        return self.start().wait(timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Shut the engine down; then release the models this pipeline loaded for itself."""
        try:
            return self.engine.shutdown(timeout)
        finally:
            self._services.close()

    def run(self, timeout: float | None = None) -> Stream:
        """Start, wait for a finite source to end (or ``timeout``), shut down; the stream."""
        stream = self.start()
        try:
            stream.wait(timeout)
        finally:
            self.stop(self.engine.settings.drain_timeout_seconds)
        return stream

    def __enter__(self) -> Pipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(self.engine.settings.drain_timeout_seconds)
