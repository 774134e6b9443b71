"""Prewarm: load a set of models in parallel before they are needed.

``cache.prewarm({"name": loader, ...})`` or ``cache.prewarm(["face_detection", ...])``; names are
turned into loaders by the resolver set with :func:`set_name_resolver` (``aisp.models`` sets it
when imported; without one, ``aisp.models`` is imported first). Each model's result (``ok`` or
``failed`` with its reason, or ``timeout``) and load time go into a :class:`PrewarmReport`; one
failure does not stop the others. ``background=True`` returns a :class:`PrewarmHandle` at once.

Loads run on daemon worker threads through :meth:`ModelCache.get_or_load`, so a prewarm and a
request for the same model share one load.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aisp.cache.events import CacheEvent, dispatch

if TYPE_CHECKING:  # pragma: no cover
    from aisp.cache.model_cache import ModelCache

__all__ = [
    "PrewarmHandle",
    "PrewarmReport",
    "PrewarmResult",
    "Resolver",
    "get_name_resolver",
    "resolve_loader",
    "run_prewarm",
    "set_name_resolver",
]

logger = logging.getLogger("aisp.cache")

Resolver = Callable[[str], Callable[[], Any]]
_resolver: Resolver | None = None


def set_name_resolver(fn: Resolver | None) -> None:
    """Set the process-wide ``fn(name) -> loader`` used by ``prewarm([...names])`` (``None`` unsets)."""
    global _resolver
    if fn is not None and not callable(fn):
        raise TypeError(f"name resolver must be callable, got {type(fn).__name__}")
    _resolver = fn


def get_name_resolver() -> Resolver | None:
    return _resolver


def resolve_loader(name: str, resolver: Resolver | None = None) -> Callable[[], Any]:
    """The loader for ``name``; ``LookupError`` when no registry is available, or the resolver's error."""
    fn = resolver or _resolver
    if fn is None:
        try:
            models = importlib.import_module("aisp.models")
            install = getattr(models, "install_cache_resolver", None)
            if _resolver is None and callable(install):
                install()
        except ImportError as exc:
            raise LookupError(
                f"no model registry to resolve {name!r}: importing aisp.models failed: {exc}"
            ) from exc
        fn = _resolver
    if fn is None:
        raise LookupError(f"no model registry to resolve {name!r}: no name resolver is set")
    loader = fn(name)
    if not callable(loader):
        raise TypeError(
            f"the name resolver returned a {type(loader).__name__} for {name!r}, expected a loader"
        )
    return loader


@dataclass
class PrewarmResult:
    name: str
    status: str = "pending"  # pending | ok | failed | timeout
    error: str | None = None
    load_ms: float | None = None
    already_cached: bool = False

    def to_dict(self) -> dict[str, Any]:
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

    def to_dict(self) -> dict[str, Any]:
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


def _normalise(models: Any, resolver: Resolver | None) -> list[tuple[str, Callable[[], Any] | None]]:
    from aisp.cache._internal import check_name as _check_name

    if isinstance(models, str):
        models = [models]
    if isinstance(models, Mapping):
        items: list[tuple[str, Callable[[], Any] | None]] = []
        for name, loader in models.items():
            _check_name(name)
            if not callable(loader):
                raise TypeError(f"loader for model {name!r} must be callable, got {type(loader).__name__}")
            items.append((name, loader))
        return items
    if not isinstance(models, Iterable):
        raise TypeError(
            f"models must be a mapping of name to loader or a list of names, got {type(models).__name__}"
        )
    seen: dict[str, None] = {}
    for name in models:
        seen[_check_name(name)] = None
    return [(n, None) for n in seen]


def _call(cb: Callable[..., Any] | None, *args: Any) -> None:
    if cb is None:
        return
    try:
        cb(*args)
    except Exception:
        logger.warning("prewarm callback %r failed", cb, exc_info=True)


