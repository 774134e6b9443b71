"""Current object counts per stream and per zone, for the MQTT count topics.

Two ways in, both through :class:`CountBoard`:

- **from events** (:meth:`CountBoard.apply`): ``appeared``/``gone`` move the stream's count of the
  event's label by +1/-1 (unless the board was made with ``tracks=False``), ``enter``/``exit``
  the zone's count; a ``stream`` event whose state is not ``running`` resets the stream's counts
  to zero (a stopped camera sees nothing);
- **from a feed** (:meth:`CountBoard.set_counts`, the :class:`CountFeed` protocol): whoever knows
  the exact counts (the API's stream manager feeds each frame's detections, see
  ``aisp.api.count_feed``; a zone counter may feed a zone's) sets them; a label missing from the
  new mapping goes to zero. A fed value replaces what events made.

Every change calls ``on_change(stream, zone, label, count)`` once per value that changed: the MQTT
publisher publishes it retained. Changes and their calls are serialised (one emit lock, separate
from the lock that guards the numbers), and :meth:`CountBoard.replay` takes the same lock, so the
order of the calls for a key is the order of its values: a replay after a reconnect can never land
after, and so overwrite, a newer value.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from aisp.events import Event

__all__ = ["CountBoard", "CountFeed", "CountChange"]

#: (stream, zone or None, label, count)
CountChange = Callable[[str, "str | None", str, int], None]

_Key = tuple[str, "str | None", str]


class CountFeed(Protocol):
    """What a producer of exact counts calls (the stream manager, a zone counter)."""

    def set_counts(
        self, stream: str, counts: Mapping[str, int], *, zone: str | None = None
    ) -> None: ...


class CountBoard:
    """``tracks=False`` ignores ``appeared``/``gone`` (the stream's counts are fed from frames);
    zone events and stream state changes always count."""

    def __init__(self, on_change: CountChange | None = None, *, tracks: bool = True) -> None:
        self._on_change = on_change
        self._tracks = tracks
        self._lock = threading.Lock()
        self._emit_lock = threading.RLock()  # change + on_change calls, in order
        self._counts: dict[_Key, int] = {}

    def apply(self, event: Event) -> None:
        """Move the counts an event implies (see the module doc)."""
        if event.type == "stream":
            if event.state != "running":
                self._replace(event.stream_id, None, {}, every_zone=True)
            return
        if event.label is None:
            return
        delta = {"appeared": 1, "gone": -1, "enter": 1, "exit": -1}.get(event.type)
        if delta is None or (event.type in ("appeared", "gone") and not self._tracks):
            return
        zone = event.zone if event.type in ("enter", "exit") else None
        if event.type in ("enter", "exit") and zone is None:
            return
        key = (event.stream_id, zone, event.label)
        with self._emit_lock:
            with self._lock:
                first = key not in self._counts
                old = self._counts.get(key, 0)
                new = max(0, old + delta)
                self._counts[key] = new
            if new != old or first:
                self._emit([(key, new)])

    def set_counts(self, stream: str, counts: Mapping[str, int], *, zone: str | None = None) -> None:
        """Replace the counts of ``stream`` (or of one zone of it) with ``counts``."""
        clean = {}
        for label, value in counts.items():
            n = int(value)
            if n < 0:
                raise ValueError(f"set_counts: count of {label!r} must be >= 0, got {n}")
            clean[str(label)] = n
        self._replace(stream, zone, clean, every_zone=False)

    def _replace(self, stream: str, zone: str | None, counts: Mapping[str, int], *, every_zone: bool) -> None:
        changed: list[tuple[_Key, int]] = []
        with self._emit_lock:
            with self._lock:
                for key in list(self._counts):
                    if key[0] == stream and (key[1] == zone or every_zone) and key[2] not in counts:
                        if self._counts[key] != 0:
                            changed.append((key, 0))
                        self._counts[key] = 0
                for label, n in counts.items():
                    key = (stream, zone, label)
                    if self._counts.get(key) != n:
                        changed.append((key, n))
                    self._counts[key] = n
            self._emit(changed)

    def replay(self) -> None:
        """Call ``on_change`` once for every current value (after a reconnect), in order with any
        change made at the same time."""
        with self._emit_lock:
            self._emit([((s, z, label), n) for s, z, label, n in self.items()])

    def forget(self, stream: str) -> None:
        """Drop a deleted stream's counts (no message: its retained topics keep their last value)."""
        with self._lock:
            for key in [k for k in self._counts if k[0] == stream]:
                del self._counts[key]

    def items(self) -> list[tuple[str, str | None, str, int]]:
        with self._lock:
            return [(s, z, label, n) for (s, z, label), n in sorted(
                self._counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2]))]

    def get(self, stream: str, label: str, zone: str | None = None) -> int:
        with self._lock:
            return self._counts.get((stream, zone, label), 0)

    def _emit(self, changed: list[tuple[_Key, int]]) -> None:
        if self._on_change is None:
            return
        for (stream, zone, label), n in changed:
            self._on_change(stream, zone, label, n)
