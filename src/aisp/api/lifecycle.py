"""Startup and shutdown of one app: the heavy work, off the event loop, with timings logged.

Startup (:meth:`Lifecycle.start`, called by the lifespan, returns at once)::

    aisp-init thread:    build the runtime from the app's settings (aisp.runtime.build) ─┬─►
                         open store ─► mark interrupted tasks ─► first admin key ─► task  │
                         runner + snapshots ─► delivery (MQTT, webhooks) ─► restore saved │
                         streams (+ the demo stream)                                       │
    aisp-prewarm thread: load settings.prewarm models into the runtime's cache  ◄──────────┘

``/ready`` is 503 until the store is open and prewarm is done (see ``READY_GATES``).
A step that fails is logged, marked ``failed`` with its message (shown by ``/ready`` and
``/api/status``) and does not stop the others.

Shutdown (:meth:`Lifecycle.shutdown`), within ``settings.drain_timeout_seconds``: stop the task
runner (running tasks become ``interrupted``, resumable), stop delivery (MQTT sends what it
buffered and publishes ``offline``; webhooks send what is due), stop every stream (drain and
flush their sinks), release the models, close the store (flushes buffered events).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aisp.api.auth import ensure_initial_admin_key
from aisp.api.context import AppContext
from aisp.api.modelops import prewarm_api_instances, prewarm_models
from aisp.api.sources import ensure_media_dir
from aisp.api.stream_manager import StreamManager
from aisp.api.task_runner import TaskRunner
from aisp.errors import AISPError

if TYPE_CHECKING:
    from aisp.runtime import StoreFactory

__all__ = ["Lifecycle"]

log = logging.getLogger("aisp.api")


class Lifecycle:
    def __init__(self, ctx: AppContext, *, store_factory: StoreFactory | None = None) -> None:
        self.ctx = ctx
        self._store_factory = store_factory
        self._init_thread: threading.Thread | None = None
        self._prewarm_thread: threading.Thread | None = None
        self.done = threading.Event()  # set when every startup step has finished (tests wait on it)

    # --- startup ---------------------------------------------------------------------------
    def start(self) -> None:
        s = self.ctx.settings
        log.info("starting: auth=%s demo=%s prewarm=%s data_dir=%s", s.auth, s.demo, s.prewarm, s.data_dir)
        self._init_thread = threading.Thread(target=self._init, name="aisp-init", daemon=True)
        self._init_thread.start()

    def _init(self) -> None:
        try:
            self._step("runtime", self._build_runtime)
            if self.ctx.runtime is None:  # nothing can run: /ready stays 503 and says why
                why = f"the runtime could not be built: {self.ctx.errors.get('runtime', '?')}"
                for name in ("store", "prewarm", "engine", "streams"):
                    self.ctx.set_component(name, "failed", why)
                return
            if self.ctx.stopping.is_set():
                self.ctx.set_component("prewarm", "skipped", "shutting down")
            else:
                self._prewarm_thread = threading.Thread(
                    target=self._step, args=("prewarm", self._prewarm), name="aisp-prewarm", daemon=True
                )
                self._prewarm_thread.start()
            for name, fn in (
                ("store", self._open_store),
                *((("cluster", self._open_cluster),) if self.ctx.cluster is not None else ()),
                ("engine", self._start_engine),
                ("delivery", self._start_delivery),
                ("streams", self._restore_streams),
            ):
                if self.ctx.stopping.is_set():
                    self.ctx.set_component(name, "skipped", "shutting down")
                    continue
                self._step(name, fn)
            if self._prewarm_thread is not None:
                self._prewarm_thread.join()
            log.info("startup finished in %.0f ms: %s", self.ctx.uptime_s() * 1000, self.ctx.components)
        finally:
            self.done.set()

    def _step(self, name: str, fn: Callable[[], str | None]) -> None:
        ctx = self.ctx
        ctx.set_component(name, "running")
        t0 = time.perf_counter()
        try:
            outcome = fn() or "done"
        except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others
            ms = (time.perf_counter() - t0) * 1000
            ctx.timings_ms[name] = round(ms, 1)
            ctx.set_component(name, "failed", f"{type(exc).__name__}: {exc}")
            log.error("startup step %s failed after %.0f ms: %s", name, ms, exc, exc_info=not _is_aisp(exc))
            return
        ms = (time.perf_counter() - t0) * 1000
        ctx.timings_ms[name] = round(ms, 1)
        ctx.set_component(name, outcome)
        log.info("startup step %s: %s in %.0f ms", name, outcome, ms)

    def _build_runtime(self) -> str:
        # imported here, not at the top: the runtime pulls numpy, OpenCV and the pipeline, and the
        # app must answer /health before those are imported. The store comes in its own step.
        from aisp.runtime import build

        # the plan the context sized its inference pool and batcher with: one plan object for the app
        runtime = build(self.ctx.settings, store=False, plan=self.ctx.cpu_plan)
        self.ctx.event_fanout.attach(runtime.events)
        self.ctx.runtime = runtime
        ensure_media_dir(self.ctx.settings)  # where the API's file sources live (AISP_MEDIA_DIRS)
        return "done"

    def _open_store(self) -> str:
        from aisp.runtime import make_store

        store = make_store(self.ctx.settings, self._store_factory).open()
        try:
            for rec in store.tasks.mark_interrupted():
                log.warning(
                    "task %s was running when the last process stopped: now interrupted (retry "
                    "resumes it at frame %s)",
                    rec.id,
                    rec.frames_done,
                )
            if self.ctx.settings.auth == "on":
                ensure_initial_admin_key(store, self.ctx.settings.data_dir)
        except BaseException:
            store.close()  # its writer and retention threads must not outlive a failed start
            raise
        self.ctx.runtime = runtime = self.ctx.require_runtime().with_store(store)
        runtime.events.subscribe("store", store.event_writer.submit)  # discrete events, batched
        self.ctx.store = store
        return "done"

    def _open_cluster(self) -> str:
        """Ray (AISP_RAY_ADDRESS): connect, refuse SQLite across nodes, start the cluster's parts.
        A cluster that cannot be reached fails this step; /ready says why."""
        self.ctx.cluster.open(self.ctx)
        return "done"

    def _start_engine(self) -> str:
        ctx = self.ctx
        runtime = ctx.require_runtime()
        ctx.engine = runtime.engine
        if ctx.store is not None:
            ctx.tasks = TaskRunner(ctx)
            ctx.store.start_snapshots(runtime.sample)
        return "done"

    def _start_delivery(self) -> str:
        """MQTT (when ``mqtt_url`` is set) and webhooks (when the store is open) follow the
        runtime's event bus."""
        from aisp import __version__
        from aisp.delivery import DeliveryService

        ctx = self.ctx
        if not ctx.settings.mqtt_url and ctx.store is None:
            return "skipped"
        service = DeliveryService(ctx.settings, ctx.require_runtime().events, store=ctx.store,
                                  version=__version__)
        ctx.delivery = service  # set first: if MQTT cannot start, the webhooks still run
        service.start()
        return "done"

    def _restore_streams(self) -> str:
        manager = StreamManager.of(self.ctx)
        restored = manager.restore()
        if self.ctx.settings.demo:
            manager.ensure_demo()
        return "done" if restored >= 0 else "failed"

    def _prewarm(self) -> str:
        names = list(self.ctx.settings.prewarm)
        if not names:
            return "skipped"
        runtime = self.ctx.require_runtime()
        loaded, failed = prewarm_models(runtime, names)
        self.ctx.prewarm_failed.update(failed)
        if failed:
            log.error("prewarm: loaded %s, failed %s", loaded, failed)
        pool = self.ctx.inference
        threads = pool.threads if pool is not None else self.ctx.cpu_plan.api_threads
        extra = prewarm_api_instances(runtime.models, loaded, threads,
                                      capacity=self.ctx.settings.cache_max_size)
        if extra:
            log.info("prewarm: per-thread instances for the frames route: %s", extra)
        return "done"

    def wait_started(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    # --- shutdown --------------------------------------------------------------------------
    def shutdown(self) -> None:
        ctx = self.ctx
        ctx.stopping.set()
        budget = ctx.settings.drain_timeout_seconds
        t0 = time.perf_counter()
        worker = threading.Thread(
            target=self._shutdown_steps, args=(budget,), name="aisp-shutdown", daemon=True
        )
        worker.start()
        worker.join(budget + 1.0)
        ms = (time.perf_counter() - t0) * 1000
        if worker.is_alive():
            log.error("shutdown did not finish within drain_timeout_seconds=%.1f; exiting anyway", budget)
        else:
            log.info("shutdown finished in %.0f ms", ms)

    def _shutdown_steps(self, budget: float) -> None:
        ctx = self.ctx
        deadline = time.monotonic() + budget
        if self._init_thread is not None:
            self._init_thread.join(max(0.0, min(budget / 4, deadline - time.monotonic())))

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        steps: list[tuple[str, Callable[[], None]]] = []
        if ctx.tasks is not None:
            steps.append(("tasks", lambda: ctx.tasks.shutdown(timeout=left() / 2)))
        steps.append(("inference", lambda: ctx.inference.shutdown()))
        if ctx.delivery is not None:
            steps.append(("delivery", lambda: ctx.delivery.close(timeout=min(5.0, left() / 3))))
        if ctx.cluster is not None:  # before the store: the cluster's parts may still write to it
            steps.append(("cluster", ctx.cluster.close))
        runtime = ctx.runtime
        if runtime is not None:  # streams (drained), models, store (buffered events written)
            steps.append(("runtime", lambda: runtime.close(timeout=left())))
        video = getattr(ctx, "_video_outputs", None)
        if video is not None:  # after the streams: their last clips are finished first
            steps.append(("video", video.close))
        for name, fn in steps:
            t0 = time.perf_counter()
            try:
                fn()
                log.info("shutdown step %s done in %.0f ms", name, (time.perf_counter() - t0) * 1000)
            except Exception:  # noqa: BLE001 - keep closing the rest
                log.exception("shutdown step %s failed", name)


def _is_aisp(exc: BaseException) -> bool:
    return isinstance(exc, AISPError)
