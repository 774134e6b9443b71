"""How many bytes a cached model counts for.

In order: an explicit ``size_bytes`` argument; the model's own ``size_bytes`` attribute; a
numpy-like ``nbytes`` attribute (duck typed, numpy is never imported here); the size of the file
(or directory) named by a ``path`` or ``model_path`` attribute; else :data:`DEFAULT_SIZE_BYTES`.
"""

from __future__ import annotations

import logging
import numbers
import os
from typing import Any

from aisp.errors import ValidationError

__all__ = ["DEFAULT_SIZE_BYTES", "estimate_size", "check_size"]

logger = logging.getLogger("aisp.cache")

#: Size assumed for a model that says nothing about its size: 32 MiB.
DEFAULT_SIZE_BYTES = 32 * 1024 * 1024


def check_size(value: Any, field: str = "size_bytes") -> int:
    """A non-negative integer byte count, or ``ValueError`` (``ValidationError``) naming ``field``."""

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValidationError(
            f"{field} must be a non-negative integer, got {value!r}",
            field=field,
            value=value,
            expected="an integer >= 0",
        )
    if value < 0:
        raise ValidationError(
            f"{field} must be >= 0, got {value}", field=field, value=value, expected="an integer >= 0"
        )
    return int(value)


def _path_size(path: Any) -> int | None:
    try:
        p = os.fspath(path)
    except TypeError:
        return None
    try:
        if os.path.isdir(p):
            total = 0
            for root, _dirs, files in os.walk(p):
                for f in files:
                    try:
                        total += os.path.getsize(os.path.join(root, f))
                    except OSError:
                        continue
            return total
        return os.path.getsize(p)
    except OSError:
        return None


def estimate_size(model: Any, explicit: Any = None) -> tuple[int, str]:
    """``(bytes, source)``; source is ``explicit``, ``attribute``, ``nbytes``, ``file`` or ``default``."""
    if explicit is not None:
        return check_size(explicit), "explicit"
    for attr, source in (("size_bytes", "attribute"), ("nbytes", "nbytes")):
        try:
            value = getattr(model, attr, None)
        except Exception:  # a property that fails must not break caching
            logger.debug("model attribute %s raised; ignoring it", attr, exc_info=True)
            value = None
        if value is None or callable(value):
            continue
        try:
            return check_size(value, attr), source
        except (TypeError, ValueError):
            logger.debug("model attribute %s=%r is not a byte count; ignoring it", attr, value)
    for attr in ("path", "model_path"):
        try:
            value = getattr(model, attr, None)
        except Exception:
            value = None
        if value is None or isinstance(value, (bool, int, float)):
            continue
        size = _path_size(value)
        if size is not None:
            return size, "file"
    return DEFAULT_SIZE_BYTES, "default"
