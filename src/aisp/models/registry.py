"""The model registry: names to specs, loading through the model cache, and status listing.

Registered names are part of the public contract: ``face_detection``, ``face_detection_full``,
``face_mesh``, ``selfie_segmentation``, ``pose``, ``hands`` (MediaPipe), ``motion`` (OpenCV),
``fake`` (no dependencies), and ``onnx:<path>`` for any ONNX file. Tests and the demo add their
own with :func:`register_model`.

Cache keys: a thread-safe model is shared under its name; a model that is not thread-safe
(MediaPipe, motion) is shared under its name by default (its lock serialises callers), and each
worker can ask for its own instance with ``instance="w1"``, cached as ``"face_detection#w1"``.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aisp.errors import AISPError, ModelLoadError, NotFoundError, ValidationError

__all__ = [
    "ModelSpec",
    "ModelInfo",
    "register_model",
    "unregister_model",
    "get_spec",
    "model_names",
    "load_model",
    "list_models",
    "cache_key",
    "resolve_loader",
    "ONNX_PREFIX",
]

logger = logging.getLogger("aisp.models")

ONNX_PREFIX = "onnx:"


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model. ``factory()`` returns a new :class:`~aisp.models.base.Model`."""

    name: str
    factory: Callable[[], Any]
    backend: str = "custom"
    thread_safe: bool = True
    description: str = ""
    requires: tuple[str, ...] = ()
    extra: str | None = None
    size_hint: Callable[[], int | None] | None = field(default=None, compare=False)


@dataclass
class ModelInfo:
    """One row of :func:`list_models`."""

    name: str
    backend: str
    status: str  # "available" | "missing_dependency" | "loaded"
    thread_safe: bool
    description: str = ""
    extra: str | None = None
    missing: str | None = None
    size_bytes: int | None = None
    load_ms: float | None = None
    instances: int = 0

    @property
    def install_hint(self) -> str | None:
        if self.status != "missing_dependency":
            return None
        return f"pip install 'aisp[{self.extra}]'" if self.extra else f"pip install {self.missing}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["install_hint"] = self.install_hint
        return out


_specs: dict[str, ModelSpec] = {}
_specs_lock = threading.Lock()
#: cache key -> (size_bytes, load_ms) of the last load, for list_models().
_loads: dict[str, tuple[int, float]] = {}


def register_model(
    name: str,
    factory: Callable[[], Any],
    *,
    backend: str = "custom",
    thread_safe: bool = True,
    description: str = "",
    requires: tuple[str, ...] = (),
    extra: str | None = None,
    size_hint: Callable[[], int | None] | None = None,
    replace: bool = True,
) -> ModelSpec:
    """Register (or replace) a model name. ``factory()`` must return a ``Model``."""
    if not isinstance(name, str) or not name or "#" in name or name.startswith(ONNX_PREFIX):
        raise ValidationError(
            f"model name: expected a non-empty name without '#' or the '{ONNX_PREFIX}' prefix, got {name!r}",
            field="name",
            value=name,
            expected="a plain model name",
        )
    if not callable(factory):
        raise ValidationError(
            f"factory: expected a callable returning a Model, got {type(factory).__name__}",
            field="factory",
            expected="a callable",
        )
    spec = ModelSpec(name, factory, backend, thread_safe, description, tuple(requires), extra, size_hint)
    with _specs_lock:
        if not replace and name in _specs:
            from aisp.errors import ConflictError

            raise ConflictError(f"model '{name}' is already registered")
        _specs[name] = spec
    return spec


def unregister_model(name: str) -> None:
    with _specs_lock:
        _specs.pop(name, None)


def model_names() -> list[str]:
    with _specs_lock:
        return sorted(_specs)


def get_spec(name: str) -> ModelSpec:
    """The spec for ``name`` (``onnx:<path>`` specs are made on the fly)."""
    if not isinstance(name, str) or not name:
        raise ValidationError(
            f"model name: expected a non-empty string, got {name!r}",
            field="model",
            value=name,
            expected="a model name",
        )
    if name.startswith(ONNX_PREFIX):
        path = name[len(ONNX_PREFIX) :]
        if not path:
            raise ValidationError(
                f"model name: expected '{ONNX_PREFIX}<path to .onnx file>', got {name!r}",
                field="model",
                value=name,
                expected=f"{ONNX_PREFIX}<path>",
            )

        def factory() -> Any:
            from aisp.models.onnx import OnnxModel

            return OnnxModel(path, name=name)

        return ModelSpec(
            name,
            factory,
            "onnx",
            True,
            f"ONNX model {path}",
            ("onnxruntime",),
            "onnx",
            lambda: _file_size(path),
        )
    with _specs_lock:
        spec = _specs.get(name)
    if spec is None:
        raise NotFoundError(
            f"unknown model '{name}'; available: {', '.join(model_names())}, or {ONNX_PREFIX}<path>",
            kind="model",
            key=name,
        )
    return spec


