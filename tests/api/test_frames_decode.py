"""Reduced JPEG decode on the frames route (opt-in): when it applies, and that results stay accurate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aisp.api.frame_processing import decode_reduction
from aisp.api.imageinfo import ImageInfo
from tests.api.conftest import Harness, encode, test_image

URL = "/api/frames/process"


class _Net:
    def __init__(self, side: int | None) -> None:
        self.network_input_side = side


def _iou(a: list[float], b: list[float]) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _astronaut(width: int, height: int) -> bytes:
    import cv2
    import skimage.data

    return encode(cv2.cvtColor(cv2.resize(skimage.data.astronaut(), (width, height)), cv2.COLOR_RGB2BGR))


@pytest.mark.parametrize(
    ("info", "sides", "annotate", "allowed", "factor"),
    [
        (ImageInfo("jpeg", 640, 480, True), [128], False, True, 2),  # 320 >= 2 * 128
        (ImageInfo("jpeg", 4000, 3000, True), [128], False, True, 2),  # never below half scale
        (ImageInfo("jpeg", 480, 640, True), [128, 192], False, True, 1),  # 320 < 2 * 192
        (ImageInfo("jpeg", 500, 300, True), [128], False, True, 1),  # 250 < 256
        (ImageInfo("jpeg", 640, 480, True), [128, None], False, True, 1),  # a full-res model
        (ImageInfo("jpeg", 640, 480, True), [128], True, True, 1),  # annotated image wanted
        (ImageInfo("jpeg", 640, 480, True), [128], False, False, 1),  # turned off
        (ImageInfo("png", 640, 480, True), [128], False, True, 1),  # only JPEG scales in the IDCT
    ],
)
def test_decode_reduction_rule(
    info: ImageInfo, sides: list[int | None], annotate: bool, allowed: bool, factor: int
) -> None:
    models = [_Net(s) for s in sides]
    assert decode_reduction(info, models, annotate=annotate, allowed=allowed) == factor


def _detect(api: Harness, jpeg: bytes, query: str = "") -> dict[str, Any]:
    r = api.client.post(
        f"{URL}?models=face_detection{query}", content=jpeg, headers={"Content-Type": "image/jpeg"}
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 960)])
def test_reduced_decode_matches_full_decode_on_astronaut(api: Harness, width: int, height: int) -> None:
    jpeg = _astronaut(width, height)
    reduced = _detect(api, jpeg, "&reduced_decode=true")
    full = _detect(api, jpeg)  # the default: a full decode
    assert reduced["decode_scale"] == 2 and full["decode_scale"] == 1
    assert (reduced["width"], reduced["height"]) == (full["width"], full["height"]) == (width, height)
    r_dets = reduced["models"]["face_detection"]["detections"]
    f_dets = full["models"]["face_detection"]["detections"]
    assert len(r_dets) == len(f_dets) == 1
    # boxes and keypoints are back in the original image's pixels
    assert _iou(r_dets[0]["box"], f_dets[0]["box"]) >= 0.9
    kp_error = np.abs(np.array(r_dets[0]["keypoints"]) - np.array(f_dets[0]["keypoints"])).max()
    assert kp_error <= 0.02 * width


def test_annotate_and_non_jpeg_decode_in_full(api: Harness) -> None:
    jpeg = _astronaut(640, 480)
    r = api.client.post(
        f"{URL}?models=face_detection&annotate=true&reduced_decode=true",
        content=jpeg,
        headers={"Content-Type": "image/jpeg"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    png = api.client.post(
        f"{URL}?models=face_detection&reduced_decode=true",
        content=encode(test_image(640, 480), ".png"),
        headers={"Content-Type": "image/png"},
    )
    assert png.status_code == 200 and png.json()["decode_scale"] == 1
    fake = _detect_fake(api, jpeg, "&reduced_decode=true")
    assert fake["decode_scale"] == 1  # the fake model declares no network input: full decode


def _detect_fake(api: Harness, jpeg: bytes, query: str = "") -> dict[str, Any]:
    r = api.client.post(f"{URL}?models=fake{query}", content=jpeg, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    return r.json()


def test_model_result_scaled_moves_boxes_keypoints_and_landmarks() -> None:
    from aisp.errors import ValidationError
    from aisp.models.results import Detections, Landmarks, Mask, ModelResult

    dets = Detections(
        np.array([[10, 20, 30, 40]], np.float32),
        np.array([0.9], np.float32),
        np.array([0], np.int32),
        np.array([[[5, 6], [7, 8]]], np.float32),
        ("face",),
    )
    lms = Landmarks(np.array([[[1, 2, 3]]], np.float32), kind="pose")
    out = ModelResult("m", 1.5, dets, lms).scaled(2.0, 3.0)
    assert out.detections is not None and out.landmarks is not None
    assert out.detections.xyxy.tolist() == [[20, 60, 60, 120]]
    assert out.detections.keypoints.tolist() == [[[10, 18], [14, 24]]]
    assert out.detections.labels == ("face",) and out.detections.confidence.tolist() == pytest.approx([0.9])
    assert out.landmarks.points.tolist() == [[[2, 6, 6]]]  # z follows x
    assert dets.xyxy.tolist() == [[10, 20, 30, 40]]  # the original is untouched
    with pytest.raises(ValidationError, match="scaled"):
        ModelResult("seg", 1.0, mask=Mask(np.zeros((4, 4), np.float32), 0.5, "person")).scaled(2, 2)
