"""Typed, vectorised model results.

* :class:`Detections` -- boxes ``xyxy`` (n, 4) in pixels, ``confidence`` (n,), ``class_id`` (n,),
  optional ``keypoints`` (n, k, 2) in pixels, per-detection ``labels`` and ``tracker_id`` (n,)
  (set by a stream's tracker; -1 for a detection whose track is not confirmed yet).
* :class:`Landmarks` -- ``points`` (n, k, 3): x, y in pixels, z relative (MediaPipe's scale),
  optional ``visibility`` (n, k), per-instance ``scores`` and ``labels`` (e.g. handedness).
* :class:`Mask` -- one (H, W) float32 map in [0, 1] with a threshold (person segmentation).
* :class:`Classification` -- class probabilities (C,) with optional class names.
* :class:`ModelResult` -- what ``Model.infer`` returns: the model name, the inference time and
  whichever of the above the model gives.

Every container validates its arrays in ``__post_init__`` and raises
:class:`aisp.errors.ValidationError` with an "expected X, got Y" message. ``Detections`` and
``Landmarks`` support ``len()``, slicing (int, slice, boolean or index arrays) returning the same
type, ``empty()`` and ``to_dict()``-style serialisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aisp.models._protobuf import detection_fields, landmark_array
from aisp.models._validate import _array, _fail, _index, _need, _round, _take_labels
from aisp.models._whole_frame import Classification, Mask
from aisp.models._yolo_postprocess import decode_yolo

__all__ = ["Detections", "Landmarks", "Mask", "Classification", "ModelResult"]


@dataclass(frozen=True, eq=False)
class Detections:
    """Boxes found in one frame (vectorised)."""

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    keypoints: np.ndarray | None = None
    labels: tuple[str, ...] | None = None
    tracker_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        xyxy = _array("Detections", "xyxy", self.xyxy, np.float32)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise _fail("Detections", "xyxy", "shape (n, 4)", tuple(xyxy.shape))
        n = xyxy.shape[0]
        conf = _array("Detections", "confidence", self.confidence, np.float32)
        if conf.shape != (n,):
            raise _fail("Detections", "confidence", f"shape ({n},)", tuple(conf.shape))
        cls = _array("Detections", "class_id", self.class_id, np.int32)
        if cls.shape != (n,):
            raise _fail("Detections", "class_id", f"shape ({n},)", tuple(cls.shape))
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", conf)
        object.__setattr__(self, "class_id", cls)
        if self.keypoints is not None:
            kp = _array("Detections", "keypoints", self.keypoints, np.float32)
            if kp.ndim != 3 or kp.shape[0] != n or kp.shape[2] != 2:
                raise _fail("Detections", "keypoints", f"shape ({n}, k, 2)", tuple(kp.shape))
            object.__setattr__(self, "keypoints", kp)
        if self.labels is not None:
            labels = tuple(str(x) for x in self.labels)
            if len(labels) != n:
                raise _fail("Detections", "labels", f"{n} labels", len(labels))
            object.__setattr__(self, "labels", labels)
        if self.tracker_id is not None:
            tid = _array("Detections", "tracker_id", self.tracker_id, np.int64)
            if tid.shape != (n,):
                raise _fail("Detections", "tracker_id", f"shape ({n},)", tuple(tid.shape))
            object.__setattr__(self, "tracker_id", tid)

    @property
    def label_names(self) -> tuple[str, ...]:
        """A label per box: ``labels``, or each class id as text when the model names none (what
        tracks, events and clip rules go by)."""
        return self.labels if self.labels is not None else tuple(str(c) for c in self.class_id.tolist())

    # --- constructors ---------------------------------------------------------------------
    @classmethod
    def empty(cls, num_keypoints: int | None = None, *, with_labels: bool = False) -> Detections:
        kp = None if num_keypoints is None else np.zeros((0, num_keypoints, 2), np.float32)
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            kp,
            () if with_labels else None,
        )

    @classmethod
    def from_mediapipe(
        cls,
        detections: Sequence[Any] | None,
        width: int,
        height: int,
        *,
        label: str = "face",
        clip: bool = True,
    ) -> Detections:
        """From ``mediapipe.solutions`` detection protos (relative boxes and keypoints).

        Boxes are scaled to pixels and, with ``clip``, clipped to the image; keypoints are
        scaled but not clipped.
        """
        if not detections:
            return cls.empty(6, with_labels=True)
        # One row of Python floats per detection and a single numpy call: right after inference
        # the caches are cold and every numpy call costs, so keep them few.
        fields = [detection_fields(det) for det in detections]
        n_kp = max(len(f[2]) for f in fields) // 2
        width_f, height_f = float(width), float(height)
        rows = []
        for score, (x, y, w, h), kps in fields:
            x1, y1, x2, y2 = x * width_f, y * height_f, (x + w) * width_f, (y + h) * height_f
            if clip:
                x1, x2 = min(max(x1, 0.0), width_f), min(max(x2, 0.0), width_f)
                y1, y2 = min(max(y1, 0.0), height_f), min(max(y2, 0.0), height_f)
            row = [score, x1, y1, x2, y2]
            row.extend(v * (width_f if k % 2 == 0 else height_f) for k, v in enumerate(kps))
            row.extend([0.0] * (5 + 2 * n_kp - len(row)))
            rows.append(row)
        arr = np.array(rows, np.float32)
        n = len(rows)
        return cls._trusted(
            arr[:, 1:5], arr[:, 0], np.zeros(n, np.int32), arr[:, 5:].reshape(n, n_kp, 2), (label,) * n
        )

    @classmethod
    def _trusted(
        cls,
        xyxy: np.ndarray,
        confidence: np.ndarray,
        class_id: np.ndarray,
        keypoints: np.ndarray | None,
        labels: tuple[str, ...] | None,
    ) -> Detections:
        """Build without validation, for adapters whose arrays have the right shapes and dtypes
        by construction (float32 (n, 4), float32 (n,), int32 (n,), float32 (n, k, 2))."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "xyxy", xyxy)
        object.__setattr__(obj, "confidence", confidence)
        object.__setattr__(obj, "class_id", class_id)
        object.__setattr__(obj, "keypoints", keypoints)
        object.__setattr__(obj, "labels", labels)
        object.__setattr__(obj, "tracker_id", None)
        return obj

    @classmethod
    def from_yolo(
        cls,
        output: np.ndarray,
        *,
        image_shape: tuple[int, int],
        scale: float,
        pad: tuple[float, float],
        conf_threshold: float,
        iou_threshold: float,
        class_names: Sequence[str] | None = None,
        max_det: int = 300,
    ) -> Detections:
        """Decode a YOLOv8/YOLO11 export output ``[1, 4+C, N]`` (see :mod:`aisp.models._yolo_postprocess`);
        with ``class_names``, each detection is labelled with its class's name (or its id, past
        the end of the list)."""
        xyxy, confidence, class_id = decode_yolo(
            output,
            image_shape=image_shape,
            scale=scale,
            pad=pad,
            conf_threshold=conf_threshold,
            iou_threshold=iou_threshold,
            max_det=max_det,
        )
        labels = None
        if class_names is not None:
            labels = tuple(class_names[c] if c < len(class_names) else str(c) for c in class_id.tolist())
        return cls(xyxy, confidence, class_id, None, labels)

    # --- container protocol ---------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, item: Any) -> Detections:
        idx = _index(item, len(self))
        return Detections(
            self.xyxy[idx],
            self.confidence[idx],
            self.class_id[idx],
            None if self.keypoints is None else self.keypoints[idx],
            _take_labels(self.labels, idx),
            None if self.tracker_id is None else self.tracker_id[idx],
        )

    def __repr__(self) -> str:
        return f"Detections(n={len(self)}, labels={self.labels!r})"

    def with_tracker_id(self, tracker_id: np.ndarray | Sequence[int]) -> Detections:
        """The same detections with ``tracker_id`` (n,) set (validated)."""
        return Detections(self.xyxy, self.confidence, self.class_id, self.keypoints, self.labels, tracker_id)

    @property
    def area(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])

    def with_min_confidence(self, threshold: float) -> Detections:
        return self[self.confidence >= threshold]

    def scaled(self, sx: float, sy: float) -> Detections:
        """The same detections with x multiplied by ``sx`` and y by ``sy`` (boxes and keypoints),
        e.g. from a reduced decode back to the original image's pixels."""
        f = np.array([sx, sy], np.float32)
        kp = None if self.keypoints is None else self.keypoints * f
        out = Detections._trusted(self.xyxy * np.tile(f, 2), self.confidence, self.class_id, kp, self.labels)
        object.__setattr__(out, "tracker_id", self.tracker_id)
        return out

    def to_list(self) -> list[dict[str, Any]]:
        boxes = _round(self.xyxy, 2)
        conf = _round(self.confidence, 4)
        cls = self.class_id.tolist()
        kps = None if self.keypoints is None else _round(self.keypoints, 2)
        tids = None if self.tracker_id is None else self.tracker_id.tolist()
        out = []
        for i in range(len(self)):
            item: dict[str, Any] = {"box": boxes[i], "confidence": conf[i], "class_id": cls[i]}
            if self.labels is not None:
                item["label"] = self.labels[i]
            if tids is not None and tids[i] >= 0:
                item["track_id"] = tids[i]
            if kps is not None:
                item["keypoints"] = kps[i]
            out.append(item)
        return out

    @classmethod
    def from_list(cls, items: Sequence[dict[str, Any]]) -> Detections:
        """The inverse of :meth:`to_list` (e.g. the ``detections`` of an API answer): labels and
        keypoints are kept when every item has them; an empty list gives :meth:`empty`. Raises
        ``ValidationError`` naming the item and field that is missing or malformed."""
        if not isinstance(items, (list, tuple)):
            raise _fail("Detections", "items", "a list of detection objects", type(items).__name__)
        if not items:
            return cls.empty()
        boxes, conf, cls_ids, kps, labels = [], [], [], [], []
        for i, item in enumerate(items):
            _need(item, i, "Detections", ("box", "confidence", "class_id"))
            boxes.append(item["box"])
            conf.append(item["confidence"])
            cls_ids.append(item["class_id"])
            kps.append(item.get("keypoints"))
            labels.append(item.get("label"))
        keypoints = None
        if all(k is not None for k in kps):
            keypoints = _array("Detections", "keypoints", kps, np.float32)
            if keypoints.ndim == 2 and keypoints.shape[1] == 0:  # items without any keypoint
                keypoints = keypoints.reshape(len(kps), 0, 2)
        names = tuple(labels) if all(x is not None for x in labels) else None
        return cls(np.asarray(boxes, np.float32), np.asarray(conf, np.float32),
                   np.asarray(cls_ids, np.int32), keypoints, names)


