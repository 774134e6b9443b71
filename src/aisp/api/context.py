"""``AppContext``: everything one app instance owns, in ``app.state.ctx``.

The heavy parts come from one :class:`aisp.runtime.Runtime` (model cache, model registry, engine,
store, system view), built from the app's settings by the lifespan's background init
(:mod:`aisp.api.lifecycle`), so the app answers ``/health`` before numpy, OpenCV, MediaPipe or
SQLAlchemy are imported. Routes that need a part that is not there yet get 503 with
``Retry-After`` (``StoreError``/``OverloadedError``), never a hang.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aisp.api.batcher import FrameBatcher
from aisp.api.event_fanout import EventFanout
from aisp.api.metrics import ApiMetrics
from aisp.api.pixel_budget import PixelBudget
from aisp.api.reasons import public_reason
from aisp.cpu_budget import CpuPlan, plan_from_settings
from aisp.errors import OverloadedError, StoreError
from aisp.settings import Settings

if TYPE_CHECKING:  # the runtime imports numpy, OpenCV and the pipeline: built after /health is up
    from aisp.cache import ModelCache
    from aisp.models import ModelRegistry
    from aisp.pipeline import Engine
    from aisp.runtime import Runtime, StreamView
    from aisp.store import Store

__all__ = ["AppContext", "InferencePool", "READY_GATES"]

log = logging.getLogger("aisp.api")

#: Components that must be done before ``/ready`` answers 200.
READY_GATES = ("store", "prewarm")


class InferencePool:
    """A bounded thread pool for model work, off the event loop.

    At most ``threads`` jobs run and ``max(threads * queue_factor, min_waiting)`` more wait; past that,
    :meth:`submit` raises :class:`OverloadedError` (HTTP 503 with ``Retry-After``) at once
    instead of queueing without bound. Each thread has a stable index (``thread_index()``),
    used to give non-thread-safe models (MediaPipe) one instance per thread.
    """

    def __init__(self, threads: int, *, queue_factor: int = 2, min_waiting: int = 16) -> None:
        self.threads = threads
        self.capacity = threads + max(threads * queue_factor, min_waiting)
        self._counter = itertools.count()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._inflight = 0
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="aisp-infer", initializer=self._init_thread
        )

    def _init_thread(self) -> None:
        self._local.index = next(self._counter)

    def thread_index(self) -> int:
        return int(getattr(self._local, "index", 0))

    @property
    def inflight(self) -> int:
        return self._inflight

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            if self._inflight >= self.capacity:
                raise OverloadedError(
                    f"inference pool saturated: {self._inflight} requests in flight, capacity "
                    f"{self.capacity} (setting inference_threads={self.threads}); retry shortly",
                    retry_after=1,
                    details={"inflight": self._inflight, "capacity": self.capacity},
                )
            self._inflight += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)  # released when the work ends, even if the client left
        return await asyncio.wrap_future(future)

    def _release(self, _future: Any) -> None:
        with self._lock:
            self._inflight -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class AppContext:
    settings: Settings
    clock: Callable[[], float] = time.monotonic
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    #: every service of this app; None until the start-up thread has built it
    runtime: Runtime | None = None
    #: the runtime's store and engine, set once opened / started (routes 503 until then)
    store: Store | None = None
    engine: Engine | None = None
    tasks: Any = None
    auth: Any = None
    inference: InferencePool | None = None
    #: dynamic batching of the frames route (the CPU plan's ``api_batching``)
    batcher: FrameBatcher | None = None
    #: megapixels the frames route may decode at once (AISP_FRAMES_MAX_MEGAPIXELS_IN_FLIGHT)
    pixel_budget: PixelBudget | None = None
    fast_path: Any = None  # the FramesFastPath middleware, once the app has built its stack
    #: hands the runtime's events to the ``WS /ws/events`` clients (subscribed once the runtime exists)
    event_fanout: EventFanout = field(default_factory=EventFanout)
    #: MQTT and webhooks (aisp.delivery.DeliveryService), once started
    delivery: Any = None
    #: the Ray cluster (an ``aisp.api.cluster_port.ClusterPort``) when AISP_RAY_ADDRESS is set
    cluster: Any = None
    started_at: float = 0.0
    started_wall: float = field(default_factory=time.time)
    #: component -> "pending" | "running" | "done" | "failed" | "skipped"
    components: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    prewarm_failed: dict[str, str] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: the plan the context was set up with (see :attr:`cpu_plan`)
    _plan: CpuPlan | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.started_at = self.clock()
        runtime = self.runtime
        if runtime is not None and runtime.cpu is not None:
            plan = runtime.cpu
        else:  # the usual case: the runtime is built later, with this plan (aisp.api.lifecycle)
            plan = plan_from_settings(self.settings)
        self._plan = plan
        if self.inference is None:  # the CPU budget's API pool (inference_threads overrides it)
            self.inference = InferencePool(plan.api_threads)
        if self.batcher is None:
            self.batcher = FrameBatcher(plan.api_batching)
        if self.pixel_budget is None:
            self.pixel_budget = PixelBudget(
                int(self.settings.frames_max_megapixels_in_flight * 1_000_000),
                wait_seconds=self.settings.frames_budget_wait_seconds,
            )
        for name in ("runtime", *READY_GATES, "engine", "streams"):
            self.components.setdefault(name, "pending")
        self.metrics.bind(self)

    @property
    def cpu_plan(self) -> CpuPlan:
        """The app's one CPU plan: the runtime's (``runtime.cpu``) once there is a runtime; before
        that, the plan this context sized its inference pool and batcher with, which the lifespan
        builds the runtime with (the runtime comes later, on the start-up thread, so that
        ``/health`` answers before numpy and OpenCV are imported)."""
        runtime = self.runtime
        if runtime is not None and runtime.cpu is not None:
            return runtime.cpu
        assert self._plan is not None  # set by __post_init__
        return self._plan

    # --- lifecycle state -------------------------------------------------------------------
    def set_component(self, name: str, state: str, error: str | None = None) -> None:
        with self._lock:
            self.components[name] = state
            if error:
                self.errors[name] = error
            else:
                self.errors.pop(name, None)

    def pending(self) -> list[str]:
        gates = (*READY_GATES, "cluster") if self.cluster is not None else READY_GATES
        return [n for n in gates if self.components.get(n) not in ("done", "skipped")]

    def is_ready(self) -> bool:
        return not self.pending()

    def uptime_s(self) -> float:
        return max(0.0, self.clock() - self.started_at)

    # --- parts that may not exist yet ------------------------------------------------------
    def require_store(self) -> Store:
        if self.store is None:
            state = self.components.get("store", "pending")
            # any caller may read this (even one whose key is still to be verified): the reason's
            # type only, never a text that may hold the database host (aisp.api.reasons)
            error = self.errors.get("store")
            reason = public_reason(error) if error else "still opening"
            raise StoreError(
                f"the store is not available ({state}: {reason}); retry shortly",
                details={"component": "store", "state": state, "retry_after": 1},
            )
        return self.store

    def require_engine(self) -> Engine:
        if self.engine is None:
            state = self.components.get("engine", "pending")
            raise OverloadedError(
                f"the stream engine is not started yet ({state}); retry shortly",
                retry_after=1,
                details={"component": "engine", "state": state},
            )
        return self.engine

    def require_tasks(self) -> Any:
        if self.tasks is None:
            self.require_store()
            raise OverloadedError("the task runner is not started yet; retry shortly", retry_after=1)
        return self.tasks

    def require_runtime(self) -> Runtime:
        if self.runtime is None:
            state = self.components.get("runtime", "pending")
            error = self.errors.get("runtime")
            why = public_reason(error) if error else "starting"
            raise OverloadedError(
                f"the models are not available yet ({state}: {why}); "
                "retry shortly",
                retry_after=1,
                details={"component": "runtime", "state": state},
            )
        return self.runtime

    @property
    def cache(self) -> ModelCache:
        """This app's model cache (503 while the runtime is being built)."""
        return self.require_runtime().cache

    @property
    def models(self) -> ModelRegistry:
        """This app's model registry, bound to its cache (503 while the runtime is being built)."""
        return self.require_runtime().models

    def streams(self) -> list[StreamView]:
        """Every stream with its state and statistics (none before the runtime exists)."""
        return self.runtime.streams() if self.runtime is not None else []
