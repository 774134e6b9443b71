"""``ModelKey``: what the cache stores a model under, a ``(name, instance)`` tuple.

A model that may be shared by every caller lives under ``ModelKey("face_detection")``; a caller
that needs its own copy (a worker, a stream, an API thread) asks for an instance, and that copy
lives under ``ModelKey("face_detection", "w1")``. Keys are tuples everywhere inside AISP; the text
form ``"face_detection#w1"`` exists only where a key is shown (logs, JSON, metrics labels) or
typed by a person (the CLI, an API path), and :meth:`ModelKey.parse` reads it back.

    >>> key = ModelKey("face_detection", "w1")
    >>> str(key)
    'face_detection#w1'
    >>> ModelKey.parse("face_detection#w1") == key
    True
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ModelKey", "SEPARATOR"]

#: Between the name and the instance in a key's text form.
SEPARATOR = "#"


class ModelKey(NamedTuple):
    name: str
    instance: str | None = None

    def __str__(self) -> str:
        return self.name if self.instance is None else f"{self.name}{SEPARATOR}{self.instance}"

    @classmethod
    def parse(cls, text: str | ModelKey) -> ModelKey:
        """``"name"`` or ``"name#instance"`` (or a key, returned as it is) to a key."""
        if isinstance(text, ModelKey):
            return text
        if not isinstance(text, str):
            raise TypeError(f"model key: expected 'name' or 'name#instance', got {type(text).__name__}")
        name, _, instance = text.partition(SEPARATOR)
        return cls(name, instance or None)

    @property
    def base(self) -> ModelKey:
        """The shared key of the same model (no instance)."""
        return self if self.instance is None else ModelKey(self.name)
