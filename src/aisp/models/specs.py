"""The table of model specs: which names exist and how each model is built.

Registered names are part of the public contract: ``face_detection``, ``face_detection_full``,
``face_mesh``, ``selfie_segmentation``, ``pose``, ``hands`` (MediaPipe), ``motion`` (OpenCV),
``fake`` (no dependencies), and ``onnx:<path>`` for any ONNX file (a spec made on the fly).
Tests and the demo add their own with :func:`register_model`.

The table is module-level on purpose: registering a model is registering code, like defining a
class, and every registry in the process sees the same names. Everything that happens when a
model is *loaded* (the config it gets, the cache it lands in, its load figures) belongs to one
:class:`~aisp.models.registry.ModelRegistry` and is never shared.

A spec's factory is called by :meth:`ModelSpec.create`. User factories take no argument
(``register_model("mine", lambda: MyModel())``); the built-ins are registered with
``takes_config=True`` and receive the registry's :class:`~aisp.models.config.ModelConfig`.
The flag is explicit: nothing inspects a factory's signature.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from aisp.cache.keys import SEPARATOR
from aisp.errors import ConflictError, NotFoundError, ValidationError
from aisp.models.base import Model
from aisp.models.config import ModelConfig
from aisp.models.onnx import OnnxModel

__all__ = [
    "ONNX_PREFIX",
    "ModelSpec",
    "register_model",
    "unregister_model",
    "get_spec",
    "model_names",
    "registered_specs",
    "module_available",
]

ONNX_PREFIX = "onnx:"

#: A model factory: ``factory()`` for user specs, ``factory(config)`` for ``takes_config`` specs.
Factory = Callable[..., Model]


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model: call :meth:`create` with the registry's config."""

    name: str
    factory: Factory
    backend: str = "custom"
    thread_safe: bool = True
    description: str = ""
    requires: tuple[str, ...] = ()
    extra: str | None = None
    size_hint: Callable[[], int | None] | None = field(default=None, compare=False)
    #: ``factory(config)`` rather than ``factory()`` (the built-ins and ``onnx:`` specs).
    takes_config: bool = False

    def create(self, config: ModelConfig) -> Model:
        """A new model: ``factory(config)`` when the spec takes the config, else ``factory()``."""
        if self.takes_config:
            return self.factory(config)
        return self.factory()


_specs: dict[str, ModelSpec] = {}
_specs_lock = threading.Lock()


def register_model(
    name: str,
    factory: Factory,
    *,
    backend: str = "custom",
    thread_safe: bool = True,
    description: str = "",
    requires: tuple[str, ...] = (),
    extra: str | None = None,
    size_hint: Callable[[], int | None] | None = None,
    takes_config: bool = False,
    replace: bool = True,
) -> ModelSpec:
    """Register (or replace) a model name. ``factory()`` must return a ``Model``; with
    ``takes_config=True`` it is called as ``factory(config)`` with a :class:`ModelConfig`."""
    if not isinstance(name, str) or not name or SEPARATOR in name or name.startswith(ONNX_PREFIX):
        raise ValidationError(
            f"model name: expected a non-empty name without '{SEPARATOR}' or the '{ONNX_PREFIX}' prefix, "
            f"got {name!r}",
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
    spec = ModelSpec(
        name,
        factory,
        backend=backend,
        thread_safe=thread_safe,
        description=description,
        requires=tuple(requires),
        extra=extra,
        size_hint=size_hint,
        takes_config=takes_config,
    )
    with _specs_lock:
        if not replace and name in _specs:
            raise ConflictError(f"model '{name}' is already registered")
        _specs[name] = spec
    return spec


def unregister_model(name: str) -> None:
    with _specs_lock:
        _specs.pop(name, None)


def model_names() -> list[str]:
    with _specs_lock:
        return sorted(_specs)


def registered_specs() -> list[ModelSpec]:
    """Every registered spec (``onnx:`` specs are not registered), sorted by name."""
    with _specs_lock:
        return [_specs[name] for name in sorted(_specs)]


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
        return _onnx_spec(name)
    with _specs_lock:
        spec = _specs.get(name)
    if spec is None:
        raise NotFoundError(
            f"unknown model '{name}'; available: {', '.join(model_names())}, or {ONNX_PREFIX}<path>",
            kind="model",
            key=name,
        )
    return spec


def _onnx_spec(name: str) -> ModelSpec:
    path = name[len(ONNX_PREFIX) :]
    if not path:
        raise ValidationError(
            f"model name: expected '{ONNX_PREFIX}<path to .onnx file>', got {name!r}",
            field="model",
            value=name,
            expected=f"{ONNX_PREFIX}<path>",
        )

    def factory(config: ModelConfig) -> Model:
        return OnnxModel(
            path,
            name=name,
            providers=config.onnx_providers,
            conf_threshold=config.min_detection_confidence,
            intra_op_num_threads=config.ort_intra_op_threads or None,
            inter_op_num_threads=config.ort_inter_op_threads or None,
            allow_spinning=config.ort_spinning,
        )

    return ModelSpec(
        name,
        factory,
        backend="onnx",
        thread_safe=True,
        description=f"ONNX model {path}",
        requires=("onnxruntime",),
        extra="onnx",
        size_hint=lambda: _file_size(path),
        takes_config=True,
    )


def module_available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (a ``None`` entry in
    ``sys.modules`` means "blocked", as tests use to simulate a missing dependency)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _file_size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None
