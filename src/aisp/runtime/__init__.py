"""The composition root: one function builds AISP's services from one ``Settings`` object.

    >>> from aisp.runtime import build
    >>> with build(settings, store=False) as rt:          # doctest: +SKIP
    ...     model = rt.models.load("face_detection")
    ...     rt.engine.add_stream(spec, start=True)

See :mod:`aisp.runtime.build` for what a :class:`Runtime` holds, and :mod:`aisp.runtime.default`
for the process-default runtime behind ``aisp.load_model()`` and ``aisp.get_model_cache()``.
"""

from __future__ import annotations

from aisp.runtime.build import Runtime, StoreFactory, StreamView, build, make_store
from aisp.runtime.default import (
    default_runtime,
    get_model_cache,
    list_models,
    load_model,
    reset_default_runtime,
)
from aisp.runtime.system import ProcessFigures, SystemView, WarmState

__all__ = [
    "ProcessFigures",
    "Runtime",
    "StoreFactory",
    "StreamView",
    "SystemView",
    "WarmState",
    "build",
    "default_runtime",
    "get_model_cache",
    "list_models",
    "make_store",
    "load_model",
    "reset_default_runtime",
]
