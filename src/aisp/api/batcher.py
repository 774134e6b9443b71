"""Dynamic batching for ``POST /api/frames/process``, in the style of Triton's dynamic batcher.

Requests that ask the same model, when that model takes batches (an ONNX model with a dynamic
batch axis), are gathered on the event loop: the first one opens a batch, which is run as one
``infer_batch`` call on the inference pool when it holds ``max_size`` frames or ``max_delay_ms``
after it was opened, whichever comes first. Each request then gets its own frame's result (the
same result it would get alone, element-wise; ``tests/api/test_batching.py``).

Nothing here starts a thread: gathering is a timer on the event loop, and the batch runs on the
app's bounded :class:`~aisp.api.context.InferencePool` (a saturated pool refuses the whole batch
with 503 ``OVERLOADED``, as it refuses single requests). Several batches may run at once, one per
pool thread. The policy (on or off, size, delay) is the CPU plan's (:mod:`aisp.cpu_budget`):
settings ``batching``, ``batch_max_size``, ``batch_max_delay_ms``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aisp.api.modelops import api_instance
from aisp.cpu_budget import BatchPolicy
from aisp.errors import ModelLoadError

if TYPE_CHECKING:  # aisp.models imports numpy: the app module stays light until the first frame
    from aisp.models import Model, ModelRegistry, ModelResult


class Pool(Protocol):
    """What the batcher needs of :class:`aisp.api.context.InferencePool`."""

    def thread_index(self) -> int: ...

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any: ...

__all__ = ["FrameBatcher"]

log = logging.getLogger("aisp.api")


@dataclass
class _Batch:
    pool: Pool
    models: ModelRegistry
    name: str
    items: list[tuple[Any, asyncio.Future[ModelResult]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class FrameBatcher:
    """Gathers concurrent requests per model into batches (see the module doc). Event-loop only."""

    def __init__(self, policy: BatchPolicy) -> None:
        self.policy = policy
        self._open: dict[tuple[int, str], _Batch] = {}
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.frames = 0

    @property
    def enabled(self) -> bool:
        return self.policy.enabled and self.policy.max_size > 1

    def batchable(self, model: Model) -> bool:
        """Whether requests for ``model`` are batched: ONNX models that take batches (the backend
        it was measured on; other models keep one call per request)."""
        return self.enabled and bool(model.supports_batch) and model.backend == "onnx"

    def stats(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "batches": self.batches, "frames": self.frames,
                "mean_batch": round(self.frames / self.batches, 2) if self.batches else None}

    async def infer(self, pool: Pool, models: ModelRegistry, name: str, image: Any) -> ModelResult:
        """``name``'s result for ``image`` (an RGB frame), computed in a batch with others on
        ``pool`` (the app's inference pool; a batch runs on the pool of its first request)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ModelResult] = loop.create_future()
        key = (id(models), name)
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = _Batch(pool, models, name)
            batch.timer = loop.call_later(self.policy.max_delay_ms / 1000.0, self._flush, key)
        batch.items.append((image, future))
        if len(batch.items) >= self.policy.max_size:
            self._flush(key)
        return await future

    def _flush(self, key: tuple[int, str]) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        live = [(image, fut) for image, fut in batch.items if not fut.done()]  # clients that left
        if not live:
            return
        batch.items = live
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: _Batch) -> None:
        images = [image for image, _ in batch.items]
        pool = batch.pool

        def job() -> Sequence[ModelResult]:
            model = batch.models.load(batch.name, instance=api_instance(pool.thread_index()))
            results = model.infer_batch(images)
            if len(results) != len(images):
                raise ModelLoadError(
                    f"model {batch.name!r} returned {len(results)} results for a batch of {len(images)}",
                    model_name=batch.name,
                )
            return results

        try:
            results = await pool.run(job)
        except BaseException as exc:  # every waiting request gets the batch's error
            for _, fut in batch.items:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.frames += len(images)
        for (_, fut), result in zip(batch.items, results, strict=True):
            if not fut.done():
                fut.set_result(result)
