"""Shared constants and helpers for the models tests."""

from __future__ import annotations

#: Face boxes checked by eye (xyxy, pixels): forehead/hairline to chin, ear to ear.
ASTRONAUT_FACE = (176.0, 78.0, 274.0, 180.0)
CAMERA_FACE = (180.0, 118.0, 266.0, 208.0)
#: Photos without any face (checked by eye: a coffee cup, cats, a rocket launch, a horse).
NO_FACE_PHOTOS = ("coffee", "chelsea", "rocket", "horse", "cat")


def iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
