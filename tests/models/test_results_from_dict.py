"""``from_dict``/``from_list``: the inverse of the results' serialisation (what aisp.client reads)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aisp.errors import ValidationError
from aisp.models.results import Classification, Detections, Landmarks, Mask, ModelResult


def _wire(d: dict) -> dict:
    """Through JSON, as a client receives it."""
    return json.loads(json.dumps(d))


def _dets(kp: bool, labels: bool) -> Detections:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 300, (3, 2))
    xyxy = np.concatenate([xy, xy + 20], axis=1)
    return Detections(
        xyxy,
        rng.uniform(0, 1, 3),
        np.array([0, 2, 1]),
        rng.uniform(0, 300, (3, 6, 2)) if kp else None,
        ("a", "b", "c") if labels else None,
    )


@pytest.mark.parametrize("kp", [True, False])
@pytest.mark.parametrize("labels", [True, False])
def test_detections_round_trip(kp: bool, labels: bool) -> None:
    d = _dets(kp, labels)
    back = Detections.from_list(_wire({"x": d.to_list()})["x"])
    assert np.allclose(back.xyxy, d.xyxy, atol=0.005)
    assert np.allclose(back.confidence, d.confidence, atol=5e-5)
    assert back.class_id.tolist() == d.class_id.tolist()
    assert back.labels == d.labels
    assert (back.keypoints is None) == (d.keypoints is None)
    if kp:
        assert np.allclose(back.keypoints, d.keypoints, atol=0.005)
    assert back.to_list() == d.to_list()  # a second trip changes nothing


def test_empty_detections_and_landmarks() -> None:
    assert len(Detections.from_list([])) == 0
    lm = Landmarks.from_list([], kind="hand")
    assert len(lm) == 0 and lm.kind == "hand"


def test_landmarks_round_trip() -> None:
    rng = np.random.default_rng(2)
    lm = Landmarks(rng.uniform(0, 100, (2, 21, 3)), rng.uniform(0, 1, (2, 21)), np.array([0.9, 0.8]),
                   ("Left", "Right"), "hand")
    back = Landmarks.from_list(_wire({"x": lm.to_list()})["x"])
    assert back.kind == "hand" and back.labels == ("Left", "Right")
    assert np.allclose(back.points, lm.points, atol=0.005)
    assert np.allclose(back.visibility, lm.visibility, atol=5e-4)
    assert np.allclose(back.scores, lm.scores, atol=5e-5)
    plain = Landmarks(rng.uniform(0, 100, (1, 5, 3)), kind="face")
    again = Landmarks.from_list(plain.to_list())
    assert again.visibility is None and again.scores is None and again.labels is None


def test_mask_round_trip_through_rle() -> None:
    data = np.zeros((40, 60), np.float32)
    data[5:20, 10:35] = 0.9
    data[30:, 50:] = 0.7
    m = Mask(data, threshold=0.5, label="person")
    back = Mask.from_dict(_wire(m.to_dict(include_data=True)))
    assert back.shape == m.shape and back.label == "person" and back.threshold == 0.5
    assert np.array_equal(back.binary(), m.binary())
    assert back.to_dict(include_data=True) == m.to_dict(include_data=True)


def test_mask_without_data_is_refused_alone_and_skipped_in_a_result() -> None:
    m = Mask(np.ones((4, 4), np.float32))
    with pytest.raises(ValidationError, match="rle"):
        Mask.from_dict(m.to_dict())
    r = ModelResult.from_dict({"model": "seg", "inference_ms": 1.0, "mask": m.to_dict()})
    assert r.mask is None
    with pytest.raises(ValidationError, match="adding up to 4x4"):
        Mask.from_dict({**m.to_dict(), "rle": [0, 3]})


def test_classification_keeps_the_top_five() -> None:
    probs = np.array([0.05, 0.5, 0.1, 0.2, 0.02, 0.03, 0.1], np.float32)
    c = Classification(probs, tuple(f"k{i}" for i in range(7)))
    back = Classification.from_dict(_wire(c.to_dict()))
    assert back.class_id == 1 and back.label == "k1" and back.confidence == pytest.approx(0.5)
    assert back.to_dict() == c.to_dict()
    unnamed = Classification.from_dict(Classification(probs).to_dict())
    assert unnamed.class_names is None and unnamed.top_k(2) == Classification(probs).top_k(2)


def test_model_result_round_trip() -> None:
    r = ModelResult("m", 3.25, _dets(True, True), Landmarks(np.ones((3, 4, 3)), kind="x"))
    back = ModelResult.from_dict(_wire(r.to_dict()))
    assert back.model == "m" and back.inference_ms == 3.25
    assert back.to_dict() == r.to_dict()
    named = ModelResult.from_dict({"inference_ms": 1, "detections": []}, model="given")
    assert named.model == "given" and len(named.detections) == 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: Detections.from_list([{"box": [0, 0, 1, 1], "confidence": 1}]), r"items\[0\]\.class_id"),
        (lambda: Detections.from_list([[0, 0, 1, 1]]), r"items\[0\]: expected an object"),
        (lambda: Detections.from_list({"box": 1}), "expected a list"),
        (lambda: Detections.from_list([{"box": [0, 0, 1], "confidence": 1, "class_id": 0}]), "shape"),
        (lambda: Landmarks.from_list([{"kind": "x"}]), r"items\[0\]\.points"),
        (lambda: Classification.from_dict({"top": []}), "at least one class"),
        (lambda: ModelResult.from_dict({"inference_ms": 1}), "non-empty model name"),
    ],
)
def test_malformed_input_names_the_field(call, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        call()
