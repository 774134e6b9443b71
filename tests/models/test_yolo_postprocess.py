"""Pre/post-processing: letterbox geometry, NMS, YOLO decoding, probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from aisp.errors import ValidationError
from aisp.models._yolo_postprocess import center_crop_resize, decode_yolo, letterbox, nms, to_probabilities
from aisp.models.results import Detections


def test_letterbox_geometry() -> None:
    img = np.full((100, 200, 3), 7, np.uint8)
    out, scale, (left, top) = letterbox(img, (64, 64))
    assert out.shape == (64, 64, 3) and scale == pytest.approx(0.32) and (left, top) == (0.0, 16.0)
    assert (out[:16] == 114).all() and (out[16:48] == 7).all() and (out[48:] == 114).all()
    same, s, pad = letterbox(np.zeros((64, 64, 3), np.uint8), (64, 64))
    assert s == 1.0 and pad == (0.0, 0.0)
    assert center_crop_resize(img, (32, 32)).shape == (32, 32, 3)


def test_nms_is_class_aware_and_ordered() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.6, 0.9, 0.8, 0.5], np.float32)
    classes = np.array([0, 0, 1, 0])
    assert nms(boxes, scores, 0.5).tolist() == [1, 3]  # class-agnostic
    assert nms(boxes, scores, 0.5, classes).tolist() == [1, 2, 3]
    assert nms(boxes, scores, 0.5, classes, max_det=2).tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_decode_yolo_unletterboxes_and_clips() -> None:
    out = np.zeros((1, 6, 2), np.float32)
    out[0, :4, 0] = [32, 32, 20, 20]
    out[0, 4, 0] = 0.9
    out[0, :4, 1] = [2, 20, 10, 10]  # partly in the padding / left of the image
    out[0, 5, 1] = 0.8
    geometry = {"image_shape": (100, 200), "scale": 0.32, "pad": (0.0, 16.0)}
    xyxy, conf, class_id = decode_yolo(out, **geometry, conf_threshold=0.5, iou_threshold=0.5)
    assert (xyxy.dtype, conf.dtype, class_id.dtype) == (np.float32, np.float32, np.int32)
    assert class_id.tolist() == [0, 1] and np.allclose(conf, [0.9, 0.8])
    thresholds = {"conf_threshold": 0.5, "iou_threshold": 0.5}
    dets = Detections.from_yolo(out, **geometry, **thresholds, class_names=["a", "b"])
    assert dets.labels == ("a", "b")
    assert np.allclose(dets.xyxy[0], [22 / 0.32, 6 / 0.32, 42 / 0.32, 26 / 0.32], atol=1e-3)
    assert dets.xyxy[1, 0] == 0.0  # clipped
    assert np.array_equal(dets.xyxy, xyxy) and np.array_equal(dets.class_id, class_id)
    # past the end of the names list, the class id is the label; without names, no labels
    assert Detections.from_yolo(out, **geometry, **thresholds, class_names=["a"]).labels == ("a", "1")
    assert Detections.from_yolo(out, **geometry, **thresholds).labels is None
    with pytest.raises(ValidationError, match=r"expected shape \[1, 4\+C, N\]"):
        decode_yolo(
            np.zeros((1, 4, 3)),
            image_shape=(1, 1),
            scale=1,
            pad=(0, 0),
            conf_threshold=0.5,
            iou_threshold=0.5,
        )
    with pytest.raises(ValidationError, match="expected batch size 1"):
        decode_yolo(
            np.zeros((2, 6, 3)),
            image_shape=(1, 1),
            scale=1,
            pad=(0, 0),
            conf_threshold=0.5,
            iou_threshold=0.5,
        )


def test_probabilities() -> None:
    p = np.array([0.2, 0.3, 0.5])
    assert np.allclose(to_probabilities(p), p)
    s = to_probabilities(np.array([1.0, 2.0, 3.0]))
    assert s.sum() == pytest.approx(1.0) and s.argmax() == 2


def test_matrix_and_iterative_nms_agree(monkeypatch) -> None:
    from aisp.models import _yolo_postprocess as _decode

    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 200, (400, 2))
    wh = rng.uniform(5, 60, (400, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.random(400).astype(np.float32)
    classes = rng.integers(0, 3, 400)
    fast = nms(boxes, scores, 0.45, classes)
    monkeypatch.setattr(_decode, "MATRIX_NMS_LIMIT", 0)
    slow = nms(boxes, scores, 0.45, classes)
    assert fast.tolist() == slow.tolist() and 0 < len(fast) < 400
    # what survives never overlaps above the threshold within a class
    kept = boxes[fast]
    iou = _decode.pairwise_iou(kept, kept)
    same = classes[fast][:, None] == classes[fast][None, :]
    np.fill_diagonal(iou, 0)
    assert (iou[same] <= 0.45 + 1e-6).all()


def test_nothing_above_the_threshold_is_the_empty_result() -> None:
    out = np.zeros((1, 6, 4), np.float32)
    geometry = {"image_shape": (10, 10), "scale": 1.0, "pad": (0.0, 0.0)}
    xyxy, conf, class_id = decode_yolo(out, **geometry, conf_threshold=0.5, iou_threshold=0.5)
    assert (xyxy.shape, conf.shape, class_id.shape) == ((0, 4), (0,), (0,))
    assert (xyxy.dtype, conf.dtype, class_id.dtype) == (np.float32, np.float32, np.int32)
    labelled = Detections.from_yolo(out, **geometry, conf_threshold=0.5, iou_threshold=0.5, class_names=["a"])
    assert len(labelled) == 0 and labelled.labels == () and labelled.keypoints is None
    assert Detections.from_yolo(out, **geometry, conf_threshold=0.5, iou_threshold=0.5).labels is None
