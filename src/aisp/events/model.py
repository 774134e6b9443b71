""":class:`Event`: one thing that happened on a stream, the same shape for every consumer.

Types (``Event.type``):

- ``appeared`` / ``gone``: a track starts / ends (``track_id``, ``label``, ``box``);
- ``enter`` / ``exit`` / ``dwell``: a track enters, leaves or stays in a zone (``zone``;
  ``seconds`` for dwell);
- ``cross``: a track crosses a line (``zone`` is the line's name, ``direction`` ``in``/``out``);
- ``stream``: a stream's state changed (``state``: running, reconnecting, failed, stopped;
  ``message``: the reason of a failure or a reconnect).

``time`` is wall-clock epoch seconds; ``captured_at`` is the engine clock reading of the frame's
capture, kept so that consumers can measure capture-to-delivery latency in the same clock.
"""

from __future__ import annotations

import os
import time as _time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from aisp.errors import ValidationError

__all__ = ["EVENT_TYPES", "Event", "new_event_id"]

EVENT_TYPES: frozenset[str] = frozenset({"appeared", "gone", "enter", "exit", "dwell", "cross", "stream"})


def new_event_id(now: float | None = None) -> str:
    """A 26-character id that sorts by creation time: 12 hex digits of milliseconds, 14 random."""
    ms = int((_time.time() if now is None else now) * 1000)
    return f"{ms:012x}{os.urandom(7).hex()}"


@dataclass(frozen=True)
class Event:
    type: str
    stream_id: str
    time: float
    frame_index: int | None = None
    label: str | None = None
    track_id: int | None = None
    confidence: float | None = None
    box: tuple[float, float, float, float] | None = None  # xyxy, pixels of the frame
    zone: str | None = None  # zone or line name
    direction: str | None = None  # cross: "in" or "out"
    seconds: float | None = None  # dwell: seconds inside the zone so far
    state: str | None = None  # stream: the new state
    snapshot: str | None = None  # API path of the event's JPEG, once written
    captured_at: float | None = None  # engine clock of the frame's capture
    id: str = field(default_factory=new_event_id)
    message: str | None = None  # stream: why it failed or reconnects

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValidationError(f"Event.type: expected one of {sorted(EVENT_TYPES)}, got {self.type!r}")
        if not isinstance(self.stream_id, str) or not self.stream_id:
            raise ValidationError(f"Event.stream_id: expected a non-empty string, got {self.stream_id!r}")
        if self.box is not None:
            box = tuple(float(v) for v in self.box)
            if len(box) != 4:
                raise ValidationError(f"Event.box: expected 4 numbers (x1, y1, x2, y2), got {len(box)}")
            object.__setattr__(self, "box", box)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``None`` fields are left out, ``box`` is a list."""
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.box is not None:
            out["box"] = [round(v, 2) for v in self.box]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if kwargs.get("box") is not None:
            kwargs["box"] = tuple(kwargs["box"])
        return cls(**kwargs)
