"""Background replacement with a person mask (``selfie_segmentation``).

:func:`replace_background` blends the frame over a new background using the soft mask as the
alpha channel (MediaPipe's soft edges look better than a hard cut): ``blur`` blurs the frame
itself, ``image`` puts a picture behind the person (resized to cover the frame, centre-cropped),
``color`` uses a solid colour. :func:`segment_and_replace` runs the segmentation model first:
a model object, or a name loaded through the :class:`~aisp.models.registry.ModelRegistry` the
caller passes (there is no process-wide registry to fall back on).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aisp.errors import ValidationError
from aisp.models._frame_check import check_frame, describe
from aisp.models._yolo_postprocess import center_crop_resize
from aisp.models.base import Model
from aisp.models.registry import ModelRegistry
from aisp.models.results import Mask

__all__ = ["replace_background", "segment_and_replace", "MODES"]

MODES = ("blur", "image", "color")


def _alpha(mask: Mask | np.ndarray, shape: tuple[int, int], hard: bool) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        if mask.dtype == bool:
            mask = mask.astype(np.float32)
        mask = Mask(mask)
    if not isinstance(mask, Mask):
        raise ValidationError(
            f"mask: expected a Mask or an (H, W) array, got {describe(mask)}",
            field="mask",
            expected="Mask or (H, W) array",
            value=describe(mask),
        )
    if mask.shape != shape:
        raise ValidationError(
            f"mask: expected shape {shape} (the image's), got {mask.shape}",
            field="mask",
            expected=f"shape {shape}",
            value=str(mask.shape),
        )
    data = mask.binary().astype(np.float32) if hard else np.clip(mask.data, 0.0, 1.0)
    return np.ascontiguousarray(data, dtype=np.float32)


def _background(
    image: np.ndarray, mode: str, background: Any, blur_ksize: int, color: tuple[int, int, int]
) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if mode == "blur":
        if not isinstance(blur_ksize, int) or blur_ksize < 1 or blur_ksize % 2 == 0:
            raise ValidationError(
                f"blur_ksize: expected an odd positive int, got {blur_ksize!r}",
                field="blur_ksize",
                expected="odd int >= 1",
                value=blur_ksize,
            )
        # A wide Gaussian at full size is the costliest step of a frame: blur a 1/f-size copy with
        # a 1/f-size kernel and scale it back up instead (visually the same for a background).
        f = max(1, min(8, blur_ksize // 8, w // 16, h // 16))
        if f == 1:
            return cv2.GaussianBlur(image, (blur_ksize, blur_ksize), 0)
        small = cv2.resize(image, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        k = max(3, (blur_ksize // f) | 1)
        return cv2.resize(cv2.GaussianBlur(small, (k, k), 0), (w, h), interpolation=cv2.INTER_LINEAR)
    if mode == "image":
        if background is None:
            raise ValidationError(
                "background: expected an RGB image for mode 'image', got None",
                field="background",
                expected="an RGB uint8 image",
            )
        bg = check_frame(background, "background")
        if bg.shape[:2] == (h, w):
            return bg
        return center_crop_resize(bg, (h, w))
    if (
        not isinstance(color, (tuple, list))
        or len(color) != 3
        or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in color)
    ):
        raise ValidationError(
            f"color: expected three ints in 0..255 (R, G, B), got {color!r}",
            field="color",
            expected="(R, G, B) in 0..255",
            value=color,
        )
    plane = np.empty((h, w, 3), np.uint8)
    plane[:] = np.tile(np.asarray(color, np.uint8), (w, 1))  # row-wise copies: fast
    return plane


def replace_background(
    image: np.ndarray,
    mask: Mask | np.ndarray,
    mode: str = "blur",
    background: np.ndarray | None = None,
    *,
    blur_ksize: int = 55,
    color: tuple[int, int, int] = (0, 177, 64),
    hard: bool = False,
) -> np.ndarray:
    """A new RGB image: the person (where ``mask`` is high) over a replaced background.

    Args:
        image: RGB uint8 frame.
        mask: the frame's person mask (a :class:`Mask` or an (H, W) array in [0, 1]).
        mode: ``blur``, ``image`` or ``color``.
        background: the picture for ``image`` mode (RGB uint8, any size).
        blur_ksize: Gaussian kernel size for ``blur`` (odd).
        color: RGB colour for ``color`` mode.
        hard: use the thresholded mask instead of its soft edges.
    """
    frame = check_frame(image, "image")
    if mode not in MODES:
        raise ValidationError(
            f"mode: expected one of {', '.join(MODES)}, got {mode!r}",
            field="mode",
            expected=" | ".join(MODES),
            value=mode,
        )
    import cv2

    alpha = _alpha(mask, frame.shape[:2], hard)
    bg = _background(frame, mode, background, blur_ksize, color)
    return cv2.blendLinear(frame, np.ascontiguousarray(bg), alpha, 1.0 - alpha)


def segment_and_replace(
    image: np.ndarray,
    mode: str = "blur",
    background: np.ndarray | None = None,
    *,
    model: Model | str = "selfie_segmentation",
    registry: ModelRegistry | None = None,
    **options: Any,
) -> np.ndarray:
    """Run the segmentation model and replace the background; ``options`` go to
    :func:`replace_background`.

    ``model`` is a :class:`Model`, or a name loaded through ``registry`` (and its cache); a name
    without a registry is a ``ValidationError``.
    """
    frame = check_frame(image, "image")
    if isinstance(model, str):
        if registry is None:
            raise ValidationError(
                f"registry: expected a ModelRegistry to load the model '{model}' from, got None "
                "(pass registry=..., or a loaded model as model=...)",
                field="registry",
                expected="a ModelRegistry when model is a name",
                value=None,
            )
        model = registry.load(model)
    result = model.infer(frame)
    if result.mask is None:
        raise ValidationError(
            f"model: expected a segmentation model giving a mask, got '{result.model}'",
            field="model",
            expected="a model with a mask output",
            value=result.model,
        )
    return replace_background(frame, result.mask, mode, background, **options)
