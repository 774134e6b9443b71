"""Startup and shutdown of one app: the heavy work, off the event loop, with timings logged.

Startup (:meth:`Lifecycle.start`, called by the lifespan, returns at once)::

    aisp-init thread:    open store ─► mark interrupted tasks ─► first admin key ─► engine
                         ─► task runner ─► restore saved streams (+ the demo stream)
    aisp-prewarm thread: load settings.prewarm models into the cache

``/ready`` is 503 until the store is open and prewarm is done (see ``READY_GATES``).
A step that fails is logged, marked ``failed`` with its message (shown by ``/ready`` and
``/api/status``) and does not stop the others.

Shutdown (:meth:`Lifecycle.shutdown`), within ``settings.drain_timeout_seconds``: stop the task
runner (running tasks become ``interrupted``, resumable), stop every stream (drain and flush
their sinks), release the models, close the store (flushes buffered events).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from aisp.api.context import AppContext

__all__ = ["Lifecycle"]

log = logging.getLogger("aisp.api")


class Lifecycle:
    def __init__(self, ctx: AppContext, *, store_factory: Callable[[str], Any] | None = None) -> None:
        self.ctx = ctx
        self._store_factory = store_factory
        self._init_thread: threading.Thread | None = None
        self._prewarm_thread: threading.Thread | None = None
        self.done = threading.Event()  # set when every startup step has finished (tests wait on it)

    # --- startup ---------------------------------------------------------------------------
    def start(self) -> None:
        from aisp.settings import get_settings, set_settings

        s = self.ctx.settings
        if get_settings() is not s:  # the model cache and the models read the process-wide settings
            set_settings(s)
        log.info("starting: auth=%s demo=%s prewarm=%s data_dir=%s", s.auth, s.demo, s.prewarm, s.data_dir)
        self._prewarm_thread = threading.Thread(
            target=self._step, args=("prewarm", self._prewarm), name="aisp-prewarm", daemon=True
        )
        self._init_thread = threading.Thread(target=self._init, name="aisp-init", daemon=True)
        self._prewarm_thread.start()
        self._init_thread.start()

    def _init(self) -> None:
        try:
            for name, fn in (
                ("store", self._open_store),
                ("engine", self._start_engine),
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

    def _open_store(self) -> str:
        from aisp.api.auth import ensure_initial_admin_key

        url = self.ctx.settings.resolved_database_url
        if self._store_factory is not None:
            store = self._store_factory(url)
        else:
            from aisp.store import Store

            store = Store(url, settings=self.ctx.settings) if _accepts_settings(Store) else Store(url)
        opened = store.open()
        store = opened if opened is not None else store
        interrupted = store.tasks.mark_interrupted()
        for rec in interrupted:
            log.warning(
                "task %s was %s when the last process stopped: now interrupted (retry resumes it "
                "at frame %s)",
                rec.id,
                "running",
                rec.frames_done,
            )
        if self.ctx.settings.auth == "on":
            ensure_initial_admin_key(store)
        self.ctx.store = store
        return "done"

    def _start_engine(self) -> str:
        from aisp.api.task_runner import TaskRunner
        from aisp.pipeline import Engine

        ctx = self.ctx
        ctx.engine = Engine(settings=ctx.settings)
        if ctx.store is not None:
            from aisp.store import make_gatherer

            ctx.tasks = TaskRunner(ctx)
            ctx.store.start_snapshots(make_gatherer(ctx.engine, ctx.cache))
        return "done"

    def _restore_streams(self) -> str:
        from aisp.api.stream_manager import StreamManager

        manager = StreamManager.of(self.ctx)
        restored = manager.restore()
        if self.ctx.settings.demo:
            manager.ensure_demo()
        return "done" if restored >= 0 else "failed"

    def _prewarm(self) -> str:
        names = list(self.ctx.settings.prewarm)
        if not names:
            return "skipped"
        from aisp.api.modelops import prewarm_api_instances, prewarm_models

        loaded, failed = prewarm_models(names)
        self.ctx.prewarm_failed.update(failed)
        if failed:
            log.error("prewarm: loaded %s, failed %s", loaded, failed)
        s = self.ctx.settings
        extra = prewarm_api_instances(loaded, s.inference_threads, capacity=s.cache_max_size)
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
        if ctx.engine is not None:
            steps.append(("streams", lambda: ctx.engine.shutdown(timeout=left())))
        steps.append(("inference", lambda: ctx.inference.shutdown()))
        steps.append(("models", _release_models))
        if ctx.store is not None:
            steps.append(("store", ctx.store.close))
        for name, fn in steps:
            t0 = time.perf_counter()
            try:
                fn()
                log.info("shutdown step %s done in %.0f ms", name, (time.perf_counter() - t0) * 1000)
            except Exception:  # noqa: BLE001 - keep closing the rest
                log.exception("shutdown step %s failed", name)


def _release_models() -> None:
    import sys

    cache_mod = sys.modules.get("aisp.cache")
    if cache_mod is None:
        return
    cache_mod.get_model_cache().clear()


def _accepts_settings(cls: Any) -> bool:
    import inspect

    try:
        return "settings" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def _is_aisp(exc: BaseException) -> bool:
    from aisp.errors import AISPError

    return isinstance(exc, AISPError)
