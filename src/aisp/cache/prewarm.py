"""Prewarm: load a set of models in parallel before they are needed.

``cache.prewarm({key: loader, ...})``, or ``cache.prewarm([key, ...], resolver=fn)`` where
``fn(ModelKey) -> loader`` (the model registry hands its own in). There is no process-wide
resolver: names without a resolver are a :class:`~aisp.errors.ValidationError` at once. Each
model's result (``ok``, ``failed`` with its reason, or ``timeout``) and load time go into a
:class:`PrewarmReport`; one failure does not stop the others. ``background=True`` returns a
:class:`PrewarmHandle` at once.

Loads run on daemon worker threads through the target's ``get_or_load`` (:class:`PrewarmTarget`,
the cache), so a prewarm and a request for the same model share one load.
:class:`PrewarmTracker` is the cache's record of what prewarm asked for and what is still
missing (``is_warmed_up``); a model counts as warmed once it is inserted, by the prewarm or by
any later call. The report is the shown form and is keyed by the keys' text.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aisp.cache.config import check_key
from aisp.cache.keys import ModelKey
from aisp.errors import ValidationError

__all__ = [
    "Loader",
    "PrewarmHandle",
    "PrewarmJobs",
    "PrewarmOptions",
    "PrewarmReport",
    "PrewarmResult",
    "PrewarmState",
    "PrewarmTarget",
    "PrewarmTracker",
    "Resolver",
    "new_report",
    "prewarm_jobs",
    "run_prewarm",
]

logger = logging.getLogger("aisp.cache")

Loader = Callable[[], object]
#: ``fn(key) -> loader``: turns a model key into the function that loads it.
Resolver = Callable[[ModelKey], Loader]
#: ``(key, loader)`` pairs; ``None`` where the resolver supplies the loader.
PrewarmJobs = list[tuple[ModelKey, Loader | None]]
ProgressCallback = Callable[["PrewarmResult", int, int], object]
CompleteCallback = Callable[["PrewarmReport"], object]


class PrewarmTarget(Protocol):
    """What prewarm loads through (the cache)."""

    def get_or_load(self, key: ModelKey, loader: Loader) -> object: ...

    def contains(self, key: ModelKey) -> bool: ...


@dataclass
class PrewarmResult:
    name: str
    status: str = "pending"  # pending | ok | failed | timeout
    error: str | None = None
    load_ms: float | None = None
    already_cached: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "error": self.error,
            "load_ms": None if self.load_ms is None else round(self.load_ms, 3),
            "already_cached": self.already_cached,
        }


@dataclass
class PrewarmReport:
    requested: list[str]
    results: dict[str, PrewarmResult] = field(default_factory=dict)
    duration_ms: float | None = None
    finished: bool = False

    @property
    def ok(self) -> bool:
        return self.finished and all(r.status == "ok" for r in self.results.values())

    @property
    def loaded(self) -> list[str]:
        return [n for n in self.requested if self.results[n].status == "ok"]

    @property
    def failed(self) -> dict[str, str]:
        return {n: r.error or r.status for n, r in self.results.items() if r.status in ("failed", "timeout")}

    def to_dict(self) -> dict[str, object]:
        return {
            "requested": list(self.requested),
            "ok": self.ok,
            "finished": self.finished,
            "loaded": self.loaded,
            "failed": self.failed,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
            "results": {n: r.to_dict() for n, r in self.results.items()},
        }


class PrewarmHandle:
    """A background prewarm: ``wait()``, ``done()``, ``result()`` and a live ``report``."""

    def __init__(self, report: PrewarmReport, finished: threading.Event) -> None:
        self.report = report
        self._finished = finished

    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def result(self, timeout: float | None = None) -> PrewarmReport:
        if not self._finished.wait(timeout):
            raise TimeoutError(f"prewarm of {self.report.requested} still running after {timeout} s")
        return self.report


@dataclass(frozen=True, slots=True)
class PrewarmState:
    """Every key prewarm asked for (in request order), those not loaded since, the last report."""

    requested: tuple[ModelKey, ...]
    pending: tuple[ModelKey, ...]
    last_report: PrewarmReport | None

    @property
    def warmed(self) -> tuple[ModelKey, ...]:
        return tuple(k for k in self.requested if k not in self.pending)

    @property
    def is_warmed_up(self) -> bool:
        return not self.pending

    def to_dict(self) -> dict[str, object]:
        return {
            "requested": [str(k) for k in self.requested],
            "warmed": [str(k) for k in self.warmed],
            "pending": [str(k) for k in self.pending],
            "is_warmed_up": self.is_warmed_up,
            "last_report": None if self.last_report is None else self.last_report.to_dict(),
        }


class PrewarmTracker:
    """Requested and still-pending prewarm keys. Not thread-safe: the cache calls it under its lock."""

    __slots__ = ("_requested", "_pending", "_last")

    def __init__(self) -> None:
        self._requested: dict[ModelKey, None] = {}  # an ordered set
        self._pending: set[ModelKey] = set()
        self._last: PrewarmReport | None = None

    def request(
        self, keys: Iterable[ModelKey], report: PrewarmReport, cached: Callable[[ModelKey], bool]
    ) -> None:
        """A prewarm of ``keys`` starts; those not ``cached`` yet are pending until :meth:`loaded`."""
        for key in keys:
            self._requested[key] = None
            if not cached(key):
                self._pending.add(key)
        self._last = report

    def loaded(self, key: ModelKey) -> None:
        """``key`` was inserted into the cache."""
        if self._pending:
            self._pending.discard(key)

    def state(self) -> PrewarmState:
        pending = self._pending
        return PrewarmState(
            tuple(self._requested), tuple(k for k in self._requested if k in pending), self._last
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PrewarmOptions:
    """How a prewarm runs: on ``max_workers`` threads, in the ``background`` or not, giving up on
    unfinished models after ``timeout_seconds``, with ``on_progress(result, done, total)`` and
    ``on_complete(report)``. A bad option is a ``ValidationError`` or ``TypeError`` naming it."""

    background: bool = False
    max_workers: int = 2
    timeout_seconds: float | None = None
    on_progress: ProgressCallback | None = None
    on_complete: CompleteCallback | None = None

    def __post_init__(self) -> None:
        workers, timeout = self.max_workers, self.timeout_seconds
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValidationError(
                f"max_workers must be an integer >= 1, got {workers!r}", field="max_workers", value=workers
            )
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise ValidationError(
                f"timeout_seconds must be > 0 or None, got {timeout!r}",
                field="timeout_seconds",
                value=timeout,
            )
        for cb_name, cb in (("on_progress", self.on_progress), ("on_complete", self.on_complete)):
            if cb is not None and not callable(cb):
                raise TypeError(f"{cb_name} must be callable, got {type(cb).__name__}")


def prewarm_jobs(
    models: Mapping[ModelKey | str, Loader] | Iterable[ModelKey | str] | ModelKey | str,
    resolver: Resolver | None,
) -> PrewarmJobs:
    """``models`` as ``(key, loader)`` pairs (duplicates dropped); with keys only, a resolver is
    required (``ValidationError`` naming ``resolver`` otherwise)."""
    if resolver is not None and not callable(resolver):
        raise TypeError(f"resolver must be callable, got {type(resolver).__name__}")
    if isinstance(models, (str, ModelKey)):
        models = [models]
    if isinstance(models, Mapping):
        jobs: dict[ModelKey, Loader | None] = {}
        for key, loader in models.items():
            if not callable(loader):
                got = type(loader).__name__
                raise TypeError(f"loader for model {str(key)!r} must be callable, got {got}")
            jobs[check_key(key)] = loader
        return list(jobs.items())
    if not isinstance(models, Iterable):
        raise TypeError(
            f"models must be a mapping of key to loader or a list of keys, got {type(models).__name__}"
        )
    keys = list(dict.fromkeys(check_key(key) for key in models))
    if keys and resolver is None:
        raise ValidationError(
            f"cannot prewarm {[str(k) for k in keys]} by name without a resolver: pass "
            "resolver=fn(key) -> loader (the model registry's), or a mapping of key to loader",
            field="resolver",
            value=None,
            expected="a callable ModelKey -> loader",
        )
    return [(key, None) for key in keys]


def _resolve(key: ModelKey, resolver: Resolver) -> Loader:
    loader = resolver(key)
    if not callable(loader):
        got = type(loader).__name__
        raise TypeError(f"the resolver returned a {got} for {str(key)!r}, expected a loader")
    return loader


def _call(cb: Callable[..., object] | None, *args: object) -> None:
    if cb is None:
        return
    try:
        cb(*args)
    except Exception:
        logger.warning("prewarm callback %r failed", cb, exc_info=True)


def run_prewarm(
    target: PrewarmTarget,
    jobs: PrewarmJobs,
    report: PrewarmReport,
    options: PrewarmOptions,
    *,
    resolver: Resolver | None,
    clock: Callable[[], float],
    on_finished: Callable[[PrewarmReport], object],
) -> PrewarmReport | PrewarmHandle:
    """Load ``jobs`` into ``target`` as ``options`` say, filling ``report``; when all are done (or
    the time is up) ``on_finished(report)`` (the cache's event), then ``options.on_complete``."""
    timeout_seconds, on_progress = options.timeout_seconds, options.on_progress
    lock = threading.Lock()
    finished = threading.Event()
    all_done = threading.Event()
    state = {"done": 0}
    work: queue.SimpleQueue[tuple[ModelKey, Loader | None]] = queue.SimpleQueue()
    for job in jobs:
        work.put(job)
    started = clock()
    logger.info("prewarming %d model(s): %s", len(jobs), ", ".join(report.requested) or "-")

    def finish() -> None:
        with lock:
            if report.finished:
                return
            for result in report.results.values():
                if result.status == "pending":
                    result.status, result.error = "timeout", f"not loaded within {timeout_seconds} s"
            report.duration_ms = (clock() - started) * 1000.0
            report.finished = True
        logger.info(
            "prewarm finished in %.0f ms: %d ok, %d failed%s",
            report.duration_ms,
            len(report.loaded),
            len(report.failed),
            "".join(f"; {n}: {why}" for n, why in report.failed.items()),
        )
        _call(on_finished, report)
        _call(options.on_complete, report)
        finished.set()

    def worker() -> None:
        while True:
            try:
                key, loader = work.get_nowait()
            except queue.Empty:
                return
            result = report.results[str(key)]
            t0 = clock()
            try:
                result.already_cached = target.contains(key)
                fn = loader if loader is not None else _resolve(key, resolver)  # type: ignore[arg-type]
                target.get_or_load(key, fn)
                status, error = "ok", None
            except Exception as exc:
                status, error = "failed", f"{type(exc).__name__}: {exc}"
            elapsed = (clock() - t0) * 1000.0
            with lock:
                if report.finished:  # timed out already; the model is cached anyway when it loads
                    continue
                result.status, result.error, result.load_ms = status, error, elapsed
                state["done"] += 1
                done = state["done"]
            _call(on_progress, result, done, len(jobs))
            if done == len(jobs):
                all_done.set()

    if not jobs:
        all_done.set()
    for i in range(min(options.max_workers, len(jobs))):
        threading.Thread(target=worker, name=f"aisp-prewarm-{i}", daemon=True).start()

    def supervise() -> None:
        all_done.wait(timeout_seconds)
        finish()

    if options.background:
        threading.Thread(target=supervise, name="aisp-prewarm", daemon=True).start()
        return PrewarmHandle(report, finished)
    supervise()
    return report


def new_report(jobs: PrewarmJobs) -> PrewarmReport:
    """An empty report for ``jobs``: every model ``pending``."""
    names = [str(key) for key, _ in jobs]
    return PrewarmReport(requested=names, results={n: PrewarmResult(n) for n in names})
