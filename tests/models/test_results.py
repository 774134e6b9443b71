"""Typed results: validation with "expected X, got Y", slicing, empty(), serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aisp.errors import ValidationError
from aisp.models.results import Classification, Detections, Landmarks, Mask, ModelResult


def _dets(n: int = 3, kp: bool = True) -> Detections:
    xyxy = np.array([[i * 10, i * 10, i * 10 + 5, i * 10 + 8] for i in range(n)], np.float64)
    keypoints = np.arange(n * 2 * 2, dtype=np.float32).reshape(n, 2, 2) if kp else None
    return Detections(
        xyxy, np.linspace(0.9, 0.5, n), np.arange(n), keypoints, tuple(f"c{i}" for i in range(n))
    )


def test_detections_coerces_dtypes() -> None:
    d = _dets()
    assert d.xyxy.dtype == np.float32 and d.confidence.dtype == np.float32 and d.class_id.dtype == np.int32
    assert len(d) == 3
    assert d.area.tolist() == [40.0, 40.0, 40.0]


@pytest.mark.parametrize(
    ("kwargs", "field", "expected"),
    [
        ({"xyxy": np.zeros((2, 3))}, "xyxy", "expected shape (n, 4), got (2, 3)"),
        ({"xyxy": np.zeros(4)}, "xyxy", "expected shape (n, 4), got (4,)"),
        ({"confidence": np.zeros(3)}, "confidence", "expected shape (2,), got (3,)"),
        ({"class_id": np.zeros((2, 1))}, "class_id", "expected shape (2,), got (2, 1)"),
        ({"keypoints": np.zeros((2, 6, 3))}, "keypoints", "expected shape (2, k, 2), got (2, 6, 3)"),
        ({"labels": ("a",)}, "labels", "expected 2 labels, got 1"),
        ({"xyxy": [["a", "b", "c", "d"]] * 2}, "xyxy", "expected an array convertible to float32"),
    ],
)
def test_detections_validation(kwargs: dict, field: str, expected: str) -> None:
    base = {
        "xyxy": np.zeros((2, 4)),
        "confidence": np.zeros(2),
        "class_id": np.zeros(2),
        "keypoints": None,
        "labels": None,
    }
    base.update(kwargs)
    with pytest.raises(ValidationError) as info:
        Detections(**base)
    assert info.value.field == f"Detections.{field}"
    assert expected in info.value.message


def test_detections_slicing_returns_same_type() -> None:
    d = _dets(4)
    one = d[1]
    assert isinstance(one, Detections) and len(one) == 1
    assert one.labels == ("c1",) and one.xyxy[0].tolist() == [10, 10, 15, 18]
    assert d[-1].labels == ("c3",)
    assert d[1:3].labels == ("c1", "c2") and d[1:3].keypoints.shape == (2, 2, 2)
    high = d[d.confidence > 0.7]
    assert high.labels == ("c0", "c1")
    assert d[np.array([3, 0])].class_id.tolist() == [3, 0]
    assert len(d[d.confidence > 2]) == 0
    with pytest.raises(IndexError):
        d[4]
    assert d.with_min_confidence(0.6).labels == ("c0", "c1", "c2")


def test_detections_empty_and_to_list() -> None:
    e = Detections.empty(6)
    assert len(e) == 0 and e.keypoints.shape == (0, 6, 2) and e.to_list() == []
    items = _dets(2).to_list()
    assert items[0] == {
        "box": [0.0, 0.0, 5.0, 8.0],
        "confidence": 0.9,
        "class_id": 0,
        "label": "c0",
        "keypoints": [[0.0, 1.0], [2.0, 3.0]],
    }
    assert "keypoints" not in _dets(1, kp=False).to_list()[0]


def test_detections_from_mediapipe_real_protos() -> None:
    detection_pb2 = pytest.importorskip("mediapipe.framework.formats.detection_pb2")
    det = detection_pb2.Detection()
    det.score.append(0.8)
    box = det.location_data.relative_bounding_box
    box.xmin, box.ymin, box.width, box.height = 0.25, 0.5, 0.5, 0.25
    for x, y in [(0.3, 0.6), (0.7, 0.6)]:
        kp = det.location_data.relative_keypoints.add()
        kp.x, kp.y = x, y
    outside = detection_pb2.Detection()
    outside.score.append(0.6)
    ob = outside.location_data.relative_bounding_box
    ob.xmin, ob.ymin, ob.width, ob.height = -0.1, 0.9, 0.3, 0.3
    d = Detections.from_mediapipe([det, outside], 200, 100)
    assert np.allclose(d.xyxy, [[50, 50, 150, 75], [0, 90, 40, 100]])  # second clipped to the image
    assert np.allclose(d.confidence, [0.8, 0.6])
    assert np.allclose(d.keypoints[0], [[60, 60], [140, 60]])
    assert d.labels == ("face", "face")
    assert len(Detections.from_mediapipe(None, 10, 10)) == 0


def test_landmarks_validation_slicing_boxes() -> None:
    pts = np.zeros((2, 3, 3), np.float32)
    pts[0, :, :2] = [[1, 2], [5, 9], [3, 4]]
    pts[1, :, :2] = [[10, 10], [20, 30], [15, 12]]
    lm = Landmarks(pts, np.ones((2, 3)), [0.9, 0.8], ("Left", "Right"), "hands")
    assert lm.boxes().tolist() == [[1, 2, 5, 9], [10, 10, 20, 30]]
    assert (
        lm[1].labels == ("Right",) and lm[1].kind == "hands" and lm[1].scores.tolist() == [pytest.approx(0.8)]
    )
    assert lm.num_points == 3
    with pytest.raises(ValidationError, match=r"expected shape \(n, k, 3\), got \(2, 3\)"):
        Landmarks(np.zeros((2, 3)))
    with pytest.raises(ValidationError, match=r"visibility: expected shape \(2, 3\), got \(2,\)"):
        Landmarks(pts, np.ones(2))
    with pytest.raises(ValidationError, match="expected 2 labels, got 1"):
        Landmarks(pts, labels=("x",))
    item = lm.to_list()[0]
    assert item["kind"] == "hands" and item["label"] == "Left" and len(item["points"]) == 3
    assert Landmarks.empty(33, kind="pose").boxes().shape == (0, 4)


def test_landmarks_from_mediapipe_real_protos() -> None:
    landmark_pb2 = pytest.importorskip("mediapipe.framework.formats.landmark_pb2")
    lst = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in [(0.5, 0.5, 0.1), (0.25, 1.0, -0.1)]:
        p = lst.landmark.add()
        p.x, p.y, p.z, p.visibility = x, y, z, 0.7
    lm = Landmarks.from_mediapipe([lst], 100, 50, kind="pose", num_points=2, with_visibility=True)
    assert np.allclose(lm.points[0], [[50, 25, 10], [25, 50, -10]])
    assert np.allclose(lm.visibility, 0.7)
    assert Landmarks.from_mediapipe(None, 10, 10, kind="pose", num_points=33).points.shape == (0, 33, 3)
    two = Landmarks.from_mediapipe([lst, lst], 100, 50, kind="pose", num_points=2)
    assert (
        two.points.shape == (2, 2, 3) and two.visibility is None and np.allclose(two.points[1], lm.points[0])
    )
    with pytest.raises(ValidationError, match=r"Landmarks.points: expected 33 points per set, got \[2\]"):
        Landmarks.from_mediapipe([lst], 100, 50, kind="pose", num_points=33)


def test_mask() -> None:
    data = np.zeros((4, 5), np.uint8)
    data[1:3, 2:4] = 255
    m = Mask(data)
    assert m.data.dtype == np.float32 and m.data.max() == 1.0
    assert m.shape == (4, 5) and m.coverage() == pytest.approx(4 / 20) and m.bbox() == [2, 1, 4, 3]
    rle = m.rle()
    rebuilt = np.concatenate([np.full(n, i % 2, bool) for i, n in enumerate(rle)])
    assert np.array_equal(rebuilt.reshape(4, 5), m.binary())
    full = Mask(np.ones((2, 2), np.float32))
    assert full.rle() == [0, 4]
    assert Mask(np.zeros((3, 3), np.float32)).bbox() is None
    d = m.to_dict(include_data=True)
    assert d["width"] == 5 and d["height"] == 4 and d["rle"] == rle and d["coverage"] == 0.2
    with pytest.raises(
        ValidationError, match=r"expected a non-empty array of shape \(H, W\), got \(2, 2, 3\)"
    ):
        Mask(np.zeros((2, 2, 3)))
    with pytest.raises(ValidationError, match="expected a value in"):
        Mask(np.zeros((2, 2)), threshold=2.0)
    with pytest.raises(ValidationError, match="expected a numpy array"):
        Mask([[0, 1]])


def test_classification() -> None:
    c = Classification(np.array([0.1, 0.7, 0.2]), ("cat", "dog", "fox"))
    assert c.class_id == 1 and c.label == "dog" and c.confidence == pytest.approx(0.7)
    assert [t[1] for t in c.top_k(2)] == ["dog", "fox"]
    assert c.to_dict()["label"] == "dog" and len(c.to_dict()["top"]) == 3
    assert Classification(np.array([0.2, 0.8])).label == "1"
    with pytest.raises(ValidationError, match="expected 3 names, got 2"):
        Classification(np.array([0.1, 0.7, 0.2]), ("a", "b"))
    with pytest.raises(ValidationError, match=r"expected a non-empty shape \(C,\)"):
        Classification(np.zeros((0,)))


def test_model_result() -> None:
    r = ModelResult("m", 1.23456, detections=_dets(2))
    assert r.num_detections == 2
    d = r.to_dict()
    assert d["model"] == "m" and d["inference_ms"] == 1.235 and len(d["detections"]) == 2
    assert "landmarks" not in d and "mask" not in d
    json.dumps(d)
    lm = ModelResult("p", 0.0, landmarks=Landmarks(np.zeros((1, 33, 3))))
    assert lm.num_detections == 1
    assert ModelResult("s", 0.0, mask=Mask(np.zeros((2, 2), np.float32))).num_detections == 0
    with pytest.raises(ValidationError, match="expected Detections or None, got list"):
        ModelResult("m", 0.0, detections=[])
    with pytest.raises(ValidationError, match="expected a non-empty model name"):
        ModelResult("", 0.0)


def test_landmark_fast_path_matches_field_by_field() -> None:
    landmark_pb2 = pytest.importorskip("mediapipe.framework.formats.landmark_pb2")
    from aisp.models._protobuf import landmark_array

    rng = np.random.default_rng(0)
    for with_vis in (False, True):
        lst = landmark_pb2.NormalizedLandmarkList()
        for x, y, z in rng.random((20, 3)):
            p = lst.landmark.add()
            p.x, p.y, p.z = x, y, z
            if with_vis:
                p.visibility = 0.5
        slow = np.asarray([(p.x, p.y, p.z, p.visibility) for p in lst.landmark], np.float32)
        assert np.array_equal(landmark_array(lst), slow)
    ragged = landmark_pb2.NormalizedLandmarkList()
    a = ragged.landmark.add()
    a.x, a.y, a.z = 0.1, 0.2, 0.3
    b = ragged.landmark.add()
    b.x, b.y = 0.4, 0.5  # z unset: a different record layout, so the fallback path runs
    assert np.allclose(landmark_array(ragged), [[0.1, 0.2, 0.3, 0], [0.4, 0.5, 0, 0]])


def test_detection_fast_path_matches_field_by_field() -> None:
    detection_pb2 = pytest.importorskip("mediapipe.framework.formats.detection_pb2")
    from aisp.models import _protobuf

    det = detection_pb2.Detection()
    det.label.append("face")
    det.label_id.append(7)
    det.score.extend([0.75, 0.2])
    det.detection_id = 12345  # a varint field the walker skips
    det.track_id = "t1"
    loc = det.location_data
    loc.format = loc.RELATIVE_BOUNDING_BOX
    bb = loc.relative_bounding_box
    bb.xmin, bb.ymin, bb.width, bb.height = 0.1, 0.2, 0.3, 0.4
    for x, y in [(0.15, 0.25), (0.35, 0.45)]:
        kp = loc.relative_keypoints.add()
        kp.x, kp.y = x, y
        kp.keypoint_label = "eye"  # extra fields after x, y are skipped
        kp.score = 0.9
    fast = _protobuf._fast_detection(det.SerializeToString())
    assert fast is not None
    score, box, kps = fast
    assert score == pytest.approx(0.75) and np.allclose(box, [0.1, 0.2, 0.3, 0.4])
    assert np.allclose(kps, [0.15, 0.25, 0.35, 0.45])
    # no relative box (absolute pixels instead): the fast path declines, the fallback answers
    other = detection_pb2.Detection()
    other.score.append(0.5)
    other.location_data.bounding_box.xmin = 10
    assert _protobuf._fast_detection(other.SerializeToString()) is None
    assert _protobuf.detection_fields(other) == (pytest.approx(0.5), (0.0, 0.0, 0.0, 0.0), [])
    d = Detections.from_mediapipe([det, other], 100, 100)
    assert np.allclose(d.xyxy, [[10, 20, 40, 60], [0, 0, 0, 0]], atol=1e-4)
    assert d.keypoints.shape == (2, 2, 2) and np.allclose(d.keypoints[1], 0)
