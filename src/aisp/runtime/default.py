"""The default runtime behind the library's convenience entry points.

``aisp.load_model("face_detection")`` and ``aisp.get_model_cache()`` are for scripts and
notebooks: they use one :class:`~aisp.runtime.Runtime` per process, built on first use from
:func:`aisp.settings.get_settings` (the environment), with no store. Nothing inside AISP uses it:
the CLI, the server and the benchmarks build their own runtime.
"""

from __future__ import annotations

import threading

from aisp.cache import ModelCache
from aisp.models import Model, ModelInfo
from aisp.runtime.build import Runtime, build
from aisp.settings import get_settings

__all__ = ["default_runtime", "reset_default_runtime", "get_model_cache", "load_model", "list_models"]

_runtime: Runtime | None = None
_lock = threading.Lock()


def default_runtime() -> Runtime:
    """The process's default runtime, built on first use (no store)."""
    global _runtime
    runtime = _runtime
    if runtime is None:
        with _lock:
            if _runtime is None:
                _runtime = build(get_settings(), store=False)
            runtime = _runtime
    return runtime


def reset_default_runtime() -> None:
    """Close and forget the default runtime (tests; cheap when there is none)."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.close(timeout=5.0)


def get_model_cache() -> ModelCache:
    """The default runtime's model cache."""
    return default_runtime().cache


def load_model(name: str, *, instance: str | None = None, cache: bool = True) -> Model:
    """Load a model by name through the default runtime's cache (``cache=False``: a fresh one).

    Raises NotFoundError (unknown name), MissingDependencyError (backend not installed, naming the
    extra), ModelLoadError (missing or corrupt file), ValidationError (bad name or instance).
    """
    return default_runtime().models.load(name, instance=instance, cache=cache)


def list_models() -> list[ModelInfo]:
    """Every registered model with its status in the default runtime."""
    return default_runtime().models.list()
