"""Whole-frame results: :class:`Mask` (a soft person/motion map) and :class:`Classification`.

Re-exported by :mod:`aisp.models.results`, which holds the other result containers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aisp.models._validate import _array, _fail

__all__ = ["Mask", "Classification"]


@dataclass(frozen=True, eq=False)
class Mask:
    """A soft (H, W) float32 map in [0, 1]; pixels above ``threshold`` belong to ``label``."""

    data: np.ndarray
    threshold: float = 0.5
    label: str = "person"

    def __post_init__(self) -> None:
        data = self.data
        if not isinstance(data, np.ndarray):
            raise _fail("Mask", "data", "a numpy array of shape (H, W)", type(data).__name__)
        if data.ndim == 3 and data.shape[2] == 1:
            data = data[:, :, 0]
        if data.ndim != 2 or data.size == 0:
            raise _fail("Mask", "data", "a non-empty array of shape (H, W)", tuple(data.shape))
        if data.dtype == np.uint8:
            data = data.astype(np.float32) / 255.0
        elif data.dtype != np.float32:
            data = data.astype(np.float32)
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise _fail("Mask", "threshold", "a value in [0, 1]", self.threshold)
        object.__setattr__(self, "data", data)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.data.shape[0]), int(self.data.shape[1]))

    def binary(self) -> np.ndarray:
        return self.data > self.threshold

    def coverage(self) -> float:
        return float(np.count_nonzero(self.binary())) / float(self.data.size)

    def bbox(self) -> list[int] | None:
        b = self.binary()
        rows, cols = np.flatnonzero(b.any(axis=1)), np.flatnonzero(b.any(axis=0))
        if rows.size == 0:
            return None
        return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]

    def rle(self) -> list[int]:
        """Run lengths of the binary mask in row-major order, starting with a run of zeros."""
        flat = self.binary().ravel()
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        bounds = np.concatenate([[0], edges, [flat.size]])
        runs = np.diff(bounds).tolist()
        return [0, *runs] if flat[0] else runs

    def to_dict(self, include_data: bool = False) -> dict[str, Any]:
        h, w = self.shape
        out: dict[str, Any] = {
            "label": self.label,
            "width": w,
            "height": h,
            "threshold": self.threshold,
            "coverage": round(self.coverage(), 4),
            "bbox": self.bbox(),
        }
        if include_data:
            out["rle"] = self.rle()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mask:
        """The inverse of ``to_dict(include_data=True)``: the binary mask rebuilt from its run
        lengths (1.0 inside, 0.0 outside; the soft values are not sent). Raises
        ``ValidationError`` without ``rle``, or when the runs do not cover width x height."""
        if not isinstance(data, dict):
            raise _fail("Mask", "data", "a mask object", type(data).__name__)
        try:
            width, height, runs = int(data["width"]), int(data["height"]), data["rle"]
        except KeyError as exc:
            raise _fail("Mask", str(exc.args[0]), f"a '{exc.args[0]}' value", "nothing") from None
        except (TypeError, ValueError):
            raise _fail("Mask", "width", "integer width and height", data.get("width")) from None
        counts = _array("Mask", "rle", runs, np.int64)
        if counts.ndim != 1 or (counts < 0).any() or int(counts.sum()) != width * height:
            raise _fail("Mask", "rle", f"run lengths adding up to {width}x{height}", f"{counts.sum()}")
        values = np.arange(counts.size) % 2 == 1  # the first run is of zeros
        flat = np.repeat(values, counts).astype(np.float32)
        threshold, label = float(data.get("threshold", 0.5)), str(data.get("label", "person"))
        return cls(flat.reshape(height, width), threshold, label)


@dataclass(frozen=True, eq=False)
class Classification:
    """Class probabilities for the whole frame."""

    probabilities: np.ndarray
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        p = _array("Classification", "probabilities", self.probabilities, np.float32)
        if p.ndim != 1 or p.size == 0:
            raise _fail("Classification", "probabilities", "a non-empty shape (C,)", tuple(p.shape))
        object.__setattr__(self, "probabilities", p)
        if self.class_names is not None:
            names = tuple(str(x) for x in self.class_names)
            if len(names) != p.size:
                raise _fail("Classification", "class_names", f"{p.size} names", len(names))
            object.__setattr__(self, "class_names", names)

    @property
    def class_id(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.class_id])

    @property
    def label(self) -> str:
        return self.label_of(self.class_id)

    def label_of(self, class_id: int) -> str:
        return self.class_names[class_id] if self.class_names else str(class_id)

    def top_k(self, k: int = 5) -> list[tuple[int, str, float]]:
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(int(i), self.label_of(int(i)), float(self.probabilities[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        top = [{"class_id": i, "label": name, "confidence": round(p, 4)} for i, name, p in self.top_k(5)]
        return {**top[0], "top": top}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classification:
        """The inverse of :meth:`to_dict`, which sends the five best classes only: the other
        classes' probabilities are 0 here, and their names (when the top ones have names) are
        their ids as text. ``top_k(5)``, ``class_id``, ``label`` and ``confidence`` are the
        sender's."""
        if not isinstance(data, dict):
            raise _fail("Classification", "data", "a classification object", type(data).__name__)
        top = data.get("top") or ([data] if "class_id" in data else [])
        if not top:
            raise _fail("Classification", "top", "at least one class", "none")
        try:
            rows = [
                (int(t["class_id"]), str(t.get("label", t["class_id"])), float(t["confidence"])) for t in top
            ]
        except (KeyError, TypeError, ValueError):
            raise _fail("Classification", "top", "items with class_id and confidence", top[:1]) from None
        size = max(i for i, _, _ in rows) + 1
        probs = np.zeros(size, np.float32)
        names = [str(i) for i in range(size)]
        for i, label, p in rows:
            probs[i], names[i] = p, label
        named = any(label != str(i) for i, label, _ in rows)
        return cls(probs, tuple(names) if named else None)
