"""The fake model shipped beside :class:`~aisp.models.base.Model`.

:class:`FakeModel` is a real ``Model`` subclass with no dependencies. Its cost per frame is set by
the test (``cost_ms``) and spent by an injectable ``sleep`` (default :func:`time.sleep`, which
releases the GIL like native inference does) or by busy work (``busy=True``). Its detections are
deterministic: by default one box over the central half of the frame, whose confidence is derived
from the frame's mean brightness, so different frames give different, reproducible results.

It is registered as the model ``fake`` so that pipelines and the API run without MediaPipe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aisp.errors import ValidationError
from aisp.models.base import Model
from aisp.models.results import Detections

__all__ = ["FakeModel"]

BoxesSpec = Sequence[Sequence[float]] | np.ndarray | Callable[[np.ndarray], Detections] | None


class FakeModel(Model):
    """A deterministic model whose cost is set by the test.

    Args:
        name: registry name reported in results.
        cost_ms: time spent per frame.
        thread_safe: as reported to the pipeline; when false, calls are serialised.
        boxes: fixed xyxy boxes (confidence 0.9, class 0, label ``fake``), a callable
            ``frame -> Detections``, or None for the default box derived from the frame.
        sleep: how ``cost_ms`` is waited (seconds); inject a fake to keep tests instant.
        busy: spend ``cost_ms`` computing instead of sleeping (holds the GIL, like Python code).
        error: raised by every call while set (tests of error paths; may be changed at run time).
        size_bytes: what the cache should account for.
    """

    backend = "fake"
    supports_batch = True

    def __init__(
        self,
        name: str = "fake",
        *,
        cost_ms: float = 0.0,
        thread_safe: bool = True,
        boxes: BoxesSpec = None,
        sleep: Callable[[float], None] = time.sleep,
        busy: bool = False,
        error: BaseException | None = None,
        size_bytes: int = 1024,
        label: str = "fake",
    ) -> None:
        super().__init__(name, thread_safe=thread_safe)
        if cost_ms < 0:
            raise ValidationError(
                f"cost_ms: expected >= 0, got {cost_ms}", field="cost_ms", expected=">= 0", value=cost_ms
            )
        self.cost_ms = float(cost_ms)
        self.sleep = sleep
        self.busy = busy
        self.error = error
        self.label = label
        self.size_bytes = size_bytes
        self._boxes = boxes
        self._fixed: Detections | None = None
        if boxes is not None and not callable(boxes):
            arr = np.asarray(boxes, np.float32).reshape(-1, 4)
            n = arr.shape[0]
            self._fixed = Detections(
                arr, np.full(n, 0.9, np.float32), np.zeros(n, np.int32), None, (label,) * n
            )
        self._count_lock = threading.Lock()
        self.calls = 0
        self.last_shape: tuple[int, ...] | None = None

    def _spend(self, ms: float) -> None:
        if ms <= 0:
            return
        if not self.busy:
            self.sleep(ms / 1000.0)
            return
        end = time.perf_counter() + ms / 1000.0
        x = 0
        while time.perf_counter() < end:
            x += 1

    def _detect(self, frame: np.ndarray) -> Detections:
        if self._fixed is not None:
            return self._fixed
        if callable(self._boxes):
            return self._boxes(frame)
        h, w = frame.shape[:2]
        brightness = float(frame[::8, ::8].mean()) / 255.0
        box = np.array([[w * 0.25, h * 0.25, w * 0.75, h * 0.75]], np.float32)
        return Detections(
            box, np.array([0.5 + 0.5 * brightness], np.float32), np.zeros(1, np.int32), None, (self.label,)
        )

    def _predict(self, frame: np.ndarray) -> dict[str, Any]:
        with self._count_lock:
            self.calls += 1
            self.last_shape = frame.shape
        if self.error is not None:
            raise self.error
        self._spend(self.cost_ms)
        return {"detections": self._detect(frame)}