@dataclass(frozen=True, eq=False)
class Landmarks:
    """Landmark sets (faces, hands, bodies) found in one frame (vectorised)."""

    points: np.ndarray
    visibility: np.ndarray | None = None
    scores: np.ndarray | None = None
    labels: tuple[str, ...] | None = None
    kind: str = "generic"

    def __post_init__(self) -> None:
        pts = _array("Landmarks", "points", self.points, np.float32)
        if pts.ndim != 3 or pts.shape[2] != 3:
            raise _fail("Landmarks", "points", "shape (n, k, 3)", tuple(pts.shape))
        n, k = pts.shape[:2]
        object.__setattr__(self, "points", pts)
        if self.visibility is not None:
            vis = _array("Landmarks", "visibility", self.visibility, np.float32)
            if vis.shape != (n, k):
                raise _fail("Landmarks", "visibility", f"shape ({n}, {k})", tuple(vis.shape))
            object.__setattr__(self, "visibility", vis)
        if self.scores is not None:
            sc = _array("Landmarks", "scores", self.scores, np.float32)
            if sc.shape != (n,):
                raise _fail("Landmarks", "scores", f"shape ({n},)", tuple(sc.shape))
            object.__setattr__(self, "scores", sc)
        if self.labels is not None:
            labels = tuple(str(x) for x in self.labels)
            if len(labels) != n:
                raise _fail("Landmarks", "labels", f"{n} labels", len(labels))
            object.__setattr__(self, "labels", labels)

    @classmethod
    def empty(cls, num_points: int = 0, *, kind: str = "generic") -> Landmarks:
        return cls(np.zeros((0, num_points, 3), np.float32), kind=kind)

    @classmethod
    def from_mediapipe(
        cls,
        landmark_lists: Sequence[Any] | None,
        width: int,
        height: int,
        *,
        kind: str,
        num_points: int,
        labels: Sequence[str] | None = None,
        scores: Sequence[float] | None = None,
        with_visibility: bool = False,
    ) -> Landmarks:
        """From ``NormalizedLandmarkList`` protos; x, y scaled to pixels, z scaled by the width."""
        if not landmark_lists:
            return cls.empty(num_points, kind=kind)
        arrays = [landmark_array(lst) for lst in landmark_lists]
        if any(a.shape[0] != num_points for a in arrays):
            raise _fail("Landmarks", "points", f"{num_points} points per set", [a.shape[0] for a in arrays])
        rows = arrays[0][None] if len(arrays) == 1 else np.stack(arrays)
        rows[:, :, :3] *= np.array([width, height, width], np.float32)
        # Shapes and dtypes are right by construction: skip validation (cold caches after
        # inference make every numpy call count).
        obj = object.__new__(cls)
        object.__setattr__(obj, "points", rows[:, :, :3])
        object.__setattr__(obj, "visibility", rows[:, :, 3] if with_visibility else None)
        object.__setattr__(obj, "scores", None if scores is None else np.asarray(scores, np.float32))
        object.__setattr__(obj, "labels", None if labels is None else tuple(labels))
        object.__setattr__(obj, "kind", kind)
        return obj

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def __getitem__(self, item: Any) -> Landmarks:
        idx = _index(item, len(self))
        return Landmarks(
            self.points[idx],
            None if self.visibility is None else self.visibility[idx],
            None if self.scores is None else self.scores[idx],
            _take_labels(self.labels, idx),
            self.kind,
        )

    def __repr__(self) -> str:
        return f"Landmarks(kind={self.kind!r}, n={len(self)}, points={self.points.shape[1]})"

    @property
    def num_points(self) -> int:
        return int(self.points.shape[1])

    def boxes(self) -> np.ndarray:
        """The (n, 4) extent of each landmark set, in pixels."""
        if len(self) == 0 or self.num_points == 0:
            return np.zeros((len(self), 4), np.float32)
        xy = self.points[:, :, :2]
        return np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1)

    def to_list(self) -> list[dict[str, Any]]:
        pts = _round(self.points, 2)
        vis = None if self.visibility is None else _round(self.visibility, 3)
        scores = None if self.scores is None else _round(self.scores, 4)
        out = []
        for i in range(len(self)):
            item: dict[str, Any] = {"kind": self.kind, "points": pts[i]}
            if vis is not None:
                item["visibility"] = vis[i]
            if scores is not None:
                item["score"] = scores[i]
            if self.labels is not None:
                item["label"] = self.labels[i]
            out.append(item)
        return out

    @classmethod
    def from_list(cls, items: Sequence[dict[str, Any]], *, kind: str = "generic") -> Landmarks:
        """The inverse of :meth:`to_list`: visibility, scores and labels are kept when every item
        has them; ``kind`` is the items' own (``kind`` is used for an empty list)."""
        if not isinstance(items, (list, tuple)):
            raise _fail("Landmarks", "items", "a list of landmark objects", type(items).__name__)
        if not items:
            return cls.empty(0, kind=kind)
        for i, item in enumerate(items):
            _need(item, i, "Landmarks", ("points",))
        pts = _array("Landmarks", "points", [item["points"] for item in items], np.float32)
        if pts.ndim == 2 and pts.shape[1] == 0:  # sets without any point
            pts = pts.reshape(len(items), 0, 3)

        def every(name: str) -> list[Any] | None:
            values = [item.get(name) for item in items]
            return values if all(v is not None for v in values) else None

        vis, scores, labels = every("visibility"), every("score"), every("label")
        return cls(
            pts,
            None if vis is None else _array("Landmarks", "visibility", vis, np.float32),
            None if scores is None else np.asarray(scores, np.float32),
            None if labels is None else tuple(labels),
            str(items[0].get("kind", kind)),
        )


