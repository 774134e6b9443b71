"""``ModelRegistry``: model names to loaded models, bound to one cache and one config.

    >>> registry = ModelRegistry(ModelCache(), ModelConfig(min_detection_confidence=0.6))
    >>> model = registry.load("face_detection", instance="w1")   # doctest: +SKIP
    >>> registry.list()                                          # doctest: +SKIP

Which names exist is the module-level spec table (:mod:`aisp.models.specs`, re-exported here):
registering a model is registering code, shared by the process. Everything about *loading* is
per registry: the :class:`~aisp.models.config.ModelConfig` built-in models are made with, the
cache they land in, and the load figures :meth:`ModelRegistry.list` reports. Two registries
(two runtimes with different settings) never see each other's models or figures. The
composition root (``aisp.runtime.build``) makes one registry per runtime.

Cache keys: :meth:`ModelRegistry.key` is the one place a :class:`~aisp.cache.keys.ModelKey` is
made. A thread-safe model is shared under its name (the instance is dropped); a model that is not
thread-safe (MediaPipe, motion) is shared under its name by default (its lock serialises callers),
and each worker can ask for its own instance with ``instance="w1"``, cached under
``ModelKey("face_detection", "w1")`` (shown as ``face_detection#w1``). ONNX models are
thread-safe but keep their instance when the config says ``onnx_session_per_worker`` (the CPU
budget's choice where single-threaded sessions run side by side faster than one shared session).
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from aisp.cache import ModelCache
from aisp.cache.keys import SEPARATOR, ModelKey
from aisp.errors import AISPError, ModelLoadError, ValidationError
from aisp.models.base import Model
from aisp.models.config import ModelConfig
from aisp.models.specs import (
    ONNX_PREFIX,
    ModelSpec,
    get_spec,
    model_names,
    module_available,
    register_model,
    registered_specs,
    unregister_model,
)

if TYPE_CHECKING:  # pragma: no cover - pydantic-settings stays out of ``import aisp.models``
    from aisp.settings import Settings

__all__ = [
    "ModelRegistry",
    "ModelInfo",
    "LoadRecord",
    "ModelSpec",
    "register_model",
    "unregister_model",
    "get_spec",
    "model_names",
    "ONNX_PREFIX",
]

logger = logging.getLogger("aisp.models")


@dataclass(frozen=True)
class ModelInfo:
    """One row of :meth:`ModelRegistry.list`."""

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


@dataclass(frozen=True)
class LoadRecord:
    """What the last build of one key cost: the model's size and the factory's wall time."""

    size_bytes: int
    load_ms: float


class ModelRegistry:
    """Loads models by name with one config, through one cache (or none).

    Args:
        cache: where :meth:`load` keeps models (``None``: every load builds a new model).
        config: what the built-in models are built with (default ``ModelConfig()``).
        timer: the clock load times are measured with (seconds).
    """

    def __init__(
        self,
        cache: ModelCache | None = None,
        config: ModelConfig | None = None,
        *,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._cache = cache
        self._config = config if config is not None else ModelConfig()
        self._timer = timer
        self._loads: dict[ModelKey, LoadRecord] = {}
        self._loads_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        """A registry with its own cache, both configured from ``settings``."""
        return cls(ModelCache.from_settings(settings), ModelConfig.from_settings(settings))

    @property
    def cache(self) -> ModelCache | None:
        return self._cache

    @property
    def config(self) -> ModelConfig:
        return self._config

    def __repr__(self) -> str:
        return f"ModelRegistry(cache={self._cache!r}, config={self._config!r})"

    # --- keys ---------------------------------------------------------------------------------
    def key(self, name: str, instance: str | None = None) -> ModelKey:
        """The cache key of ``name`` for ``instance``: thread-safe models drop the instance.

        Raises NotFoundError (unknown name) and ValidationError (bad name or instance).
        """
        return _key(get_spec(name), instance, self._per_instance(get_spec(name)))

    def _per_instance(self, spec: ModelSpec) -> bool:
        """Whether this thread-safe spec still gets one model per instance: ONNX models when the
        config gives each worker its own session (the CPU budget decides, :mod:`aisp.cpu_budget`)."""
        return spec.backend == "onnx" and self._config.onnx_session_per_worker

    def loader(self, key: ModelKey | str) -> Callable[[], Model]:
        """A loader for ``key`` (``ModelKey`` or its text ``"name#instance"``): the resolver
        handed to ``cache.prewarm(names, resolver=registry.loader)``."""
        parsed = ModelKey.parse(key)
        spec = get_spec(parsed.name)
        real = _key(spec, parsed.instance, self._per_instance(spec))
        return lambda: self._build(spec, real)

    # --- loading ------------------------------------------------------------------------------
    def load_instance(self, name: str, instance: str) -> Model:
        """``load(name, instance=instance)``: the engine's loader signature."""
        return self.load(name, instance=instance)

    def load(self, name: str, *, instance: str | None = None, cache: bool = True) -> Model:
        """Load a model by name, through this registry's cache unless ``cache=False``.

        Raises NotFoundError (unknown name), MissingDependencyError (backend not installed, naming
        the extra), ModelLoadError (missing or corrupt file, failing factory), ValidationError (bad
        name or instance).
        """
        spec = get_spec(name)
        key = _key(spec, instance, self._per_instance(spec))
        if not cache or self._cache is None:
            return self._build(spec, key)
        model: Model = self._cache.get_or_load(key, lambda: self._build(spec, key))
        return model

    def _build(self, spec: ModelSpec, key: ModelKey) -> Model:
        t0 = self._timer()
        try:
            model = spec.create(self._config)
        except AISPError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load model '{spec.name}': {type(exc).__name__}: {exc}", model_name=spec.name
            ) from exc
        ms = (self._timer() - t0) * 1000.0
        model.load_ms = ms
        size = model.size_bytes
        with self._loads_lock:
            self._loads[key] = LoadRecord(size, ms)
        logger.debug("built model %s (%s, %.1f MB) in %.0f ms", key, spec.backend, size / 1e6, ms)
        return model

    def last_load(self, key: ModelKey) -> LoadRecord | None:
        """The figures of this registry's last build of ``key`` (None if it built none)."""
        with self._loads_lock:
            return self._loads.get(key)

    # --- listing ------------------------------------------------------------------------------
    def list(self) -> builtins.list[ModelInfo]:
        """Every registered model with its status in this registry's cache, plus the ``onnx:``
        models loaded there and the ``onnx:<path>`` template row."""
        keys = self._cache.keys() if self._cache is not None else []
        specs = registered_specs()
        names = {s.name for s in specs}
        for key in keys:
            if key.name.startswith(ONNX_PREFIX) and key.name not in names:
                specs.append(get_spec(key.name))
                names.add(key.name)
        infos = [self._info(spec, keys) for spec in sorted(specs, key=lambda s: s.name)]
        onnx_ok = module_available("onnxruntime")
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

    def _info(self, spec: ModelSpec, keys: builtins.list[ModelKey]) -> ModelInfo:
        missing = next((m for m in spec.requires if not module_available(m)), None)
        mine = [k for k in keys if k.name == spec.name] if missing is None else []
        size: int | None = None
        load_ms: float | None = None
        if mine:
            with self._loads_lock:
                loads = [self._loads[k] for k in mine if k in self._loads]
            if loads:
                size = loads[-1].size_bytes
                load_ms = round(max(r.load_ms for r in loads), 1)
        if missing is None and size is None and spec.size_hint is not None:
            size = spec.size_hint()
        if missing is not None:
            status = "missing_dependency"
        else:
            status = "loaded" if mine else "available"
        return ModelInfo(
            spec.name,
            spec.backend,
            status,
            spec.thread_safe,
            spec.description,
            spec.extra,
            missing,
            size,
            load_ms,
            len(mine),
        )


def _key(spec: ModelSpec, instance: str | None, per_instance: bool = False) -> ModelKey:
    if instance is None or (spec.thread_safe and not per_instance):
        return ModelKey(spec.name)
    if not isinstance(instance, str) or not instance or SEPARATOR in instance:
        raise ValidationError(
            f"instance: expected a non-empty string without '{SEPARATOR}', got {instance!r}",
            field="instance",
            value=instance,
            expected="a worker or stream id",
        )
    return ModelKey(spec.name, instance)
