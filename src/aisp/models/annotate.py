"""Drawing results on frames: boxes, labels with confidence, keypoints, landmarks, masks.

:func:`annotate` returns a new RGB image and never touches its input. It runs per frame in the
video and MJPEG sinks, so it stays cheap: masks blend only the covered pixels, face-mesh points
are set with one fancy-indexing write, and only pose and hands draw their (short) skeletons.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from aisp.models._frame_check import check_frame
from aisp.models.results import Classification, Detections, Landmarks, Mask, ModelResult

__all__ = ["annotate", "draw_detections", "draw_landmarks", "draw_mask", "PALETTE", "CONNECTIONS"]

#: RGB colours, picked by class id (detections) or instance index (landmarks).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 56, 56),
    (56, 120, 255),
    (72, 220, 96),
    (255, 178, 29),
    (207, 56, 255),
    (0, 212, 187),
    (255, 112, 31),
    (146, 204, 23),
    (255, 55, 199),
    (52, 69, 147),
)

POSE_CONNECTIONS = (
    (0, 1),
    (0, 4),
    (1, 2),
    (2, 3),
    (3, 7),
    (4, 5),
    (5, 6),
    (6, 8),
    (9, 10),
    (11, 12),
    (11, 13),
    (11, 23),
    (12, 14),
    (12, 24),
    (13, 15),
    (14, 16),
    (15, 17),
    (15, 19),
    (15, 21),
    (16, 18),
    (16, 20),
    (16, 22),
    (17, 19),
    (18, 20),
    (23, 24),
    (23, 25),
    (24, 26),
    (25, 27),
    (26, 28),
    (27, 29),
    (27, 31),
    (28, 30),
    (28, 32),
    (29, 31),
    (30, 32),
)
HAND_CONNECTIONS = (
    (0, 1),
    (0, 5),
    (0, 17),
    (1, 2),
    (2, 3),
    (3, 4),
    (5, 6),
    (5, 9),
    (6, 7),
    (7, 8),
    (9, 10),
    (9, 13),
    (10, 11),
    (11, 12),
    (13, 14),
    (13, 17),
    (14, 15),
    (15, 16),
    (17, 18),
    (18, 19),
    (19, 20),
)
#: Skeletons drawn per landmark kind (face mesh draws points only).
CONNECTIONS: dict[str, tuple[tuple[int, int], ...]] = {"pose": POSE_CONNECTIONS, "hands": HAND_CONNECTIONS}

_MASK_COLOURS = {"person": (72, 220, 96), "motion": (255, 178, 29)}


def _thickness(image: np.ndarray) -> int:
    return max(1, round(min(image.shape[:2]) / 320))


def draw_detections(image: np.ndarray, dets: Detections, *, labels: bool = True) -> None:
    """Draw boxes (and keypoints, labels) in place."""
    import cv2

    if len(dets) == 0:
        return
    t = _thickness(image)
    font_scale = 0.4 * t
    boxes = np.round(dets.xyxy).astype(np.int32).tolist()
    conf = dets.confidence.tolist()
    cls = dets.class_id.tolist()
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        colour = PALETTE[cls[i] % len(PALETTE)]
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, t, cv2.LINE_8)
        if dets.keypoints is not None:
            for x, y in np.round(dets.keypoints[i]).astype(np.int32).tolist():
                cv2.circle(image, (x, y), t + 1, colour, -1, cv2.LINE_AA)
        if labels:
            name = dets.labels[i] if dets.labels is not None else str(cls[i])
            text = f"{name} {conf[i]:.2f}"
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, t - 1))
            ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + base + 2
            cv2.rectangle(image, (x1, ty - th - base), (x1 + tw + 2, ty + 1), colour, -1)
            cv2.putText(
                image,
                text,
                (x1 + 1, ty - base + 1),
                cv2.FONT_HERSHEY_SIMPLEX,
                font_scale,
                (255, 255, 255),
                max(1, t - 1),
                cv2.LINE_AA,
            )


def draw_landmarks(image: np.ndarray, marks: Landmarks) -> None:
    """Draw landmark points and, for pose and hands, their skeleton, in place."""
    import cv2

    if len(marks) == 0:
        return
    h, w = image.shape[:2]
    t = _thickness(image)
    edges = CONNECTIONS.get(marks.kind, ())
    pts_all = np.round(marks.points[:, :, :2]).astype(np.int32)
    for i in range(len(marks)):
        colour = PALETTE[i % len(PALETTE)]
        pts = pts_all[i]
        visible = np.ones(len(pts), bool) if marks.visibility is None else marks.visibility[i] >= 0.5
        if edges:
            lines = [pts[[a, b]] for a, b in edges if visible[a] and visible[b]]
            if lines:
                cv2.polylines(image, lines, False, colour, t, cv2.LINE_AA)
            for x, y in pts[visible].tolist():
                cv2.circle(image, (x, y), t + 1, (255, 255, 255), -1, cv2.LINE_AA)
        else:  # dense point sets (face mesh): one vectorised write
            inside = visible & (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
            image[pts[inside, 1], pts[inside, 0]] = colour
        if marks.labels is not None:
            x, y = pts[0].tolist()
            cv2.putText(
                image,
                marks.labels[i],
                (x, max(10, y - 6)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4 * t,
                colour,
                max(1, t - 1),
                cv2.LINE_AA,
            )


def draw_mask(
    image: np.ndarray, mask: Mask, *, alpha: float = 0.45, colour: tuple[int, int, int] | None = None
) -> None:
    """Blend a translucent colour over the mask's pixels, in place (OpenCV kernels)."""
    import cv2

    h, w = image.shape[:2]
    binary = mask.binary().view(np.uint8)
    if binary.shape != (h, w):
        binary = cv2.resize(binary, (w, h), interpolation=cv2.INTER_NEAREST)
    if not binary.any():
        return
    r, g, b = colour or _MASK_COLOURS.get(mask.label, PALETTE[0])
    tinted = cv2.convertScaleAbs(image, alpha=1.0 - alpha)
    tinted = cv2.add(tinted, (r * alpha, g * alpha, b * alpha, 0.0))
    cv2.copyTo(tinted, binary, image)


def _draw_classification(image: np.ndarray, cls: Classification, row: int) -> None:
    import cv2

    t = _thickness(image)
    text = f"{cls.label} {cls.confidence:.2f}"
    y = 18 * t * (row + 1)
    cv2.putText(image, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * t, (0, 0, 0), 3 * t, cv2.LINE_AA)
    cv2.putText(image, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * t, (255, 255, 255), t, cv2.LINE_AA)


def annotate(
    image: np.ndarray,
    results: ModelResult | Iterable[ModelResult],
    *,
    labels: bool = True,
    mask_alpha: float = 0.45,
) -> np.ndarray:
    """A new RGB image with every result drawn: masks first, then landmarks, then boxes."""
    frame = check_frame(image, "image")
    if isinstance(results, ModelResult):
        results = [results]
    results = list(results)
    out = frame.copy()
    for r in results:
        if r.mask is not None:
            draw_mask(out, r.mask, alpha=mask_alpha)
    for r in results:
        if r.landmarks is not None:
            draw_landmarks(out, r.landmarks)
    row = 0
    for r in results:
        if r.detections is not None:
            draw_detections(out, r.detections, labels=labels)
        if r.classification is not None:
            _draw_classification(out, r.classification, row)
            row += 1
    return out