@dataclass(frozen=True, eq=False)
class ModelResult:
    """One model's output for one frame."""

    model: str
    inference_ms: float
    detections: Detections | None = None
    landmarks: Landmarks | None = None
    mask: Mask | None = None
    classification: Classification | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise _fail("ModelResult", "model", "a non-empty model name", repr(self.model))
        for field, cls in (
            ("detections", Detections),
            ("landmarks", Landmarks),
            ("mask", Mask),
            ("classification", Classification),
        ):
            value = getattr(self, field)
            if value is not None and not isinstance(value, cls):
                raise _fail("ModelResult", field, f"{cls.__name__} or None", type(value).__name__)

    def scaled(self, sx: float, sy: float) -> ModelResult:
        """This result in an image ``sx`` times wider and ``sy`` times taller (pixel coordinates
        of detections and landmarks scaled; landmark z follows x, as MediaPipe's does).

        Raises ``ValidationError`` for a result with a mask or a classification, whose meaning
        does not follow a change of pixel grid.
        """
        if self.mask is not None or self.classification is not None:
            raise _fail("ModelResult", "scaled", "a result with only detections and landmarks", self.model)
        lm = self.landmarks
        if lm is not None:
            pts = lm.points * np.array([sx, sy, sx], np.float32)
            lm = Landmarks(pts, lm.visibility, lm.scores, lm.labels, lm.kind)
        dets = None if self.detections is None else self.detections.scaled(sx, sy)
        return ModelResult(self.model, self.inference_ms, dets, lm, None, None)

    @property
    def num_detections(self) -> int:
        """Boxes found; for landmark-only results, the number of landmark sets."""
        if self.detections is not None:
            return len(self.detections)
        if self.landmarks is not None:
            return len(self.landmarks)
        return 0

    def to_dict(self, include_mask_data: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "inference_ms": round(float(self.inference_ms), 3),
            "num_detections": self.num_detections,
        }
        if self.detections is not None:
            out["detections"] = self.detections.to_list()
        if self.landmarks is not None:
            out["landmarks"] = self.landmarks.to_list()
        if self.mask is not None:
            out["mask"] = self.mask.to_dict(include_data=include_mask_data)
        if self.classification is not None:
            out["classification"] = self.classification.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, model: str | None = None) -> ModelResult:
        """The inverse of :meth:`to_dict` (one model's entry in an API answer or a stream message).

        Detections and landmarks come back whole (rounded as ``to_dict`` rounds them). A mask
        comes back as a :class:`Mask` only when the dict carries its run lengths (``rle``);
        a classification keeps the top five classes ``to_dict`` sends (:meth:`Classification.from_dict`).
        ``model`` names the result when the dict has no ``model`` key.
        """
        if not isinstance(data, dict):
            raise _fail("ModelResult", "data", "a result object", type(data).__name__)
        name = data.get("model", model)
        mask = data.get("mask")
        classification = data.get("classification")
        return cls(
            name,  # type: ignore[arg-type]  # validated in __post_init__
            float(data.get("inference_ms", 0.0)),
            None if data.get("detections") is None else Detections.from_list(data["detections"]),
            None if data.get("landmarks") is None else Landmarks.from_list(data["landmarks"]),
            Mask.from_dict(mask) if isinstance(mask, dict) and "rle" in mask else None,
            None if classification is None else Classification.from_dict(classification),
        )
