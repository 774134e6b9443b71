"""Background replacement: blur, image and colour modes, soft edges, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from aisp.errors import ValidationError
from aisp.models import FakeModel, replace_background, segment_and_replace
from aisp.models.results import Mask
from tests.models._helpers import ASTRONAUT_FACE


def _frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (60, 80, 3)).astype(np.uint8)


def _half_mask() -> Mask:
    data = np.zeros((60, 80), np.float32)
    data[:, :40] = 1.0
    return Mask(data)


def test_color_mode_keeps_person_and_paints_background() -> None:
    frame = _frame()
    out = replace_background(frame, _half_mask(), "color", color=(1, 2, 3))
    assert np.array_equal(out[:, :40], frame[:, :40])
    assert (out[:, 40:] == (1, 2, 3)).all()


def test_image_mode_covers_with_resized_background() -> None:
    frame = _frame()
    bg = np.zeros((30, 40, 3), np.uint8)
    bg[..., 2] = 200
    out = replace_background(frame, _half_mask(), "image", bg)
    assert np.array_equal(out[:, :40], frame[:, :40]) and (out[:, 40:] == (0, 0, 200)).all()


def test_blur_mode_and_soft_alpha() -> None:
    frame = _frame()
    out = replace_background(frame, _half_mask(), "blur", blur_ksize=15)
    assert np.array_equal(out[:, :40], frame[:, :40])
    assert out[:, 50:].std() < frame[:, 50:].std() / 2  # blurred noise is flatter
    soft = np.full((60, 80), 0.5, np.float32)
    half = replace_background(frame, soft, "color", color=(0, 0, 0))
    assert np.allclose(half.astype(int), (frame.astype(int) * 0.5 + 0.5).astype(int), atol=1)
    hard = replace_background(frame, soft, "color", color=(0, 0, 0), hard=True)  # 0.5 is not > 0.5
    assert (hard == 0).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "sepia"}, "mode: expected one of blur, image, color, got 'sepia'"),
        ({"mode": "image"}, "background: expected an RGB image for mode 'image', got None"),
        ({"mode": "blur", "blur_ksize": 4}, "blur_ksize: expected an odd positive int, got 4"),
        ({"mode": "color", "color": (1, 2)}, "color: expected three ints in 0..255"),
        (
            {"mode": "image", "background": np.zeros((5, 5), np.uint8)},
            r"background: expected shape \(H, W, 3\)",
        ),
        (
            {"mask": np.zeros((10, 10), np.float32)},
            r"mask: expected shape \(60, 80\) \(the image's\), got \(10, 10\)",
        ),
        ({"mask": "mask"}, "mask: expected a Mask or an"),
    ],
)
def test_bad_input(kwargs: dict, match: str) -> None:
    args = {"mask": _half_mask(), **kwargs}
    with pytest.raises(ValidationError, match=match):
        replace_background(_frame(), **args)


def test_segment_and_replace_needs_a_mask_model(registry) -> None:
    with pytest.raises(ValidationError, match="expected a segmentation model giving a mask, got 'fake'"):
        segment_and_replace(_frame(), model=FakeModel())
    with pytest.raises(ValidationError, match="expected a segmentation model giving a mask, got 'fake'"):
        segment_and_replace(_frame(), model="fake", registry=registry)


def test_segment_and_replace_needs_a_registry_for_a_name() -> None:
    with pytest.raises(ValidationError, match="registry: expected a ModelRegistry") as info:
        segment_and_replace(_frame())
    assert info.value.field == "registry" and "selfie_segmentation" in info.value.message


def test_segment_and_replace_on_a_real_photo(registry, photos) -> None:
    pytest.importorskip("mediapipe")
    frame = photos["astronaut"]
    out = segment_and_replace(frame, "color", color=(0, 255, 0), registry=registry)
    x1, y1, x2, y2 = (int(v) for v in ASTRONAUT_FACE)
    face_diff = np.abs(out[y1:y2, x1:x2].astype(int) - frame[y1:y2, x1:x2]).mean()
    assert face_diff < 10  # the person stays
    assert (out[:30, :30] == (0, 255, 0)).all()  # the flag behind her is replaced
