"""Validation helpers shared by the result containers ("expected X, got Y" messages)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aisp.errors import ValidationError

__all__ = ["_fail", "_array", "_index", "_need", "_take_labels", "_round"]


def _fail(owner: str, field: str, expected: str, got: Any) -> ValidationError:
    return ValidationError(
        f"{owner}.{field}: expected {expected}, got {got}",
        field=f"{owner}.{field}",
        expected=expected,
        value=str(got),
    )


def _array(owner: str, field: str, value: Any, dtype: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise _fail(
            owner, field, f"an array convertible to {np.dtype(dtype).name}", type(value).__name__
        ) from exc


def _index(item: Any, n: int) -> Any:
    """Normalise an index so that indexing always keeps the first axis (int -> [i])."""
    if isinstance(item, (int, np.integer)):
        i = int(item)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} items")
        return [i % n]
    return item


def _take_labels(labels: tuple[str, ...] | None, idx: Any) -> tuple[str, ...] | None:
    if labels is None:
        return None
    return tuple(np.asarray(labels, dtype=object)[idx].tolist()) if labels else ()


def _round(a: np.ndarray, digits: int) -> list:
    return np.round(a.astype(np.float64), digits).tolist()


def _need(item: Any, i: int, owner: str, keys: tuple[str, ...]) -> None:
    """Check that item ``i`` of a serialised list is an object with ``keys``."""
    if not isinstance(item, dict):
        raise _fail(owner, f"items[{i}]", "an object", type(item).__name__)
    for key in keys:
        if key not in item:
            raise _fail(owner, f"items[{i}].{key}", f"a '{key}' value", "nothing")
