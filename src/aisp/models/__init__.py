"""Vision models: a registry of named models, typed results, annotation and compositing.

    >>> from aisp.cache import ModelCache
    >>> from aisp.models import ModelConfig, ModelRegistry
    >>> registry = ModelRegistry(ModelCache(), ModelConfig())
    >>> model = registry.load("face_detection")  # doctest: +SKIP
    >>> result = model.infer(frame)               # doctest: +SKIP
    >>> result.to_dict()                          # doctest: +SKIP

A :class:`ModelRegistry` is bound to one cache and one :class:`ModelConfig`; nothing in this
package reads process-wide settings or a process-wide cache. ``aisp.runtime`` builds the registry
of a runtime from its settings, and provides the ``load_model()`` / ``list_models()``
conveniences on a default runtime. The table of names (:func:`register_model`) is shared by the
process: registering a model is registering code.

Backends: MediaPipe (``mediapipe.py``), ONNX Runtime (``onnx.py``), OpenCV motion
(``motion.py``) and the dependency-free :class:`FakeModel` (``fake.py``). Importing this package
imports numpy and :mod:`aisp.cache` (the layer below: :class:`~aisp.cache.keys.ModelKey`, and
the cache a registry builds from settings) but none of the backends; they load with their first
model.
"""

from __future__ import annotations

from aisp.models._builtins import BUILTIN_NAMES, register_builtins
from aisp.models.annotate import annotate
from aisp.models.base import Model
from aisp.models.compose import replace_background, segment_and_replace
from aisp.models.config import ModelConfig
from aisp.models.fake import FakeModel
from aisp.models.registry import (
    ONNX_PREFIX,
    LoadRecord,
    ModelInfo,
    ModelRegistry,
    ModelSpec,
    get_spec,
    model_names,
    register_model,
    unregister_model,
)
from aisp.models.results import Classification, Detections, Landmarks, Mask, ModelResult

__all__ = [
    "BUILTIN_NAMES",
    "ONNX_PREFIX",
    "Classification",
    "Detections",
    "FakeModel",
    "Landmarks",
    "LoadRecord",
    "Mask",
    "Model",
    "ModelConfig",
    "ModelInfo",
    "ModelRegistry",
    "ModelResult",
    "ModelSpec",
    "annotate",
    "get_spec",
    "model_names",
    "register_model",
    "replace_background",
    "segment_and_replace",
    "unregister_model",
]

register_builtins()
