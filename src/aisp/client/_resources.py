"""The API areas as attributes of a client (``client.models``, ``client.cache``, ``client.streams``,
``client.tasks``, ``client.events``), shared by :class:`~aisp.client.Client` and
:class:`~aisp.client.AsyncClient`.

Each method builds a :class:`~aisp.client._calls.Call` and hands it to the client's ``_call``:
the sync client returns the value, the async one a coroutine to await. What differs between the
two (iterating pages, following a WebSocket, waiting, downloading) lives in ``_sync.py`` and
``_async.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aisp.client import _calls as C

__all__ = ["Models", "Cache", "StreamsBase", "TasksBase"]


class _Area:
    def __init__(self, client: Any) -> None:
        self._client = client

    def _call(self, call: C.Call) -> Any:
        return self._client._call(call)


class Models(_Area):
    """``/api/models``."""

    def list(self) -> Any:
        """Every registered model (``list[aisp.models.ModelInfo]``)."""
        return self._call(C.models_list())

    def load(self, name: str) -> Any:
        """Load ``name`` into the server's cache: ``{"name", "loaded", "load_ms", "cached"}``."""
        return self._call(C.model_load(name))

    def unload(self, name: str) -> Any:
        """Remove ``name`` (and its instances) from the cache: the cache keys removed."""
        return self._call(C.model_unload(name))

    def prewarm(self, names: Sequence[str] | str) -> Any:
        """Load several models: ``{"loaded", "failed", "duration_ms"}``."""
        return self._call(C.models_prewarm(names))


class Cache(_Area):
    """``/api/cache``."""

    def stats(self) -> Any:
        """The cache's statistics (:class:`aisp.client.CacheReport`)."""
        return self._call(C.cache_stats())

    def clear(self) -> Any:
        """Remove every model from the cache; the number removed."""
        return self._call(C.cache_clear())


class StreamsBase(_Area):
    """``/api/streams``."""

    def create(
        self,
        source: str,
        models: Sequence[str] | str,
        *,
        id: str | None = None,
        priority: int | None = None,
        max_fps: float | None = None,
        every: int | None = None,
        live: bool | None = None,
        start: bool = True,
        **extra: Any,
    ) -> Any:
        """Define a stream (and start it unless ``start=False``): a :class:`aisp.client.StreamInfo`.
        ``extra`` passes fields a newer server accepts (e.g. ``output``)."""
        spec = {"id": id, "source": source, "models": models, "priority": priority, "max_fps": max_fps,
                "every": every, "live": live, "start": start, **extra}
        return self._call(C.stream_create(spec))

    def get(self, stream_id: str) -> Any:
        return self._call(C.stream_get(stream_id))

    def list(self) -> Any:
        return self._call(C.streams_list())

    def start(self, stream_id: str) -> Any:
        return self._call(C.stream_action(stream_id, "start"))

    def stop(self, stream_id: str) -> Any:
        return self._call(C.stream_action(stream_id, "stop"))

    def delete(self, stream_id: str) -> Any:
        return self._call(C.stream_delete(stream_id))


class TasksBase(_Area):
    """``/api/tasks``."""

    def submit(
        self,
        source: str,
        models: Sequence[str] | str,
        *,
        max_fps: float | None = None,
        every: int | None = None,
        video: bool | None = None,
    ) -> Any:
        """Queue a batch job over ``source``, a video file, folder or glob on the server's disk
        (inside its ``AISP_MEDIA_DIRS``) or a URL: a :class:`aisp.client.TaskInfo`."""
        if not isinstance(source, str):
            source = str(source)
        spec = {"source": source, "models": models, "max_fps": max_fps, "every": every, "video": video}
        return self._call(C.task_submit(spec))

    def get(self, task_id: str) -> Any:
        return self._call(C.task_get(task_id))

    def list(self, *, state: str | None = None, limit: int = 100, offset: int = 0) -> Any:
        return self._call(C.tasks_list(state, limit, offset))

    def cancel(self, task_id: str) -> Any:
        return self._call(C.task_action(task_id, "cancel"))

    def retry(self, task_id: str) -> Any:
        return self._call(C.task_action(task_id, "retry"))
