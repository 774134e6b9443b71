"""MediaPipe adapters on real photos: parity with raw MediaPipe, known faces, no false faces."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from aisp.errors import ModelLoadError
from aisp.models import ModelRegistry
from tests.models._helpers import ASTRONAUT_FACE, CAMERA_FACE, NO_FACE_PHOTOS, iou

mp = pytest.importorskip("mediapipe")
cv2 = pytest.importorskip("cv2")

#: Models built fresh (no cache), with the default ModelConfig.
UNCACHED = ModelRegistry()


@pytest.fixture(scope="module")
def models():
    loaded: dict = {}

    def get(name: str):
        if name not in loaded:
            loaded[name] = UNCACHED.load(name, cache=False)
        return loaded[name]

    yield get
    for m in loaded.values():
        m.close()


def _scaled(img: np.ndarray, s: float) -> np.ndarray:
    return img if s == 1.0 else cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)


def test_parity_with_raw_mediapipe(photos, models) -> None:
    """AISP's face_detection gives exactly what mediapipe.solutions.face_detection gives."""
    model = models("face_detection")
    for name in ("astronaut", "camera"):
        frame = photos[name]
        h, w = frame.shape[:2]
        assert model.options["model_selection"] == 0
        with mp.solutions.face_detection.FaceDetection(**model.options) as raw:
            expected = raw.process(frame).detections or []
        ours = model.infer(frame).detections
        assert len(ours) == len(expected) >= 1
        for i, det in enumerate(expected):
            bb = det.location_data.relative_bounding_box
            box = np.clip(
                [bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h],
                0,
                [w, h, w, h],
            )
            assert np.allclose(ours.xyxy[i], box, atol=1e-3)
            assert ours.confidence[i] == pytest.approx(det.score[0], abs=1e-6)
            kps = [(k.x * w, k.y * h) for k in det.location_data.relative_keypoints]
            assert np.allclose(ours.keypoints[i], kps, atol=1e-3)


@pytest.mark.parametrize("name", ["face_detection", "face_detection_full"])
@pytest.mark.parametrize("scale", [0.6, 1.0, 1.5])
@pytest.mark.parametrize("flip", [False, True])
def test_astronaut_face_found(photos, models, name: str, scale: float, flip: bool) -> None:
    frame = _scaled(photos["astronaut"], scale)
    truth = np.array(ASTRONAUT_FACE) * scale
    if flip:
        frame = frame[:, ::-1]  # a non-contiguous view: the adapter copies it once
        w = frame.shape[1]
        truth = np.array([w - truth[2], truth[1], w - truth[0], truth[3]])
    dets = models(name).infer(frame).detections
    assert len(dets) == 1, dets
    assert iou(dets.xyxy[0], truth) >= 0.5
    assert dets.labels == ("face",) and dets.keypoints.shape == (1, 6, 2)
    # the eyes (keypoints 0 and 1) lie inside the face box
    x1, y1, x2, y2 = truth
    eyes = dets.keypoints[0, :2]
    assert ((eyes[:, 0] > x1) & (eyes[:, 0] < x2) & (eyes[:, 1] > y1) & (eyes[:, 1] < y2)).all()


@pytest.mark.parametrize("flip", [False, True])
def test_camera_man_face_found(photos, models, flip: bool) -> None:
    frame = photos["camera"]
    truth = np.array(CAMERA_FACE)
    if flip:
        frame = frame[:, ::-1]
        truth = np.array([frame.shape[1] - truth[2], truth[1], frame.shape[1] - truth[0], truth[3]])
    dets = models("face_detection").infer(frame).detections
    assert len(dets) == 1 and iou(dets.xyxy[0], truth) >= 0.5


@pytest.mark.parametrize("name", NO_FACE_PHOTOS)
def test_photos_without_faces_give_none(photos, models, name: str) -> None:
    for model_name in ("face_detection", "face_detection_full"):
        assert models(model_name).infer(photos[name]).num_detections == 0, (model_name, name)
    assert len(models("face_mesh").infer(photos[name]).landmarks) == 0


def test_face_mesh_landmarks_cover_the_face(photos, models) -> None:
    lm = models("face_mesh").infer(photos["astronaut"]).landmarks
    assert lm.kind == "face_mesh" and lm.points.shape == (1, 468, 3)
    assert iou(lm.boxes()[0], ASTRONAUT_FACE) >= 0.5


