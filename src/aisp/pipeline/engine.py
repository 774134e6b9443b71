"""The engine: streams sharing a pool of inference workers.

Stages of one stream, each a thread, joined by bounded queues::

    read + decode  --(per-stream bounded queue: backpressure or drop)-->  scheduler  (reader.py)
    (one reader       priorities, stride fairness across streams
     per stream)                          |
                                          v
    inference (+ pre-process, post-process/annotate)  N workers shared by all streams,
                                          |            one model instance per worker when
                                          v            the backend is not thread-safe; batches
    reorder buffer (per stream, bounded by the in-flight limit)
                                          |
                                          v
    sink thread (one per stream, frame order): tracking, zones and lines (StreamAnalytics,
    when the spec asks for them; events to the runtime's bus), then the sinks

Stopping: the reader closes its queue (a sentinel); once the queue is drained the reorder
buffer learns the last sequence number, the sink thread releases what is left, closes the
sinks and the stream is ``stopped`` (or ``failed``). A failing stage (source, model, sink)
aborts the stream: the reader is stopped, queued frames are discarded, frames in flight
still come out, sinks are closed. Nothing waits on a queue that nobody serves.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterable, Sequence

import numpy as np

from aisp.cpu_budget import CpuPlan, plan_from_settings, reader_decode_threads
from aisp.errors import ConflictError, NotFoundError
from aisp.events import Event, EventBus
from aisp.pipeline import _gil
from aisp.pipeline._describe import describe
from aisp.pipeline.event_producer import StreamAnalytics
from aisp.pipeline.event_snapshots import SnapshotWriter
from aisp.pipeline.memory import MemoryGuard, default_budget_bytes
from aisp.pipeline.reader import read_loop
from aisp.pipeline.scheduler import Scheduler
from aisp.pipeline.sinks import Sink
from aisp.pipeline.source_factory import open_source
from aisp.pipeline.sources import Source
from aisp.pipeline.stats import Clock, StreamMeter
from aisp.pipeline.stream import Stream, StreamSpec
from aisp.pipeline.tracking import ObjectTracker
from aisp.pipeline.watchdog import Backoff, Watchdog
from aisp.pipeline.workers import Loader, WorkerJob, WorkerPool
from aisp.pipeline.zones import ZoneTracker
from aisp.settings import Settings

__all__ = ["Engine"]

log = logging.getLogger("aisp.pipeline")


class Engine:
    """Runs streams on ``workers`` shared inference threads. Thread-safe.

    ``settings`` gives the defaults (queue size, drop policy, memory budget, stall and
    reconnect timings); ``plan`` (default: the settings' :func:`~aisp.cpu_budget.plan_from_settings`)
    the threads: ``workers``, the codec threads of each reader (shared out over the readers running
    when it starts, :meth:`assign_decode_threads`), and dynamic batching (a batch of up
    to ``plan.batching.max_size`` frames, waiting at most ``max_delay_ms`` for it to fill, for models
    that take batches; one frame at a time when batching is off). ``workers`` and ``max_batch``
    override the plan. ``loader(name, instance)`` returns a model; the engine never loads one
    by itself (the runtime hands in its model registry's ``load``, tests a fake). Unknown model
    names raise :class:`~aisp.errors.NotFoundError` from the loader, at :meth:`add_stream`.
    ``clock`` stamps frames and feeds every statistic and watchdog. ``monitor_interval``
    (seconds; None: no monitor thread, tests call :meth:`check_health`) paces the memory guard
    and stall checks. ``switch_interval`` lowers the GIL switch interval while streams run (see
    :mod:`aisp.pipeline._gil`); None leaves it alone.

    ``events`` receives the discrete events (stream state changes; appeared, gone, zone and line
    events of streams with ``track``/zones/lines), through ``snapshots`` when given (which writes
    each event's snapshot before publishing it). None: a private bus nobody listens to.
    """

    def __init__(
        self,
        settings: Settings,
        loader: Loader,
        clock: Clock = time.monotonic,
        *,
        workers: int | None = None,
        queue_size: int | None = None,
        max_batch: int | None = None,
        plan: CpuPlan | None = None,
        monitor_interval: float | None = 0.25,
        memory_guard: MemoryGuard | None = None,
        switch_interval: float | None = 0.0005,
        events: EventBus | None = None,
        snapshots: SnapshotWriter | None = None,
        wall_clock: Clock = time.time,
    ) -> None:
        if switch_interval is not None and not switch_interval > 0:
            raise ValueError(f"switch interval expected > 0 seconds or None, got {switch_interval!r}")
        self.settings = settings
        self.plan = plan if plan is not None else plan_from_settings(settings)
        self.clock = clock
        self.queue_size = queue_size or settings.queue_size
        self.scheduler = Scheduler()
        self.pool = WorkerPool(self.scheduler, workers or self.plan.workers, loader)
        batching = self.plan.batching
        self.max_batch = max(1, max_batch if max_batch is not None else batching.effective_size)
        self.batch_delay = batching.max_delay_ms / 1000.0 if max_batch is None and batching.enabled else 0.0
        self.memory_guard = memory_guard or MemoryGuard(default_budget_bytes(settings.memory_budget_mb))
        self._streams: dict[str, Stream] = {}
        #: sources given codec threads that are not streams yet (a task's, opened before add_stream)
        self._assigned: weakref.WeakSet[Source] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._monitor: threading.Thread | None = None
        self._monitor_interval = monitor_interval
        self._switch_interval = switch_interval
        self._switch_held = False
        self.events = events if events is not None else EventBus()
        self.snapshots = snapshots
        self._wall = wall_clock

    # -- streams --------------------------------------------------------------------------
    def add_stream(self, spec: StreamSpec, sinks: Iterable[Sink] = (), *, mjpeg: bool = True,
                   start: bool = False) -> Stream:
        """Register a stream (models are loaded now, a file is opened now: errors surface here)."""
        with self._lock:
            if self._closing.is_set():
                raise ConflictError("the engine is shutting down")
            if spec.id in self._streams:
                raise ConflictError(f"stream {spec.id!r} already exists", details={"stream": spec.id})
        source = spec.source if isinstance(spec.source, Source) else open_source(spec.source, live=spec.live)
        if spec.live is not None and isinstance(spec.source, Source):
            source.live = spec.live
        self.assign_decode_threads(source)
        try:
            batchable = self.pool.check_models(spec.models)
            if not source.live:
                source.open()  # SourceError(phase="open") right away for a missing or unreadable file
        except BaseException:
            with self._lock:
                self._assigned.discard(source)  # not a reader after all
            raise
        stats = StreamMeter(self.clock)
        stream = Stream(spec, source, list(sinks), stats,
                        Watchdog(self.settings.stall_timeout_seconds, self.clock), mjpeg=mjpeg,
                        on_stop=self._release_queue, on_state=self._state_changed,
                        analytics=self._analytics(spec))
        stream.queue = self.scheduler.add(
            spec.id,
            priority=spec.priority,
            # live: a short queue keeps latency low (frames are dropped anyway when overloaded)
            capacity=min(self.queue_size, max(2, self.pool.size)) if source.live else self.queue_size,
            live=source.live,
            drop_policy=self.settings.drop_policy,
            max_inflight=max(2 * self.pool.size * (self.max_batch if batchable else 1), 4),
            max_batch=self.max_batch if batchable else 1,
            batch_delay=self.batch_delay if batchable and not source.live else 0.0,
            on_drained=stream.reorder.finish,
        )
        queue = stream.queue
        stats.queue_depths = lambda: {**self.scheduler.depth(queue), "reorder": len(stream.reorder)}
        with self._lock:
            if spec.id in self._streams:
                self.scheduler.remove(spec.id)
                raise ConflictError(f"stream {spec.id!r} already exists", details={"stream": spec.id})
            self._streams[spec.id] = stream
            self._assigned.discard(source)  # counted as a stream from now on
            self.pool.set_job(spec.id, self._job(stream))
        if start:
            self.start_stream(spec.id)
        return stream

    def assign_decode_threads(self, source: Source) -> int:
        """Give ``source`` its codec threads, unless it has its own; returns its count.

        The plan's ``cores + 1`` codec threads shared out over the readers running now, this one
        included (:func:`~aisp.cpu_budget.reader_decode_threads`); the ``decode_threads`` setting,
        when set, as given. Readers already running keep theirs: FFmpeg fixes a codec's thread
        count once it is open. :meth:`add_stream` calls it. A caller that opens a source before
        handing it to :meth:`add_stream` (the task runner does, to learn whether a URL is finite)
        calls it before opening; the source counts as a reader from then on."""
        with self._lock:
            if source.decode_threads is None:
                running = sum(1 for s in self._streams.values() if not s.done and s.source is not source)
                waiting = sum(1 for s in self._assigned if s is not source)
                explicit = self.plan.decode_threads if "decode_threads" in self.plan.overrides else 0
                readers = running + waiting + 1
                source.decode_threads = reader_decode_threads(self.plan.cores, readers, explicit)
                self._assigned.add(source)
            return source.decode_threads

    def add_sinks(self, stream_id: str, sinks: Iterable[Sink]) -> Stream:
        """Attach more sinks to a stream that has not started yet."""
        stream = self.get_stream(stream_id)
        if stream.threads:
            raise ConflictError(f"stream {stream_id!r} has already started; add sinks before starting it")
        stream.sinks.extend(sinks)
        stream.needs_image = any(s.needs_image for s in stream.sinks)
        self.pool.set_job(stream_id, self._job(stream))
        return stream

    # -- events -----------------------------------------------------------------------------
    def _emit(self, events: Sequence[Event], image: np.ndarray | None) -> None:
        if self.snapshots is not None:
            self.snapshots.emit(events, image)
            return
        for event in events:
            self.events.publish(event)

    def _analytics(self, spec: StreamSpec) -> StreamAnalytics | None:
        if not spec.track:
            return None
        s = self.settings

        def tracker() -> ObjectTracker:
            return ObjectTracker(min_hits=s.track_min_hits, max_lost_frames=s.track_max_lost_frames,
                                 max_distance=s.track_max_distance)

        tracker()  # a missing optional dependency (norfair) fails add_stream, not the sink thread
        return StreamAnalytics(spec.id, self._emit, zones=ZoneTracker(spec.zones, spec.lines),
                               tracker_factory=tracker, clock=self.clock, wall_clock=self._wall)

    def _state_changed(self, stream: Stream, state: str, error: str | None) -> None:
        """Every state change but ``starting`` becomes a ``stream`` event."""
        self._emit([Event("stream", stream.id, self._wall(), state=state, message=error)], None)

    @staticmethod
    def _job(stream: Stream) -> WorkerJob:
        return WorkerJob(tuple(stream.spec.models), stream.needs_image, stream.deliver)

    def get_stream(self, stream_id: str) -> Stream:
        with self._lock:
            stream = self._streams.get(stream_id)
        if stream is None:
            raise NotFoundError(f"no stream {stream_id!r}", kind="stream", key=stream_id)
        return stream

    def streams(self) -> list[Stream]:
        with self._lock:
            return list(self._streams.values())

    def start_stream(self, stream_id: str) -> Stream:
        stream = self.get_stream(stream_id)
        if stream.threads:
            return stream
        self.pool.start()
        self._start_monitor()
        with self._lock:
            if not self._switch_held and not self._closing.is_set():
                self._switch_held = _gil.acquire(self._switch_interval)
        reader = threading.Thread(target=read_loop, args=(stream, self.scheduler, self.clock, self._backoff),
                                  name=f"aisp-read-{stream.id}", daemon=True)
        sink = threading.Thread(target=self._sink_loop, args=(stream,), name=f"aisp-sink-{stream.id}",
                                daemon=True)
        stream.threads = [reader, sink]
        sink.start()
        reader.start()
        return stream

    def stop_stream(self, stream_id: str, timeout: float | None = None) -> bool:
        """Stop reading; frames in flight still reach the sinks, which are then closed."""
        stream = self.get_stream(stream_id)
        stream.request_stop()
        if not stream.threads:  # never started: nothing in flight
            self._close_sinks(stream, opened=[])
            try:
                stream.source.close()
            except Exception as exc:
                log.warning("stream %s: closing the source failed: %s", stream.id, exc)
            stream.set_state("stopped")
            return True
        return stream.wait(timeout)

    def remove_stream(self, stream_id: str, timeout: float | None = None) -> bool:
        stopped = self.stop_stream(stream_id, timeout)
        with self._lock:
            self._streams.pop(stream_id, None)
        self.pool.remove_job(stream_id)
        self.scheduler.remove(stream_id)
        return stopped

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop every stream, drain, close sinks, stop the workers. True if everything ended in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._closing.set()
        streams = self.streams()
        for stream in streams:
            stream.request_stop()
        ok = True
        for stream in streams:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if stream.threads:
                ok = stream.wait(left) and ok
                for thread in stream.threads:  # a reader blocked in a network read ends at its timeout
                    thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                    ok = ok and not thread.is_alive()
            else:
                self._close_sinks(stream, opened=[])
                stream.set_state("stopped")
        self.scheduler.shutdown()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ok = self.pool.join(left) and ok
        if self._monitor is not None:
            self._monitor.join(left)
        with self._lock:
            if self._switch_held:
                self._switch_held = False
                _gil.release()
        return ok

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(self.settings.drain_timeout_seconds)

    # -- health: memory guard and watchdogs ------------------------------------------------
    def _start_monitor(self) -> None:
        with self._lock:
            if self._monitor is not None or self._monitor_interval is None:
                return
            self._monitor = threading.Thread(target=self._monitor_loop, name="aisp-monitor", daemon=True)
            self._monitor.start()

    def _monitor_loop(self) -> None:
        while not self._closing.wait(self._monitor_interval):
            try:
                self.check_health()
            except Exception:  # the monitor must outlive a bad reading
                log.exception("engine health check failed")

    def check_health(self) -> None:
        """One round of the memory guard and the stall watchdogs (the monitor thread calls this)."""
        over = self.memory_guard.check()
        if over != self.scheduler.pressure:
            for stream_id, n in self.scheduler.set_pressure(over).items():
                try:
                    self.get_stream(stream_id).stats.record_drop(n)
                except NotFoundError:
                    pass
        now = self.clock()
        for stream in self.streams():
            if stream.live and stream.state == "running" and stream.watchdog.stalled(now):
                silence = stream.watchdog.silence(now)
                log.warning("stream %s: no frame for %.1f s; reconnecting", stream.id, silence)
                stream.request_reconnect(f"stalled: no frame for {silence:.1f} s")

    def _backoff(self) -> Backoff:
        """A fresh reconnect backoff from the settings (the reader asks for one per outage)."""
        s = self.settings
        return Backoff(s.reconnect_initial_delay_seconds, s.reconnect_max_delay_seconds,
                       s.reconnect_max_attempts)

    # -- stage: sinks -------------------------------------------------------------------------
    def _sink_loop(self, stream: Stream) -> None:
        queue = stream.queue
        assert queue is not None
        opened: list[Sink] = []
        writing = True
        try:
            for sink in stream.sinks:
                try:
                    sink.open()
                    opened.append(sink)
                except Exception as exc:
                    stream.abort(f"sink {sink!r} failed to open: {describe(exc)}")
                    writing = False
                    break
            while True:
                result = stream.reorder.pop()
                if result is None:
                    break
                self.scheduler.done(queue, 1)
                if writing and stream.analytics is not None and result.error is None:
                    try:
                        stream.analytics.process(result)
                    except Exception as exc:
                        stream.abort(f"tracking/zones failed: {describe(exc)}")
                        writing = False
                if writing:
                    for sink in opened:
                        try:
                            sink.write(result)
                        except Exception as exc:
                            stream.abort(f"sink {sink!r} failed: {describe(exc)}")
                            writing = False
                            break
                stream.stats.record_output(result.frame.captured_at, result.inference_ms,
                                           result.num_detections, error=result.error is not None)
                if result.error is not None and not stream.failed:
                    stream.abort(result.error)
        except BaseException as exc:  # pragma: no cover - a bug in this loop
            stream.abort(describe(exc))
            raise
        finally:
            if stream.analytics is not None:
                try:
                    stream.analytics.close()
                except Exception as exc:  # pragma: no cover - a bug in the analytics
                    log.warning("stream %s: ending its tracks failed: %s", stream.id, exc)
            self._close_sinks(stream, opened)
            stream.finish()

    def _close_sinks(self, stream: Stream, opened: list[Sink]) -> None:
        for sink in stream.sinks:
            try:
                sink.close()
            except Exception as exc:
                log.warning("stream %s: closing sink %r failed: %s", stream.id, sink, exc)
                if sink in opened:
                    stream.fail_at_end(f"sink {sink!r} failed to close: {describe(exc)}")

    # -- stopping -----------------------------------------------------------------------------
    def _release_queue(self, stream: Stream) -> None:
        """``on_stop`` of every stream: discard its queued frames and close its queue."""
        if stream.queue is not None:
            self.scheduler.clear(stream.queue)
            self.scheduler.close(stream.queue)
