"""Frame validation: bad frames are a ValidationError naming what was expected and what came."""

from __future__ import annotations

import numpy as np
import pytest

from aisp.errors import ValidationError
from aisp.models import FakeModel
from aisp.models._frame_check import check_frame, check_frames


@pytest.mark.parametrize(
    ("frame", "expected", "got"),
    [
        (np.zeros((4, 4, 3), np.float32), "expected dtype uint8", "got float32"),
        (np.zeros((4, 4), np.uint8), "expected shape (H, W, 3)", "got (4, 4)"),
        (np.zeros((4, 4, 4), np.uint8), "expected shape (H, W, 3)", "got (4, 4, 4)"),
        (np.zeros((0, 4, 3), np.uint8), "expected a non-empty image", "got shape (0, 4, 3)"),
        (np.zeros((4, 0, 3), np.uint8), "expected a non-empty image", "got shape (4, 0, 3)"),
        ([[0, 0, 0]], "expected a numpy uint8 array", "got list"),
        (None, "expected a numpy uint8 array", "got NoneType"),
    ],
)
def test_bad_frames(frame, expected: str, got: str) -> None:
    model = FakeModel()
    with pytest.raises(ValidationError) as info:
        model.infer(frame)
    assert expected in info.value.message and got in info.value.message
    assert info.value.field == "frame" and info.value.status_code == 400
    assert model.calls == 0  # rejected before the model ran


def test_non_contiguous_view_is_made_contiguous_once() -> None:
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    flipped = img[:, ::-1]
    out = check_frame(flipped)
    assert out.flags.c_contiguous and np.array_equal(out, flipped)
    assert check_frame(img) is img  # no copy when not needed


def test_check_frames_names_the_index() -> None:
    good = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValidationError, match=r"frames\[1\]: expected dtype uint8"):
        check_frames([good, good.astype(np.int16)])
    with pytest.raises(ValidationError, match="expected a list of frames, got int"):
        check_frames(3)
    assert len(check_frames(np.zeros((2, 2, 2, 3), np.uint8))) == 2