def test_pose_finds_the_astronaut(photos, models) -> None:
    lm = models("pose").infer(photos["astronaut"]).landmarks
    assert lm.kind == "pose" and lm.points.shape == (1, 33, 3) and lm.visibility.shape == (1, 33)
    nose = lm.points[0, 0, :2]
    x1, y1, x2, y2 = ASTRONAUT_FACE
    assert x1 < nose[0] < x2 and y1 < nose[1] < y2 and lm.visibility[0, 0] > 0.5
    assert models("pose").infer(photos["coffee"]).num_detections == 0


def test_selfie_segmentation_mask(photos, models) -> None:
    frame = photos["astronaut"]
    mask = models("selfie_segmentation").infer(frame).mask
    assert mask is not None and mask.shape == frame.shape[:2] and mask.label == "person"
    x1, y1, x2, y2 = (int(v) for v in ASTRONAUT_FACE)
    face = mask.binary()[y1:y2, x1:x2]
    assert face.mean() > 0.9  # the face is person
    assert not mask.binary()[:40, :40].any()  # the flag in the top-left corner is not
    again = models("selfie_segmentation").infer(frame).mask
    assert again.data is not mask.data and np.allclose(again.data, mask.data)  # owned copies


def test_hands_on_photos_without_hands(photos, models) -> None:
    model = models("hands")
    for name in ("coffee", "rocket", "astronaut"):
        lm = model.infer(photos[name]).landmarks
        assert lm.kind == "hands" and lm.points.shape == (0, 21, 3)


def test_hands_converts_handedness_from_real_protos() -> None:
    """The adapter's conversion, fed MediaPipe's own proto types."""
    from types import SimpleNamespace

    from mediapipe.framework.formats import classification_pb2, landmark_pb2

    from aisp.models.mediapipe import HandsModel

    hand = landmark_pb2.NormalizedLandmarkList()
    for i in range(21):
        p = hand.landmark.add()
        p.x, p.y = i / 40, 0.5
    cls = classification_pb2.ClassificationList()
    c = cls.classification.add()
    c.label, c.score = "Left", 0.93
    out = SimpleNamespace(multi_hand_landmarks=[hand], multi_handedness=[cls])
    parts = HandsModel._convert(None, out, np.zeros((100, 200, 3), np.uint8))  # type: ignore[arg-type]
    lm = parts["landmarks"]
    assert lm.labels == ("Left",) and lm.scores[0] == pytest.approx(0.93)
    assert lm.points[0, 20, 0] == pytest.approx(100.0) and lm.points[0, 0, 1] == pytest.approx(50.0)


def test_per_worker_instances_and_thread_safety(photos, registry) -> None:
    w1 = registry.load("face_detection", instance="w1")
    w2 = registry.load("face_detection", instance="w2")
    assert w1 is not w2 and not w1.thread_safe and registry.load("face_detection", instance="w1") is w1
    assert {"face_detection#w1", "face_detection#w2"} <= {str(k) for k in registry.cache.keys()}
    # one instance, hit by four threads at once: its lock serialises the graph, results agree
    frame = photos["astronaut"]
    barrier = threading.Barrier(4)
    boxes: list = []
    errors: list = []

    def work() -> None:
        try:
            barrier.wait(10)
            for _ in range(3):
                boxes.append(w1.infer(frame).detections.xyxy.copy())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(boxes) == 12
    assert all(np.allclose(b, boxes[0]) for b in boxes)


def test_closed_model_refuses_frames(photos) -> None:
    model = UNCACHED.load("face_detection", cache=False)
    model.close()
    model.close()
    with pytest.raises(ModelLoadError, match="is closed"):
        model.infer(photos["astronaut"])


def test_info_after_load(models) -> None:
    model = models("face_detection")
    assert model.backend == "mediapipe" and model.size_bytes > 100_000 and model.load_ms > 0


def test_worker_instances_run_in_parallel(photos, registry) -> None:
    """Two workers, each with its own graph, infer at the same time and agree with a lone run."""
    frames = [photos["astronaut"], photos["camera"], photos["coffee"]]
    expected = [registry.load("face_detection", cache=False).infer(f).detections.xyxy for f in frames]
    workers = [registry.load("face_detection", instance=f"par{i}") for i in range(2)]
    barrier = threading.Barrier(2)
    got: dict[int, list] = {0: [], 1: []}
    errors: list = []

    def work(i: int) -> None:
        try:
            barrier.wait(10)
            for _ in range(2):
                got[i].extend(workers[i].infer(f).detections.xyxy for f in frames)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for i in range(2):
        assert len(got[i]) == 6
        for j, xyxy in enumerate(got[i]):
            assert np.allclose(xyxy, expected[j % 3], atol=1e-3)