def cache_key(spec: ModelSpec, instance: str | None) -> str:
    if instance is None or spec.thread_safe:
        return spec.name
    if not isinstance(instance, str) or not instance or "#" in instance:
        raise ValidationError(
            f"instance: expected a non-empty string without '#', got {instance!r}",
            field="instance",
            value=instance,
            expected="a worker or stream id",
        )
    return f"{spec.name}#{instance}"


def _load(spec: ModelSpec, key: str) -> Any:
    t0 = time.perf_counter()
    try:
        model = spec.factory()
    except AISPError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load model '{spec.name}': {type(exc).__name__}: {exc}", model_name=spec.name
        ) from exc
    ms = (time.perf_counter() - t0) * 1000.0
    model.load_ms = ms
    size = int(getattr(model, "size_bytes", 0) or 0)
    _loads[key] = (size, ms)
    logger.debug("built model %s (%s, %.1f MB) in %.0f ms", key, spec.backend, size / 1e6, ms)
    return model


def resolve_loader(key: str) -> Callable[[], Any]:
    """The cache's name resolver: ``"face_detection"`` or ``"face_detection#w1"`` to a loader."""
    name, _, instance = key.partition("#")
    spec = get_spec(name)
    real_key = cache_key(spec, instance or None)
    return lambda: _load(spec, real_key)


def load_model(name: str, *, cache: bool = True, instance: str | None = None) -> Any:
    """Load a model by name, through the process-wide model cache unless ``cache=False``.

    Raises NotFoundError (unknown name), MissingDependencyError (backend not installed, naming the
    extra), ModelLoadError (missing or corrupt file), ValidationError (bad name or instance).
    """
    spec = get_spec(name)
    key = cache_key(spec, instance)
    if not cache:
        return _load(spec, key)
    model_cache = _model_cache()
    if model_cache is None:
        return _load(spec, key)
    return model_cache.get_or_load(key, lambda: _load(spec, key))


def _model_cache() -> Any:
    try:
        from aisp.cache import get_model_cache
    except ImportError:  # the cache area is optional for this package's own use
        return None
    return get_model_cache()


def _module_available(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _file_size(path: str) -> int | None:
    import os

    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _cached_keys() -> list[str]:
    cache_mod = sys.modules.get("aisp.cache")
    if cache_mod is None:
        return []
    try:
        return list(_model_cache().names())
    except Exception:  # listing must not fail because the cache is unhappy
        logger.debug("cannot read cache names", exc_info=True)
        return []


def list_models() -> list[ModelInfo]:
    """Every registered model with its status, plus loaded ``onnx:`` models and the template."""
    keys = _cached_keys()
    with _specs_lock:
        specs = list(_specs.values())
    names = {s.name for s in specs}
    for key in keys:
        base = key.partition("#")[0]
        if base.startswith(ONNX_PREFIX) and base not in names:
            specs.append(get_spec(base))
            names.add(base)
    infos = [_info(spec, keys) for spec in sorted(specs, key=lambda s: s.name)]
    onnx_ok = _module_available("onnxruntime")
    infos.append(
        ModelInfo(
            f"{ONNX_PREFIX}<path>",
            "onnx",
            "available" if onnx_ok else "missing_dependency",
            True,
            "your ONNX file: YOLOv8/YOLO11 detector [1, 4+C, N] or classifier [1, C]",
            "onnx",
            None if onnx_ok else "onnxruntime",
        )
    )
    return infos


def _info(spec: ModelSpec, keys: list[str]) -> ModelInfo:
    missing = next((m for m in spec.requires if not _module_available(m)), None)
    mine = [k for k in keys if k == spec.name or k.startswith(spec.name + "#")]
    info = ModelInfo(spec.name, spec.backend, "available", spec.thread_safe, spec.description, spec.extra)
    if missing is not None:
        info.status, info.missing = "missing_dependency", missing
        return info
    if mine:
        info.status, info.instances = "loaded", len(mine)
        loads = [_loads[k] for k in mine if k in _loads]
        if loads:
            info.size_bytes = loads[-1][0]
            info.load_ms = round(max(ms for _, ms in loads), 1)
    if info.size_bytes is None and spec.size_hint is not None:
        info.size_bytes = spec.size_hint()
    return info
