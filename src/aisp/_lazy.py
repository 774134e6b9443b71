"""The lazy component registry (the plan's ``_lazy_get``).

Heavy modules (numpy, cv2, mediapipe, onnxruntime, av, fastapi, sqlalchemy) are never imported by
``import aisp``. Public names are registered here as ``"module:attribute"`` strings and resolved on
first use, once, under a lock. A missing optional dependency raises
:class:`aisp.errors.MissingDependencyError`, whose message names the extra to install.

    >>> from aisp._lazy import components
    >>> components.get("ModelCache")          # imports aisp.cache on first call only
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from aisp.errors import MissingDependencyError

__all__ = ["LazyRegistry", "components", "require", "EXTRAS"]

#: Top-level import name of each optional dependency -> the AISP extra that installs it.
EXTRAS: dict[str, str] = {
    "mediapipe": "mediapipe",
    "onnxruntime": "onnx",
    "onnx": "onnx",
    "av": "video",
    "skimage": "demo",
    "psycopg": "postgres",
    "norfair": "track",
    "paho": "mqtt",
    "ray": "ray",
}


def require(module: str, *, model_name: str | None = None) -> ModuleType:
    """Import an optional dependency, or raise an error naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = (getattr(exc, "name", None) or module).split(".")[0]
        if top != module.split(".")[0] and top not in EXTRAS:
            raise
        raise MissingDependencyError(
            module.split(".")[0], EXTRAS.get(module.split(".")[0]), model_name=model_name
        ) from exc


class LazyRegistry:
    """Maps names to ``"module:attribute"`` targets and resolves each target once."""

    def __init__(self) -> None:
        self._targets: dict[str, str] = {}
        self._resolved: dict[str, Any] = {}
        self._lock = threading.RLock()

    def register(self, name: str, target: str) -> None:
        if ":" not in target:
            raise ValueError(f"target must look like 'module:attribute', got {target!r}")
        with self._lock:
            self._targets[name] = target
            self._resolved.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._targets))

    def names(self) -> list[str]:
        return sorted(self._targets)

    def is_resolved(self, name: str) -> bool:
        return name in self._resolved

    def get(self, name: str) -> Any:
        try:
            return self._resolved[name]  # fast path, no lock
        except KeyError:
            pass
        with self._lock:
            if name in self._resolved:
                return self._resolved[name]
            try:
                target = self._targets[name]
            except KeyError:
                raise AttributeError(f"no lazy component named {name!r}") from None
            module_name, _, attr = target.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                missing = (getattr(exc, "name", None) or "").split(".")[0]
                if missing in EXTRAS:
                    raise MissingDependencyError(missing, EXTRAS[missing]) from exc
                raise
            value: Any = module
            for part in attr.split("."):
                value = getattr(value, part)
            self._resolved[name] = value
            return value


#: The package-wide registry behind ``aisp.<name>``.
components = LazyRegistry()
for _name, _target in {
    "Settings": "aisp.settings:Settings",
    "load_settings": "aisp.settings:load_settings",
    "get_settings": "aisp.settings:get_settings",
    "configure_logging": "aisp.logs:configure_logging",
    "ModelCache": "aisp.cache:ModelCache",
    "get_model_cache": "aisp.runtime:get_model_cache",
    "load_model": "aisp.runtime:load_model",
    "list_models": "aisp.runtime:list_models",
    "Pipeline": "aisp.pipeline:Pipeline",
    "create_app": "aisp.api:create_app",
}.items():
    components.register(_name, _target)
