"""Pre- and post-processing for ONNX vision models, all vectorised numpy.

* :func:`letterbox` -- resize keeping the aspect ratio and pad to the network size (YOLO style).
* :func:`decode_yolo` -- a YOLOv8/YOLO11 detector output ``[1, 4+C, N]`` (rows ``cx, cy, w, h``
  then one score per class) to arrays in image pixels, ``(xyxy, confidence, class_id)``:
  confidence filter, class-aware NMS, un-letterboxing, clipping.

This module knows nothing of the result types: its decoders return plain numpy arrays (the way
supervision's ``iou_and_nms.py`` does), and :meth:`aisp.models.results.Detections.from_yolo`
wraps them, with class names as labels. So the import goes one way only: results -> here.
* :func:`nms` -- greedy non-maximum suppression; class-aware through per-class box offsets.
* :func:`to_probabilities` -- a classifier's ``[1, C]`` output to probabilities (softmax unless the
  row already is a probability distribution).
"""

from __future__ import annotations

import numpy as np

from aisp.errors import ValidationError

__all__ = [
    "letterbox",
    "decode_yolo",
    "nms",
    "box_iou",
    "pairwise_iou",
    "to_probabilities",
    "center_crop_resize",
    "Boxes",
]

#: ``(xyxy, confidence, class_id)``: float32 (n, 4), float32 (n,), int32 (n,).
Boxes = tuple[np.ndarray, np.ndarray, np.ndarray]

PAD_VALUE = 114


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize ``image`` into ``size`` = (height, width) keeping its aspect ratio; pad with grey.

    Returns the padded image, the scale applied and the (left, top) padding in pixels.
    """
    import cv2

    h, w = image.shape[:2]
    th, tw = size
    scale = min(th / h, tw / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = image if (nh, nw) == (h, w) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = (th - nh) // 2, (tw - nw) // 2
    out = np.full((th, tw, 3), PAD_VALUE, np.uint8)
    out[top : top + nh, left : left + nw] = resized
    return out, scale, (float(left), float(top))


def center_crop_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize the shorter side to fit ``size`` = (height, width) and crop the centre (classifiers)."""
    import cv2

    h, w = image.shape[:2]
    th, tw = size
    scale = max(th / h, tw / w)
    nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = (nh - th) // 2, (nw - tw) // 2
    return resized[top : top + th, left : left + tw]


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box against (n, 4) boxes."""
    return pairwise_iou(box[None], boxes)[0]


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU matrix of xyxy boxes."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / np.maximum(union, 1e-12)


#: Up to this many candidates NMS builds the full IoU matrix at once (2048^2 floats = 32 MB).
MATRIX_NMS_LIMIT = 2048


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    class_ids: np.ndarray | None = None,
    max_det: int = 300,
) -> np.ndarray:
    """Indices kept by greedy NMS, best score first. With ``class_ids`` boxes of different
    classes never suppress each other (each class is shifted to its own region).

    Up to :data:`MATRIX_NMS_LIMIT` candidates, the IoU of every pair is computed in one
    vectorised step and the greedy pass only reads rows of it; beyond that, each kept box is
    compared with the remaining ones (memory stays linear)."""
    n = boxes.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    b = boxes.astype(np.float64)
    if class_ids is not None:
        span = float(b.max() - min(b.min(), 0.0)) + 1.0
        b = b + (class_ids.astype(np.float64) * span)[:, None]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    if n <= MATRIX_NMS_LIMIT:
        b = b[order].astype(np.float32)  # float32 halves the matrix work; ample for IoU
        over = pairwise_iou(b, b) > iou_threshold
        suppressed = np.zeros(n, bool)
        for i in range(n):
            if suppressed[i]:
                continue
            keep.append(int(order[i]))
            if len(keep) >= max_det:
                break
            suppressed |= over[i]
        return np.asarray(keep, np.int64)
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[box_iou(b[i], b[rest]) <= iou_threshold]
    return np.asarray(keep, np.int64)


def decode_yolo(
    output: np.ndarray,
    *,
    image_shape: tuple[int, int],
    scale: float,
    pad: tuple[float, float],
    conf_threshold: float,
    iou_threshold: float,
    max_det: int = 300,
    max_candidates: int = 30000,
) -> Boxes:
    """Decode one image's YOLOv8/YOLO11 output to ``(xyxy, confidence, class_id)`` in the original
    image's pixels, best first within NMS order."""
    out = np.asarray(output)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise ValidationError(
                f"YOLO output: expected batch size 1, got shape {tuple(out.shape)}",
                field="output",
                expected="[1, 4+C, N]",
                value=str(tuple(out.shape)),
            )
        out = out[0]
    if out.ndim != 2 or out.shape[0] < 5:
        raise ValidationError(
            f"YOLO output: expected shape [1, 4+C, N] with C >= 1, got {tuple(np.shape(output))}",
            field="output",
            expected="[1, 4+C, N]",
            value=str(tuple(np.shape(output))),
        )
    class_scores = out[4:]
    best = class_scores.max(axis=0)  # cheap; argmax only over the columns that pass
    keep = np.flatnonzero(best >= conf_threshold)
    if keep.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32)
    if keep.size > max_candidates:
        keep = keep[np.argsort(-best[keep], kind="stable")[:max_candidates]]
    class_id = class_scores[:, keep].argmax(axis=0).astype(np.int32)
    conf = best[keep].astype(np.float32)
    cx, cy, w, h = out[0, keep], out[1, keep], out[2, keep], out[3, keep]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    kept = nms(boxes, conf, iou_threshold, class_id, max_det)
    boxes, conf, class_id = boxes[kept], conf[kept], class_id[kept]
    boxes -= np.array([pad[0], pad[1], pad[0], pad[1]], np.float32)
    boxes /= np.float32(scale)
    ih, iw = image_shape
    np.clip(boxes, 0, np.array([iw, ih, iw, ih], np.float32), out=boxes)
    return boxes, conf, class_id


def to_probabilities(logits: np.ndarray) -> np.ndarray:
    """A (C,) row as probabilities: kept if it already sums to 1 within 1e-3 and is in [0, 1]."""
    row = np.asarray(logits, np.float64).ravel()
    if row.size and row.min() >= 0.0 and row.max() <= 1.0 and abs(row.sum() - 1.0) <= 1e-3:
        return row.astype(np.float32)
    e = np.exp(row - row.max())
    return (e / e.sum()).astype(np.float32)
