"""The composition root: :func:`build` turns one :class:`~aisp.settings.Settings` into the services.

::

    settings ──► build() ──► Runtime
                               ├─ cpu      plan_from_settings(settings): the CPU budget (threads of
                               │           workers, decoders, ONNX sessions, OpenCV, the API pool)
                               ├─ cache    ModelCache.from_settings(settings)
                               ├─ models   ModelRegistry(cache, ModelConfig.from_settings(settings, cpu))
                               ├─ engine   Engine(settings, loader=models.load_instance, plan=cpu):
                               │           the live streams and every batch job (aisp run, tasks)
                               ├─ store    Store(settings.resolved_database_url, settings=settings)
                               │           (built, not opened; None with store=False)
                               ├─ system   SystemView(settings, cache)
                               ├─ events   EventBus() (discrete events: producers publish,
                                           the store, WebSockets, MQTT, webhooks subscribe)
                               └─ snapshots SnapshotWriter (event JPEGs written before the
                                           engine's events are published; None when off)

Nothing here reads a process global: ``aisp run``, ``aisp serve``, the benchmarks and a worker
process on another machine each call :func:`build` with their own settings, so two runtimes in one
process never share a model, a statistic or a stream. The store is optional because a command
that has no database (``aisp run``, the benchmarks) should not pay for SQLAlchemy's import; the
server builds its runtime without one and adds it with :meth:`Runtime.with_store` once it is open,
so that a database that is down fails the store alone.

The CPU plan is computed once here; building a runtime also applies its one process-wide part,
OpenCV's thread count (``cv2.setNumThreads``), when OpenCV is installed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from aisp.cache import ModelCache, PrewarmReport
from aisp.cpu_budget import CpuPlan, plan_from_settings
from aisp.events import EventBus
from aisp.models import ModelConfig, ModelRegistry
from aisp.pipeline import Engine, JobSummary, Source, StreamStats, run_job
from aisp.pipeline.event_snapshots import SnapshotWriter
from aisp.pipeline.job import JOB_STREAM_PREFIX
from aisp.runtime.system import SystemView
from aisp.settings import Settings, load_settings

if TYPE_CHECKING:  # the store imports SQLAlchemy: only runtimes that have one pay for it
    from aisp.store import Store

__all__ = ["Runtime", "StoreFactory", "StreamView", "apply_opencv_threads", "build", "make_snapshot_writer",
           "make_store"]

log = logging.getLogger("aisp.runtime")

#: Builds the store from its URL (tests hand in one that fails, or a slow one).
StoreFactory = Callable[[str], "Store"]


@dataclass(frozen=True)
class StreamView:
    """One stream as the status routes, the metrics and the dashboard see it."""

    id: str
    state: str
    stats: StreamStats
    #: zone counts, line counters, events by type (empty for a stream without tracking)
    analytics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Runtime:
    """The services of one AISP instance, built by :func:`build`. Close it when done."""

    settings: Settings
    cache: ModelCache
    models: ModelRegistry
    engine: Engine
    store: Store | None
    system: SystemView
    events: EventBus = field(default_factory=EventBus)
    snapshots: SnapshotWriter | None = None
    #: the CPU budget every part of this runtime was built with
    cpu: CpuPlan | None = None

    def with_store(self, store: Store) -> Runtime:
        """The same services with ``store`` (the server opens its store after the models are up,
        so that a database that is down fails the store alone, not the whole start)."""
        return replace(self, store=store)

    def prewarm(self, names: Iterable[str] | None = None) -> PrewarmReport:
        """Load ``names`` (default: the ``prewarm`` setting) into this runtime's cache, in parallel;
        returns when all are loaded or failed."""
        wanted = list(self.settings.prewarm if names is None else names)
        keys = [self.models.key(name) for name in wanted]
        report = self.cache.prewarm({key: self.models.loader(key) for key in keys})
        assert isinstance(report, PrewarmReport)  # not background: the report itself
        return report

    def run_job(self, source: str | Source, models: str | Sequence[str], **options: Any) -> JobSummary:
        """:func:`aisp.pipeline.run_job` with this runtime's settings and models (a batch task,
        ``aisp run``), on this runtime's engine: jobs and live streams share its workers, so
        concurrent tasks stay within the CPU plan. ``workers=N`` other than the engine's, or a
        ``clock`` other than the engine's, runs the job on an engine of its own (with this runtime's
        model cache)."""
        workers = options.get("workers")
        clock = options.get("clock")
        if (workers is not None and workers != self.engine.pool.size) or (
            clock is not None and clock is not self.engine.clock
        ):
            return run_job(source, models, settings=self.settings, loader=self.models.load_instance,
                           **options)
        options.pop("workers", None)
        options.pop("clock", None)
        return run_job(source, models, engine=self.engine, **options)

    def streams(self) -> list[StreamView]:
        """Every stream of the engine (batch jobs excluded) with its state and a statistics snapshot."""
        return [StreamView(s.spec.id, s.state, s.stats.snapshot(), s.analytics_stats())
                for s in self.engine.streams() if not s.spec.id.startswith(JOB_STREAM_PREFIX)]

    def sample(self) -> dict[str, float | None]:
        """One performance snapshot (the store's ``Snapshotter`` calls this periodically): total
        processed FPS and the worst latency p99 over the streams, the cache hit rate (0..1), RSS
        (MiB) and CPU (percent of one core)."""
        fps, p99 = 0.0, None
        for view in self.streams():
            stats = view.stats
            fps += stats.processed_fps
            if stats.frames_out:
                p99 = stats.latency_ms.p99 if p99 is None else max(p99, stats.latency_ms.p99)
        cache = self.cache.get_stats()
        proc = self.system.process()
        return {
            "fps": fps,
            "latency_p99": p99,
            "hit_rate": cache.hit_rate_percent / 100.0 if cache.requests else None,
            "rss": proc.rss_mb,
            "cpu": proc.cpu_percent,
        }

    def close(self, timeout: float | None = None) -> None:
        """Stop the streams, release the models, close the store. Idempotent."""
        budget = self.settings.drain_timeout_seconds if timeout is None else timeout
        deadline = time.monotonic() + budget
        self.engine.shutdown(timeout=budget)
        if self.snapshots is not None:  # write and publish the last events before the bus closes
            self.snapshots.close(timeout=max(0.1, deadline - time.monotonic()))
        self.events.close()
        self.cache.close()
        if self.store is not None:
            self.store.close(timeout=max(0.1, deadline - time.monotonic()))

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_store(settings: Settings, store_factory: StoreFactory | None = None) -> Store:
    """The store for ``settings`` (built, not opened), or ``store_factory(url)``'s."""
    url = settings.resolved_database_url
    if store_factory is not None:
        return store_factory(url)
    from aisp.store import Store  # SQLAlchemy: imported only by runtimes that have a store

    return Store(url, settings=settings)


def build(
    settings: Settings | None = None,
    *,
    store: bool = True,
    store_factory: StoreFactory | None = None,
    clock: Callable[[], float] = time.monotonic,
    events: EventBus | None = None,
    plan: CpuPlan | None = None,
) -> Runtime:
    """Build every service from ``settings`` (default: ``load_settings()``, the environment).

    ``store=False`` builds no store (``runtime.store`` is None); ``store_factory(url)`` replaces
    :class:`aisp.store.Store`; ``events`` replaces the runtime's :class:`EventBus` (a stream actor
    on a cluster hands in one that also records each event for its checkpoint); ``plan`` is the CPU
    plan to build with (default: ``plan_from_settings(settings)``; the API hands in the one its
    inference pool was sized with, so that the app has one plan object). The store is built,
    not opened: ``runtime.store.open()`` connects and migrates, so the caller decides when (the
    server does it on its start-up thread).
    """
    settings = settings if settings is not None else load_settings()
    plan = plan if plan is not None else plan_from_settings(settings)
    apply_opencv_threads(plan.opencv_threads)
    cache = ModelCache.from_settings(settings)
    models = ModelRegistry(cache, ModelConfig.from_settings(settings, plan))
    bus = events if events is not None else EventBus()
    snapshots = make_snapshot_writer(settings, bus)
    engine = Engine(settings, models.load_instance, clock, events=bus, snapshots=snapshots, plan=plan)
    the_store = make_store(settings, store_factory) if store else None
    log.debug("runtime built: cache=%r store=%s; %s", cache, "yes" if the_store is not None else "no",
              plan.describe())
    return Runtime(settings, cache, models, engine, the_store, SystemView(settings, cache), bus, snapshots,
                   cpu=plan)


def apply_opencv_threads(threads: int) -> bool:
    """``cv2.setNumThreads(threads)`` when OpenCV is installed; True if it was applied."""
    try:
        import cv2
    except ImportError:  # OpenCV is an optional dependency of the core
        return False
    cv2.setNumThreads(threads)
    return True


def make_snapshot_writer(settings: Settings, bus: EventBus) -> SnapshotWriter | None:
    """The event snapshot writer for ``settings`` (None with ``event_snapshots=false``); its thread
    starts with the first event."""
    if not settings.event_snapshots:
        return None
    return SnapshotWriter(
        settings.resolved_event_snapshot_dir,
        bus.publish,
        quality=settings.event_snapshot_quality,
        thumb_width=settings.event_thumbnail_width,
        keep_days=settings.event_snapshot_keep_days,
        max_bytes=int(settings.event_snapshot_max_mb * 1024 * 1024),
        queue_size=settings.event_snapshot_queue,
    )