def run_prewarm(
    cache: ModelCache,
    models: Any,
    *,
    background: bool = False,
    max_workers: int = 2,
    timeout_seconds: float | None = None,
    on_progress: Callable[..., Any] | None = None,
    on_complete: Callable[..., Any] | None = None,
    resolver: Resolver | None = None,
) -> PrewarmReport | PrewarmHandle:
    """Implementation of :meth:`ModelCache.prewarm`; ``on_progress(result, done, total)``,
    ``on_complete(report)``."""
    from aisp.errors import ValidationError

    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValidationError(
            f"max_workers must be an integer >= 1, got {max_workers!r}",
            field="max_workers",
            value=max_workers,
        )
    if timeout_seconds is not None and (
        isinstance(timeout_seconds, bool)
        or not isinstance(timeout_seconds, (int, float))
        or timeout_seconds <= 0
    ):
        raise ValidationError(
            f"timeout_seconds must be > 0 or None, got {timeout_seconds!r}",
            field="timeout_seconds",
            value=timeout_seconds,
        )
    for cb_name, cb in (("on_progress", on_progress), ("on_complete", on_complete)):
        if cb is not None and not callable(cb):
            raise TypeError(f"{cb_name} must be callable, got {type(cb).__name__}")
    items = _normalise(models, resolver)
    report = PrewarmReport(requested=[n for n, _ in items])
    report.results = {n: PrewarmResult(n) for n, _ in items}
    with cache._lock:
        for name, _ in items:
            cache._prewarm_requested[name] = None
            if name not in cache._entries:
                cache._prewarm_pending.add(name)
        cache._prewarm_running += 1
        cache._prewarm_last = report
    lock = threading.Lock()
    finished = threading.Event()
    all_done = threading.Event()
    state = {"done": 0}
    work: queue.SimpleQueue[tuple[str, Callable[[], Any] | None]] = queue.SimpleQueue()
    for item in items:
        work.put(item)
    started = cache._clock()
    logger.info("prewarming %d model(s): %s", len(items), ", ".join(report.requested) or "-")

    def finish() -> None:
        with lock:
            if report.finished:
                return
            for result in report.results.values():
                if result.status == "pending":
                    result.status, result.error = "timeout", f"not loaded within {timeout_seconds} s"
            report.duration_ms = (cache._clock() - started) * 1000.0
            report.finished = True
        with cache._lock:
            cache._prewarm_running -= 1
        logger.info(
            "prewarm finished in %.0f ms: %d ok, %d failed%s",
            report.duration_ms,
            len(report.loaded),
            len(report.failed),
            "".join(f"; {n}: {why}" for n, why in report.failed.items()),
        )
        if cache._listeners:
            dispatch(
                cache._listeners, [CacheEvent("prewarm_complete", None, cache._clock(), report.to_dict())]
            )
        _call(on_complete, report)
        finished.set()

    def worker() -> None:
        while True:
            try:
                name, loader = work.get_nowait()
            except queue.Empty:
                return
            result = report.results[name]
            t0 = cache._clock()
            try:
                result.already_cached = cache.contains(name)
                fn = loader if loader is not None else resolve_loader(name, resolver)
                cache.get_or_load(name, fn)
                status, error = "ok", None
            except Exception as exc:
                status, error = "failed", f"{type(exc).__name__}: {exc}"
            elapsed = (cache._clock() - t0) * 1000.0
            with lock:
                if report.finished:  # timed out already; the model is cached anyway when it loads
                    continue
                result.status, result.error, result.load_ms = status, error, elapsed
                state["done"] += 1
                done = state["done"]
            _call(on_progress, result, done, len(items))
            if done == len(items):
                all_done.set()

    if not items:
        all_done.set()
    for i in range(min(max_workers, len(items))):
        threading.Thread(target=worker, name=f"aisp-prewarm-{i}", daemon=True).start()

    def supervise() -> None:
        all_done.wait(timeout_seconds)
        finish()

    if background:
        threading.Thread(target=supervise, name="aisp-prewarm", daemon=True).start()
        return PrewarmHandle(report, finished)
    supervise()
    return report
