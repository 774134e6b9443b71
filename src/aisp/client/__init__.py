"""``aisp.client``: a typed Python client for a remote AISP server.

    >>> from aisp.client import Client
    >>> with Client("http://127.0.0.1:8000", api_key="aisp_...") as client:  # doctest: +SKIP
    ...     frame = client.process("photo.jpg", models=["face_detection"])
    ...     frame["face_detection"].detections.xyxy          # numpy (n, 4), pixels
    ...     for result in client.streams.watch("cam1"):       # live, typed, reconnecting
    ...         ...

:class:`Client` (blocking) and :class:`AsyncClient` (asyncio) run on httpx. Results are the
library's own types (:class:`aisp.models.ModelResult` with ``Detections``, ``Landmarks``, ``Mask``,
``Classification``); errors are the :mod:`aisp.errors` tree, as the library raises them.

Importing this package is light: httpx, numpy, OpenCV and the websockets library are imported
when a name below is first used (PEP 562), and numpy/OpenCV only when an image or a result needs
them. Nothing here imports the server (:mod:`aisp.api`, FastAPI) or a model backend.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Client",
    "AsyncClient",
    "ClientConfig",
    "RetryPolicy",
    "FrameResult",
    "StreamResult",
    "StreamInfo",
    "TaskInfo",
    "CacheReport",
    "EventsPage",
    "RemoteUnavailableError",
    "WaitTimeoutError",
    "encode_image",
]

_WHERE = {
    "Client": "_sync",
    "AsyncClient": "_async",
    "ClientConfig": "_config",
    "RetryPolicy": "_config",
    "FrameResult": "_types",
    "StreamResult": "_types",
    "StreamInfo": "_types",
    "TaskInfo": "_types",
    "CacheReport": "_types",
    "EventsPage": "_calls",
    "RemoteUnavailableError": "_errors",
    "WaitTimeoutError": "_errors",
    "encode_image": "_encode",
}

if TYPE_CHECKING:  # pragma: no cover
    from aisp.client._async import AsyncClient
    from aisp.client._calls import EventsPage
    from aisp.client._config import ClientConfig, RetryPolicy
    from aisp.client._encode import encode_image
    from aisp.client._errors import RemoteUnavailableError, WaitTimeoutError
    from aisp.client._sync import Client
    from aisp.client._types import CacheReport, FrameResult, StreamInfo, StreamResult, TaskInfo


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'aisp.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"aisp.client.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
