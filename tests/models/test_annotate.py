"""Annotation draws on a copy: boxes in class colours, labels, keypoints, landmarks, masks."""

from __future__ import annotations

import numpy as np
import pytest

from aisp.errors import ValidationError
from aisp.models import annotate
from aisp.models.annotate import PALETTE
from aisp.models.results import Classification, Detections, Landmarks, Mask, ModelResult


def _frame() -> np.ndarray:
    return np.full((120, 160, 3), 40, np.uint8)


def test_boxes_labels_and_keypoints() -> None:
    frame = _frame()
    before = frame.copy()
    dets = Detections([[20, 30, 80, 90]], [0.87], [1], [[[50, 60]]], ("car",))
    out = annotate(frame, ModelResult("m", 1.0, detections=dets))
    assert np.array_equal(frame, before) and out is not frame
    assert tuple(out[60, 20]) == PALETTE[1]  # left edge in class 1's colour
    assert tuple(out[60, 50]) == PALETTE[1]  # keypoint dot
    assert tuple(out[60, 65]) == (40, 40, 40)  # inside the box untouched
    assert (out[10:30, 20:80] != 40).any()  # label above the box
    no_labels = annotate(frame, [ModelResult("m", 1.0, detections=dets)], labels=False)
    assert (no_labels[10:28, 20:80] == 40).all()


def test_mask_overlay_only_on_mask() -> None:
    frame = _frame()
    data = np.zeros((120, 160), np.float32)
    data[:, :80] = 1.0
    out = annotate(frame, ModelResult("s", 1.0, mask=Mask(data)))
    assert (out[:, :80] != 40).any(axis=-1).all() and (out[:, 80:] == 40).all()
    expected = np.array([40 * 0.55 + c * 0.45 for c in (72, 220, 96)])  # the person colour, 45 %
    assert np.abs(out[:, :80].reshape(-1, 3) - expected).max() <= 1.0
    # a mask of another size is resized to the image
    small = Mask(np.ones((12, 16), np.float32))
    assert (annotate(frame, ModelResult("s", 1.0, mask=small)) != 40).any(axis=-1).all()


def test_landmarks_pose_skeleton_and_mesh_points() -> None:
    frame = _frame()
    pts = np.zeros((1, 33, 3), np.float32)
    pts[0, :, 0] = np.linspace(10, 150, 33)
    pts[0, :, 1] = 60
    vis = np.ones((1, 33), np.float32)
    out = annotate(frame, ModelResult("p", 1.0, landmarks=Landmarks(pts, vis, kind="pose")))
    assert (out[60, 10:150] != 40).any(axis=-1).mean() > 0.9
    mesh = np.zeros((1, 468, 3), np.float32)
    mesh[0, :, 0] = 5 + np.arange(468) % 100
    mesh[0, :, 1] = 5 + np.arange(468) // 100
    mesh[0, 0, 0] = 1000  # off-image points are skipped
    out = annotate(frame, ModelResult("f", 1.0, landmarks=Landmarks(mesh, kind="face_mesh")))
    assert tuple(out[5, 6]) == PALETTE[0] and tuple(out[50, 50]) == (40, 40, 40)


def test_classification_and_empty_results() -> None:
    frame = _frame()
    assert np.array_equal(annotate(frame, []), frame)
    assert np.array_equal(annotate(frame, ModelResult("e", 1.0, detections=Detections.empty())), frame)
    out = annotate(
        frame, ModelResult("c", 1.0, classification=Classification(np.array([0.1, 0.9]), ("a", "b")))
    )
    assert (out[:30, :80] != 40).any()
    with pytest.raises(ValidationError, match="image: expected dtype uint8"):
        annotate(frame.astype(np.float32), [])
