"""The model interface: :class:`Model`, the I/O boundary every backend adapter implements.

An adapter implements :meth:`Model._predict` (one validated RGB frame in, a dict of result parts
out: ``detections``, ``landmarks``, ``mask``, ``classification``). The base class validates the
frame, times the call, serialises non-thread-safe models with a per-instance lock, and builds the
:class:`~aisp.models.results.ModelResult`. :class:`aisp.models.fake.FakeModel` is the fake shipped
beside it.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aisp.errors import ModelLoadError
from aisp.models._frame_check import check_frame, check_frames
from aisp.models.results import ModelResult

__all__ = ["Model"]


class Model(ABC):
    """A loaded vision model.

    Attributes:
        name: the registry name (``face_detection``, ``onnx:/path/model.onnx``, ...).
        backend: ``mediapipe``, ``onnx``, ``opencv``, ``fake`` or ``custom``.
        thread_safe: whether one instance may be called from several threads at once. When
            false, calls are serialised by the instance's own lock, and workers should load
            their own instance (``registry.load(name, instance="w1")``).
        supports_batch: whether :meth:`infer_batch` runs the frames as one batch.
        stateful: whether results depend on earlier frames (motion); load one instance per stream.
        size_bytes: the model's weights on disk (what the cache accounts for).
        load_ms: how long loading took (set by the registry).
        network_input_side: the side in pixels of the square network input when the whole frame
            is resized to it and nothing is cropped back at full resolution; None otherwise (the
            frames route may then decode a JPEG at a reduced scale, see aisp.api.frame_processing).
    """

    backend: str = "custom"
    thread_safe: bool = True
    supports_batch: bool = False
    stateful: bool = False
    network_input_side: int | None = None

    #: Timer used for ``inference_ms``; a class attribute so tests can inject one.
    timer: Callable[[], float] = staticmethod(time.perf_counter)

    def __init__(self, name: str, *, thread_safe: bool | None = None) -> None:
        self.name = name
        if thread_safe is not None:
            self.thread_safe = thread_safe
        self._lock: threading.Lock | None = None if self.thread_safe else threading.Lock()
        self._closed = False
        self.size_bytes: int = 0
        self.load_ms: float = 0.0

    # --- for adapters -----------------------------------------------------------------------
    @abstractmethod
    def _predict(self, frame: np.ndarray) -> dict[str, Any]:
        """Run the model on one validated RGB uint8 frame; return ModelResult parts."""

    def _predict_batch(self, frames: list[np.ndarray]) -> list[dict[str, Any]]:
        """Run several frames at once (only called when ``supports_batch``)."""
        return [self._predict(f) for f in frames]

    def _close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release native resources (called once, under the instance lock)."""

    # --- public API -------------------------------------------------------------------------
    def infer(self, frame: np.ndarray) -> ModelResult:
        """Run the model on one RGB uint8 ``H x W x 3`` frame."""
        frame = check_frame(frame)
        timer = self.timer
        lock = self._lock
        if lock is None:
            self._check_open()
            t0 = timer()
            parts = self._predict(frame)
            ms = (timer() - t0) * 1000.0
        else:
            with lock:
                self._check_open()
                t0 = timer()
                parts = self._predict(frame)
                ms = (timer() - t0) * 1000.0
        return ModelResult(self.name, ms, **parts)

    def infer_batch(self, frames: Sequence[np.ndarray]) -> list[ModelResult]:
        """Run the model on several frames; one result per frame, in order.

        With ``supports_batch`` the frames run as one batch and each result reports the batch
        time divided by the number of frames.
        """
        checked = check_frames(frames)
        if not checked:
            return []
        if not self.supports_batch:
            return [self.infer(f) for f in checked]
        timer = self.timer
        if self._lock is None:
            self._check_open()
            t0 = timer()
            parts = self._predict_batch(checked)
            ms = (timer() - t0) * 1000.0
        else:
            with self._lock:
                self._check_open()
                t0 = timer()
                parts = self._predict_batch(checked)
                ms = (timer() - t0) * 1000.0
        per = ms / len(checked)
        return [ModelResult(self.name, per, **p) for p in parts]

    def close(self) -> None:
        """Release the model's resources; idempotent. Later calls raise ModelLoadError."""
        lock = self._lock or threading.Lock()
        with lock:
            if not self._closed:
                self._closed = True
                self._close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ModelLoadError(f"model '{self.name}' is closed; load it again", model_name=self.name)

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, backend={self.backend!r}, "
            f"thread_safe={self.thread_safe}, closed={self._closed})"
        )
