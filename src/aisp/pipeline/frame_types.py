"""The two values that travel through the pipeline: :class:`Frame` and :class:`FrameResult`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aisp.models import ModelResult

__all__ = ["Frame", "FrameResult"]


@dataclass(eq=False)
class Frame:
    """One decoded frame: RGB ``uint8`` HxWx3, converted once at the source.

    ``index`` counts frames read from the source (0-based, before ``every``/``max_fps``
    thinning); ``pts`` is the media timestamp in seconds (None when the source has none);
    ``captured_at`` is the engine clock reading when the frame was read, the start of the
    capture-to-sink latency.
    """

    stream_id: str
    index: int
    pts: float | None
    captured_at: float
    image: np.ndarray
    #: position among the frames handed to the workers (set by the scheduler)
    seq: int = -1

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.image.shape[:2]
        return int(h), int(w)

    def meta(self) -> dict[str, Any]:
        h, w = self.shape
        return {
            "stream_id": self.stream_id,
            "index": self.index,
            "pts": None if self.pts is None else round(float(self.pts), 6),
            "captured_at": self.captured_at,
            "width": w,
            "height": h,
        }


@dataclass(eq=False)
class FrameResult:
    """What the sinks receive: the frame, one result per model, the annotated image if wanted.

    ``error`` is set (and ``results`` may be partial) when a model failed on this frame.
    ``zones`` is set by the stream's analytics when the stream has zones: per zone with a tracked
    object of this frame inside it, label -> how many (read-only; zones with none are absent).
    """

    frame: Frame
    results: dict[str, ModelResult] = field(default_factory=dict)  # model name -> result
    annotated: np.ndarray | None = None
    error: str | None = None
    zones: Mapping[str, Mapping[str, int]] | None = None

    @property
    def num_detections(self) -> int:
        return sum(result.num_detections for result in self.results.values())

    @property
    def inference_ms(self) -> float:
        return float(sum(result.inference_ms for result in self.results.values()))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.frame.meta())
        out["num_detections"] = self.num_detections
        out["results"] = {name: r.to_dict() for name, r in self.results.items()}
        if self.error is not None:
            out["error"] = self.error
        return out
