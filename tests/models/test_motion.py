"""Motion (MOG2): a moving square on a noisy static background is boxed; still scenes are not."""

from __future__ import annotations

import numpy as np
import pytest

from aisp.errors import ValidationError
from aisp.models.motion import MotionModel
from tests.models._helpers import iou


def _scene(seed: int = 0, size=(240, 320)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(60, 140, (*size, 3)).astype(np.uint8)


def _with_square(bg: np.ndarray, x: int, y: int, side: int = 60) -> np.ndarray:
    frame = bg.copy()
    frame[y : y + side, x : x + side] = (250, 240, 230)
    return frame


@pytest.mark.parametrize("process_width", [None, 160])
def test_moving_square_is_boxed(process_width) -> None:
    model = MotionModel(process_width=process_width, min_area=200)
    bg = _scene()
    assert model.infer(bg).num_detections == 0  # seeds the background
    for _ in range(10):
        assert model.infer(bg).num_detections == 0  # nothing moves
    for step in range(3):
        x = 40 + 30 * step
        dets = model.infer(_with_square(bg, x, 80)).detections
        assert len(dets) >= 1 and dets.labels[0] == "motion"
        truth = (x, 80, x + 60, 140)
        assert iou(dets.xyxy[0], truth) >= 0.5, (dets.xyxy, truth)
        assert 0.5 <= dets.confidence[0] <= 1.0


def test_min_area_filters_small_motion() -> None:
    model = MotionModel(min_area=5000, process_width=None)
    bg = _scene(1)
    for _ in range(5):
        model.infer(bg)
    assert model.infer(_with_square(bg, 100, 100, side=20)).num_detections == 0
    assert model.infer(_with_square(bg, 100, 100, side=90)).num_detections == 1


def test_size_change_and_reset_reseed() -> None:
    model = MotionModel(process_width=None, with_mask=True)
    bg = _scene(2)
    model.infer(bg)
    other = _scene(3, size=(120, 160))
    r = model.infer(other)
    assert r.num_detections == 0 and r.mask.shape == (120, 160)  # new size: seeding again
    model.infer(other)
    moved = model.infer(_with_square(other, 20, 20, side=50))
    assert moved.num_detections >= 1 and moved.mask.coverage() > 0.05
    model.reset()
    assert model.infer(_with_square(other, 20, 20, side=50)).num_detections == 0


def test_stateful_per_instance(registry) -> None:
    a = registry.load("motion", instance="cam1")
    b = registry.load("motion", instance="cam2")
    assert a is not b and a.stateful and not a.thread_safe
    with pytest.raises(ValidationError, match="kernel_size: expected >= 1"):
        MotionModel(kernel_size=0)
