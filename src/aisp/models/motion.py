"""Motion detection with OpenCV's MOG2 background subtractor (no weights).

Each frame is (optionally) downscaled, fed to MOG2, the foreground mask is cleaned with a
morphological open and a dilation, and the external contours become boxes; boxes smaller than
``min_area`` (in original-frame pixels) are dropped. A box's confidence is the share of
foreground pixels inside it.

The model is stateful -- the background model learns from every frame -- so it is neither
thread-safe nor shareable between streams: load one instance per stream
(``registry.load("motion", instance=stream_id)``). The first frame after start (or after the frame
size changes) only seeds the background and yields no boxes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aisp.errors import ValidationError
from aisp.models.base import Model
from aisp.models.results import Detections, Mask

__all__ = ["MotionModel"]


class MotionModel(Model):
    """Moving-region boxes from MOG2 background subtraction."""

    backend = "opencv"
    thread_safe = False
    stateful = True

    def __init__(
        self,
        name: str = "motion",
        *,
        history: int = 500,
        var_threshold: float = 16.0,
        min_area: float = 400.0,
        kernel_size: int = 3,
        learning_rate: float = -1.0,
        process_width: int | None = 320,
        with_mask: bool = False,
    ) -> None:
        super().__init__(name)
        if history < 1:
            raise ValidationError(f"history: expected >= 1, got {history}", field="history", expected=">= 1")
        if kernel_size < 1:
            raise ValidationError(
                f"kernel_size: expected >= 1, got {kernel_size}", field="kernel_size", expected=">= 1"
            )
        if process_width is not None and process_width < 16:
            raise ValidationError(
                f"process_width: expected >= 16 or None, got {process_width}",
                field="process_width",
                expected=">= 16 or None",
            )
        import cv2

        self._cv2 = cv2
        self.history = history
        self.var_threshold = var_threshold
        self.min_area = float(min_area)
        self.learning_rate = learning_rate
        self.process_width = process_width
        self.with_mask = with_mask
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
        self._subtractor: Any = None
        self._shape: tuple[int, ...] | None = None

    def reset(self) -> None:
        """Forget the learned background (the next frame seeds a new one)."""
        self._subtractor = None
        self._shape = None

    def _predict(self, frame: np.ndarray) -> dict[str, Any]:
        cv2 = self._cv2
        h, w = frame.shape[:2]
        scale = 1.0
        small = frame
        if self.process_width is not None and w > self.process_width:
            scale = self.process_width / w
            small = cv2.resize(
                frame, (self.process_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA
            )
        seeding = self._subtractor is None or self._shape != frame.shape
        if seeding:
            self._subtractor = cv2.createBackgroundSubtractorMOG2(
                history=self.history, varThreshold=self.var_threshold, detectShadows=False
            )
            self._shape = frame.shape
        fg = self._subtractor.apply(small, learningRate=self.learning_rate)
        if seeding:
            return self._parts(Detections.empty(with_labels=True), None, (h, w))
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._kernel)
        fg = cv2.dilate(fg, self._kernel, iterations=2)
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area_small = self.min_area * scale * scale
        boxes, conf = [], []
        for c in contours:
            x, y, bw, bh = cv2.boundingRect(c)
            if bw * bh < min_area_small:
                continue
            boxes.append((x, y, x + bw, y + bh))
            conf.append(np.count_nonzero(fg[y : y + bh, x : x + bw]) / float(bw * bh))
        if not boxes:
            return self._parts(Detections.empty(with_labels=True), fg, (h, w))
        xyxy = np.asarray(boxes, np.float32) / np.float32(scale)
        np.clip(xyxy, 0, np.array([w, h, w, h], np.float32), out=xyxy)
        n = len(boxes)
        dets = Detections(xyxy, np.asarray(conf, np.float32), np.zeros(n, np.int32), None, ("motion",) * n)
        order = np.argsort(-dets.area, kind="stable")
        return self._parts(dets[order], fg, (h, w))

    def _parts(self, dets: Detections, fg: np.ndarray | None, size: tuple[int, int]) -> dict[str, Any]:
        parts: dict[str, Any] = {"detections": dets}
        if self.with_mask:
            h, w = size
            if fg is None:
                data = np.zeros((h, w), np.float32)
            else:
                data = self._cv2.resize(fg, (w, h), interpolation=self._cv2.INTER_NEAREST)
            parts["mask"] = Mask(data, 0.5, "motion")
        return parts
