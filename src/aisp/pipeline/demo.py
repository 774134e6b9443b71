"""The ``demo`` source: the astronaut's face (scikit-image) moving over a coffee-cup photo.

Deterministic 640x480 RGB frames with known ground-truth face boxes (:meth:`DemoSource.boxes_for`).
Nothing is downloaded: both photos ship inside scikit-image (the ``demo`` extra). Finite
(``frames``, 300 by default: 10 s at 30 FPS) for jobs and benchmarks; endless and paced at
``fps`` by an injectable clock/sleep when ``live=True``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from aisp._lazy import require
from aisp.pipeline.sources import Source, SourceFrame

__all__ = ["DemoSource", "WIDTH", "HEIGHT"]

WIDTH, HEIGHT = 640, 480
# The astronaut photo (512x512): the face is at about x 177..272, y 66..161 (OpenCV Haar
# cascade). The sprite is a 176x176 crop around it. The face box inside the sprite is the
# consensus of three detectors over 43 frames (Haar 40,40,135,135; MediaPipe short-range
# median 40,55,134,149; full-range median 36,43,140,149):
_CROP = (26, 202, 137, 313)  # y0, y1, x0, x1
_FACE_IN_SPRITE = (38.0, 45.0, 138.0, 148.0)  # x0, y0, x1, y1


class DemoSource(Source):
    """A face moving on a Lissajous path over a background photo."""

    def __init__(
        self,
        *,
        live: bool = False,
        frames: int = 300,
        fps: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__("demo:live" if live else "demo")
        if frames < 1:
            raise ValueError(f"frames expected >= 1, got {frames!r}")
        if fps <= 0:
            raise ValueError(f"fps expected > 0, got {fps!r}")
        self.live = live
        self.fps = fps
        self._rate = fps  # the announced ``fps`` as a plain float (the base class allows None)
        self.total_frames = None if live else frames
        self._frames = frames
        self._clock = clock
        self._sleep = sleep
        self._background: Any = None
        self._sprite: Any = None
        self._t0: float | None = None
        self._interrupted = False

    # -- geometry -----------------------------------------------------------------------
    @staticmethod
    def sprite_origin(index: int) -> tuple[int, int]:
        """Top-left corner of the face sprite in frame ``index``."""
        size = _CROP[1] - _CROP[0]
        cx = WIDTH / 2 + (WIDTH / 2 - size / 2 - 20) * math.sin(2 * math.pi * index / 150.0)
        cy = HEIGHT / 2 + (HEIGHT / 2 - size / 2 - 20) * math.sin(2 * math.pi * index / 97.0)
        return int(round(cx - size / 2)), int(round(cy - size / 2))

    @classmethod
    def boxes_for(cls, index: int) -> list[tuple[float, float, float, float]]:
        """Ground-truth face boxes (x0, y0, x1, y1 in pixels) of frame ``index``."""
        ox, oy = cls.sprite_origin(index)
        x0, y0, x1, y1 = _FACE_IN_SPRITE
        return [(ox + x0, oy + y0, ox + x1, oy + y1)]

    # -- pixels -------------------------------------------------------------------------
    def _load(self) -> None:
        if self._background is not None:
            return
        cv2 = require("cv2")
        data = require("skimage.data")
        self._background = cv2.resize(data.coffee(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
        y0, y1, x0, x1 = _CROP
        self._sprite = data.astronaut()[y0:y1, x0:x1].copy()

    def render(self, index: int):
        """The RGB frame ``index`` (a new array)."""
        self._load()
        frame = self._background.copy()
        ox, oy = self.sprite_origin(index)
        h, w = self._sprite.shape[:2]
        frame[oy : oy + h, ox : ox + w] = self._sprite
        return frame

    # -- Source -------------------------------------------------------------------------
    def open(self) -> None:
        self._load()
        self._t0 = None
        self._interrupted = False

    def read(self) -> SourceFrame | None:
        index = self.frames_read
        if not self.live and index >= self._frames:
            return None
        if self.live:
            now = self._clock()
            if self._t0 is None:
                self._t0 = now
            due = self._t0 + index / self._rate
            if due > now and not self._interrupted:
                self._sleep(due - now)
        image = self.render(index)
        self.frames_read += 1
        return SourceFrame(image, index / self._rate)

    def interrupt(self) -> None:
        self._interrupted = True
