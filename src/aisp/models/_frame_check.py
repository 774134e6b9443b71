"""Frame validation: the one cheap check every model runs before inference.

Frames inside AISP are numpy ``uint8`` arrays shaped ``H x W x 3`` in RGB order. Colour order is
converted once, where frames enter (sources, uploads); models only check the layout here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aisp.errors import ValidationError

__all__ = ["check_frame", "describe"]

_EXPECTED = "a numpy uint8 array of shape (H, W, 3) in RGB order with H, W > 0"


def describe(value: Any) -> str:
    """A short description of what was passed in, for error messages."""
    if isinstance(value, np.ndarray):
        return f"ndarray dtype={value.dtype} shape={tuple(value.shape)}"
    return type(value).__name__


def check_frame(frame: Any, field: str = "frame") -> np.ndarray:
    """Return ``frame`` as a C-contiguous RGB uint8 array, or raise :class:`ValidationError`.

    No copy is made unless the array is not C-contiguous (a flipped or cropped view).
    """
    if not isinstance(frame, np.ndarray):
        raise ValidationError(
            f"{field}: expected {_EXPECTED}, got {describe(frame)}",
            field=field,
            expected=_EXPECTED,
            value=describe(frame),
        )
    if frame.dtype != np.uint8:
        raise ValidationError(
            f"{field}: expected dtype uint8, got {frame.dtype}",
            field=field,
            expected="dtype uint8",
            value=str(frame.dtype),
        )
    shape = frame.shape
    if len(shape) != 3 or shape[2] != 3:
        raise ValidationError(
            f"{field}: expected shape (H, W, 3) (RGB), got {tuple(shape)}",
            field=field,
            expected="shape (H, W, 3)",
            value=str(tuple(shape)),
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ValidationError(
            f"{field}: expected a non-empty image (H, W > 0), got shape {tuple(shape)}",
            field=field,
            expected="H, W > 0",
            value=str(tuple(shape)),
        )
    if not frame.flags.c_contiguous:
        frame = np.ascontiguousarray(frame)
    return frame


def check_frames(frames: Any, field: str = "frames") -> list[np.ndarray]:
    """Validate a sequence of frames (for ``infer_batch``); each error names its index."""
    if isinstance(frames, np.ndarray) and frames.ndim == 4:
        frames = list(frames)
    if not isinstance(frames, (list, tuple)):
        raise ValidationError(
            f"{field}: expected a list of frames, got {describe(frames)}",
            field=field,
            expected="a list of frames",
            value=describe(frames),
        )
    return [check_frame(f, f"{field}[{i}]") for i, f in enumerate(frames)]
