"""AISP: real-time AI vision serving.

A warm model cache, a frame pipeline and one API. ``import aisp`` is cheap: the public names
below are resolved lazily on first access (PEP 562), so no heavy library is imported until it
is needed. ``load_model``, ``list_models`` and ``get_model_cache`` use the process's default
runtime (:mod:`aisp.runtime`); applications build their own with ``aisp.runtime.build(settings)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aisp import errors
from aisp._lazy import components
from aisp.errors import (
    AISPError,
    ConfigError,
    ModelLoadError,
    NotFoundError,
    OverloadedError,
    SourceError,
    UnauthorizedError,
    UnsupportedMediaError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "errors",
    "AISPError",
    "ConfigError",
    "ModelLoadError",
    "NotFoundError",
    "OverloadedError",
    "SourceError",
    "UnauthorizedError",
    "UnsupportedMediaError",
    "ValidationError",
    "Settings",
    "load_settings",
    "get_settings",
    "configure_logging",
    "ModelCache",
    "get_model_cache",
    "load_model",
    "list_models",
    "Pipeline",
    "create_app",
]

if TYPE_CHECKING:  # pragma: no cover
    from aisp.api import create_app
    from aisp.cache import ModelCache
    from aisp.logs import configure_logging
    from aisp.pipeline import Pipeline
    from aisp.runtime import get_model_cache, list_models, load_model
    from aisp.settings import Settings, get_settings, load_settings


def __getattr__(name: str) -> Any:
    if name in components:
        return components.get(name)
    raise AttributeError(f"module 'aisp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
