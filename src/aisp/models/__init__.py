"""Vision models: a registry of named models, typed results, annotation and compositing.

    >>> from aisp.models import load_model, list_models
    >>> model = load_model("face_detection")   # through the model cache unless cache=False
    >>> result = model.infer(frame)             # frame: numpy uint8, H x W x 3, RGB
    >>> result.to_dict()

Backends: MediaPipe (``mediapipe.py``), ONNX Runtime (``onnx.py``), OpenCV motion
(``motion.py``) and the dependency-free :class:`FakeModel` (``fake.py``). Importing this package
imports numpy but none of the backends; they load with their first model. When the cache
package is present, the registry is installed as its name resolver, so
``cache.prewarm(["face_detection"])`` works.
"""

from __future__ import annotations

from aisp.models._builtins import BUILTIN_NAMES, register_builtins
from aisp.models.annotate import annotate
from aisp.models.base import Model
from aisp.models.compose import replace_background, segment_and_replace
from aisp.models.fake import FakeModel
from aisp.models.registry import (
    ONNX_PREFIX,
    ModelInfo,
    ModelSpec,
    cache_key,
    get_spec,
    list_models,
    load_model,
    model_names,
    register_model,
    resolve_loader,
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
    "Mask",
    "Model",
    "ModelInfo",
    "ModelResult",
    "ModelSpec",
    "annotate",
    "cache_key",
    "get_spec",
    "install_cache_resolver",
    "list_models",
    "load_model",
    "model_names",
    "register_model",
    "replace_background",
    "resolve_loader",
    "segment_and_replace",
    "unregister_model",
]


def install_cache_resolver() -> bool:
    """Make ``aisp.cache`` resolve model names through this registry (False if no cache package)."""
    try:
        from aisp.cache import set_name_resolver
    except ImportError:
        return False
    set_name_resolver(resolve_loader)
    return True


register_builtins()
install_cache_resolver()
