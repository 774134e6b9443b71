"""Zones (polygons) and lines (segments) of a stream, and what tracked objects do with them.

A stream spec may carry::

    zones: [{"name": "door", "polygon": [[x, y], ...], "labels": ["person"], "relative": false,
             "dwell": 10}]
    lines: [{"name": "gate", "start": [x, y], "end": [x, y], "labels": null, "relative": true}]

Coordinates are pixels of the frame, or fractions of its width and height (0..1) with
``relative: true``. ``labels`` keeps only those labels (default: every label). Names are unique
across a stream's zones and lines, ``[A-Za-z0-9_.-]{1,64}`` (they appear in metric labels and
MQTT topics). :func:`parse_zones` / :func:`parse_lines` validate a spec and raise
:class:`~aisp.errors.ValidationError` naming the field (``zones[1].polygon``).

An object is at its **anchor point**, the bottom centre of its box (where a person stands).
:class:`ZoneTracker` turns the tracked objects of each frame into happenings:

- ``enter`` when a track's anchor comes inside a zone, ``exit`` when it leaves or the track ends
  (``seconds``: time spent inside);
- ``dwell`` when a track has stayed inside a zone with ``dwell: s`` for ``s`` seconds, then again
  every ``s`` seconds while it stays (``seconds``: time inside so far);
- ``cross`` when a track's anchor moves across a line segment: ``direction`` is ``in`` when it
  goes from the left-hand side to the right-hand side of the line as seen walking from ``start``
  to ``end`` (in image coordinates, y down: for a line drawn left to right, moving down across it
  is ``in``), ``out`` the other way. A track that stops on the line counts once it is off it.

Counters: per zone and label the tracks inside now, per line and label the ``in``/``out``
crossings so far (:meth:`ZoneTracker.counts`). At most :data:`MAX_LABEL_KEYS` labels are kept
per zone or line; further ones count under ``other`` (bounded metric cardinality).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from aisp.errors import ValidationError

__all__ = [
    "Zone",
    "Line",
    "Happening",
    "ZoneTracker",
    "TrackedObject",
    "parse_zones",
    "parse_lines",
    "MAX_ZONES",
    "MAX_LINES",
    "MAX_LABEL_KEYS",
]

MAX_ZONES = 32
MAX_LINES = 32
MAX_POINTS = 64
MAX_LABEL_KEYS = 32
_MAX_COORD = 100_000.0
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
Point = tuple[float, float]


def _bad(path: str, message: str, value: Any, expected: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", field=path, value=_short(value), expected=expected)


def _short(value: Any) -> Any:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _point(path: str, value: Any, relative: bool) -> Point:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)):
        raise _bad(path, "expected a point [x, y] of two numbers", value, "[x, y]")
    x, y = float(value[0]), float(value[1])
    high = 1.0 if relative else _MAX_COORD
    if not (0.0 <= x <= high and 0.0 <= y <= high):
        where = "0..1 (relative: true)" if relative else f"0..{_MAX_COORD:.0f} pixels"
        raise _bad(path, f"coordinates must be within {where}", value, where)
    return x, y


def _labels(path: str, value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value or len(value) > MAX_LABEL_KEYS:
        raise _bad(path, f"expected a list of 1..{MAX_LABEL_KEYS} labels", value, "a list of labels")
    out = []
    for i, label in enumerate(value):
        if not isinstance(label, str) or not 0 < len(label) <= 64:
            raise _bad(f"{path}[{i}]", "expected a label of 1..64 characters", label, "a string")
        out.append(label)
    return frozenset(out)


def _common(kind: str, i: int, item: Any, allowed: set[str]) -> tuple[str, bool, frozenset[str] | None]:
    path = f"{kind}[{i}]"
    if not isinstance(item, dict):
        raise _bad(path, "expected an object", item, "an object")
    extra = sorted(set(item) - allowed)
    if extra:
        raise _bad(f"{path}.{extra[0]}", "unknown field", extra[0], f"one of {sorted(allowed)}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(f"{path}.name", "expected 1..64 characters of A-Z a-z 0-9 _ . -", name,
                   "[A-Za-z0-9_.-]{1,64}")
    relative = item.get("relative", False)
    if not isinstance(relative, bool):
        raise _bad(f"{path}.relative", "expected true or false", relative, "a boolean")
    return name, relative, _labels(f"{path}.labels", item.get("labels"))


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[Point, ...]
    labels: frozenset[str] | None = None
    relative: bool = False
    #: seconds inside before the first ``dwell`` event (and between the next ones); None: no dwell
    dwell: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "polygon": [list(p) for p in self.polygon],
                "labels": None if self.labels is None else sorted(self.labels),
                "relative": self.relative, "dwell": self.dwell}


@dataclass(frozen=True)
class Line:
    name: str
    start: Point
    end: Point
    labels: frozenset[str] | None = None
    relative: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": list(self.start), "end": list(self.end),
                "labels": None if self.labels is None else sorted(self.labels), "relative": self.relative}


def parse_zones(value: Any, *, field_name: str = "zones") -> list[Zone]:
    """Validated zones from a spec's ``zones`` value (None: none)."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or len(value) > MAX_ZONES:
        raise _bad(field_name, f"expected a list of at most {MAX_ZONES} zones", value, "a list")
    out: list[Zone] = []
    for i, item in enumerate(value):
        allowed = {"name", "polygon", "labels", "relative", "dwell"}
        name, relative, labels = _common(field_name, i, item, allowed)
        poly = item.get("polygon")
        path = f"{field_name}[{i}].polygon"
        if not isinstance(poly, (list, tuple)) or not 3 <= len(poly) <= MAX_POINTS:
            raise _bad(path, f"expected a list of 3..{MAX_POINTS} points", poly, "[[x, y], ...]")
        points = tuple(_point(f"{path}[{j}]", p, relative) for j, p in enumerate(poly))
        arr = np.asarray(points)
        xs, ys = arr[:, 0], arr[:, 1]
        area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
        if area <= 0.0:
            raise _bad(path, "the polygon has no area", poly, "a polygon with an area")
        dwell = item.get("dwell")
        if dwell is not None and (isinstance(dwell, bool) or not isinstance(dwell, (int, float))
                                  or not 0 < dwell <= 86_400):
            raise _bad(f"{field_name}[{i}].dwell", "expected seconds in (0, 86400]", dwell, "0 < s <= 86400")
        out.append(Zone(name, points, labels, relative, None if dwell is None else float(dwell)))
    _unique(field_name, [z.name for z in out])
    return out


def parse_lines(value: Any, *, field_name: str = "lines") -> list[Line]:
    """Validated lines from a spec's ``lines`` value (None: none)."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or len(value) > MAX_LINES:
        raise _bad(field_name, f"expected a list of at most {MAX_LINES} lines", value, "a list")
    out: list[Line] = []
    for i, item in enumerate(value):
        name, relative, labels = _common(field_name, i, item, {"name", "start", "end", "labels", "relative"})
        start = _point(f"{field_name}[{i}].start", item.get("start"), relative)
        end = _point(f"{field_name}[{i}].end", item.get("end"), relative)
        if start == end:
            raise _bad(f"{field_name}[{i}].end", "a line needs two different points", item.get("end"),
                       "a point other than start")
        out.append(Line(name, start, end, labels, relative))
    _unique(field_name, [ln.name for ln in out])
    return out


def _unique(path: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise _bad(f"{path}[{i}].name", f"duplicate name {name!r}", name, "a unique name")
        seen.add(name)


@dataclass(frozen=True)
class TrackedObject:
    """One confirmed track as seen on this frame."""

    track_id: int
    label: str
    box: tuple[float, float, float, float]
    confidence: float

    @property
    def anchor(self) -> Point:
        x1, _y1, x2, y2 = self.box
        return (x1 + x2) / 2.0, y2


@dataclass(frozen=True)
class Happening:
    """What :class:`ZoneTracker` saw (the event producer turns it into an :class:`~aisp.events.Event`)."""

    type: str  # enter | exit | dwell | cross
    zone: str
    obj: TrackedObject
    direction: str | None = None
    seconds: float | None = None


@dataclass
class _Member:
    since: float
    dwells: int = 0
    obj: TrackedObject | None = None


@dataclass
class _Counters:
    by_label: dict[str, Any] = field(default_factory=dict)

    def key(self, label: str) -> str:
        if label in self.by_label or len(self.by_label) < MAX_LABEL_KEYS:
            return label
        return "other"


Edges = list[tuple[float, float, float, float]]
_NONE_PRESENT: Mapping[str, Mapping[str, int]] = MappingProxyType({})


def _edges(poly: np.ndarray) -> Edges:
    """The polygon's edges as (x_i, y_i, x_j, y_j) with j = i - 1, as Python floats."""
    pts = [(float(x), float(y)) for x, y in poly]
    return [(*pts[i], *pts[i - 1]) for i in range(len(pts))]


def _inside(edges: Edges, x: float, y: float) -> bool:
    """Ray casting (a point on an edge may count either way); a few edges: plain Python is
    faster than numpy here."""
    inside = False
    for xi, yi, xj, yj in edges:
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
    return inside


def _side(a: Point, b: Point, p: Point) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def _segments_cross(a: Point, b: Point, p: Point, q: Point) -> bool:
    """Whether segment p->q meets segment a-b (p and q are on opposite sides of a-b already)."""
    s1, s2 = _side(p, q, a), _side(p, q, b)
    return (s1 <= 0 <= s2) or (s2 <= 0 <= s1)


class ZoneTracker:
    """The zones and lines of one stream and the tracks' state against them (one caller: the
    stream's sink thread; :meth:`counts` may be read from any thread)."""

    def __init__(self, zones: Iterable[Zone] = (), lines: Iterable[Line] = ()) -> None:
        self.zones = list(zones)
        self.lines = list(lines)
        self._shape: tuple[int, int] | None = None
        self._polys: list[Edges] = []
        self._segs: list[tuple[Point, Point]] = []
        self._members: list[dict[int, _Member]] = [{} for _ in self.zones]
        self._last: dict[int, tuple[Point, list[float]]] = {}  # track -> (anchor, side per line)
        self._lock = threading.Lock()
        self._zone_counts: dict[str, dict[str, int]] = {z.name: {} for z in self.zones}
        self._line_counts: list[_Counters] = [_Counters() for _ in self.lines]
        #: the last :meth:`update`'s objects inside each zone (per zone, label -> count; zones with
        #: none are absent). Unlike :meth:`counts`, a track that was not matched on that frame
        #: (lost for a few frames) is not in it. Replaced on each update, never changed in place.
        self.present: Mapping[str, Mapping[str, int]] = _NONE_PRESENT

    def __bool__(self) -> bool:
        return bool(self.zones or self.lines)

    def _resolve(self, shape: tuple[int, int]) -> None:
        if shape == self._shape:
            return
        h, w = shape
        self._polys = [
            _edges(np.asarray([(x * w, y * h) if z.relative else (x, y) for x, y in z.polygon], np.float64))
            for z in self.zones
        ]
        self._segs = []
        for ln in self.lines:
            f = (w, h) if ln.relative else (1, 1)
            a = (ln.start[0] * f[0], ln.start[1] * f[1])
            self._segs.append((a, (ln.end[0] * f[0], ln.end[1] * f[1])))
        self._shape = shape

    def update(self, objects: Sequence[TrackedObject], now: float, shape: tuple[int, int]) -> list[Happening]:
        """The happenings of one frame: ``objects`` are the tracks matched on it, ``now`` its time
        (seconds), ``shape`` its (height, width)."""
        self._resolve(shape)
        out: list[Happening] = []
        present: dict[str, dict[str, int]] | None = None  # made only when someone is inside
        for zi, zone in enumerate(self.zones):
            members, poly = self._members[zi], self._polys[zi]
            for obj in objects:
                if zone.labels is not None and obj.label not in zone.labels:
                    continue
                member = members.get(obj.track_id)
                if _inside(poly, *obj.anchor):
                    if present is None:
                        present = {}
                    per = present.setdefault(zone.name, {})
                    per[obj.label] = per.get(obj.label, 0) + 1
                    if member is None:
                        members[obj.track_id] = _Member(now, obj=obj)
                        out.append(Happening("enter", zone.name, obj))
                        continue
                    member.obj = obj
                    if zone.dwell is not None and now - member.since >= zone.dwell * (member.dwells + 1):
                        member.dwells = int((now - member.since) // zone.dwell)
                        out.append(Happening("dwell", zone.name, obj, seconds=round(now - member.since, 3)))
                elif member is not None:
                    del members[obj.track_id]
                    out.append(Happening("exit", zone.name, obj, seconds=round(now - member.since, 3)))
        if self.lines:
            out.extend(self._cross(objects))
        self.present = present if present is not None else _NONE_PRESENT
        self._publish_zone_counts()
        return out

    def _cross(self, objects: Sequence[TrackedObject]) -> list[Happening]:
        out: list[Happening] = []
        for obj in objects:
            anchor = obj.anchor
            last = self._last.get(obj.track_id)
            sides = [_side(a, b, anchor) for a, b in self._segs]
            if last is None:
                self._last[obj.track_id] = (anchor, sides)
                continue
            prev_anchor, prev_sides = last
            kept = list(prev_sides)
            for li, line in enumerate(self.lines):
                now_side, before = sides[li], prev_sides[li]
                if now_side == 0:
                    continue  # on the line: decide once it is off it
                kept[li] = now_side
                if before == 0 or (before > 0) == (now_side > 0):
                    continue
                if line.labels is not None and obj.label not in line.labels:
                    continue
                a, b = self._segs[li]
                if not _segments_cross(a, b, prev_anchor, anchor):
                    continue  # crossed the line's extension, not the segment
                direction = "in" if now_side > 0 else "out"
                with self._lock:
                    counters = self._line_counts[li]
                    slot = counters.by_label.setdefault(counters.key(obj.label), {"in": 0, "out": 0})
                    slot[direction] += 1
                out.append(Happening("cross", line.name, obj, direction=direction))
            self._last[obj.track_id] = (anchor, kept)
        return out

    def track_ended(self, track_id: int, now: float) -> list[Happening]:
        """A track ended: ``exit`` from every zone it was in; its line state is forgotten."""
        out: list[Happening] = []
        for zi, zone in enumerate(self.zones):
            member = self._members[zi].pop(track_id, None)
            if member is not None and member.obj is not None:
                out.append(Happening("exit", zone.name, member.obj, seconds=round(now - member.since, 3)))
        self._last.pop(track_id, None)
        if out:
            self._publish_zone_counts()
        return out

    def _publish_zone_counts(self) -> None:
        counts: dict[str, dict[str, int]] = {}
        for zi, zone in enumerate(self.zones):
            per: dict[str, int] = {}
            for member in self._members[zi].values():
                if member.obj is None:
                    continue
                label = member.obj.label
                key = label if label in per or len(per) < MAX_LABEL_KEYS else "other"
                per[key] = per.get(key, 0) + 1
            counts[zone.name] = per
        with self._lock:
            self._zone_counts = counts

    def counts(self) -> dict[str, Any]:
        """``{"zones": {name: {"count": n, "labels": {label: n}}}, "lines": {name: {"in", "out",
        "labels": {label: {"in", "out"}}}}}`` (a copy)."""
        with self._lock:
            zones = {name: {"count": sum(per.values()), "labels": dict(per)}
                     for name, per in self._zone_counts.items()}
            lines = {}
            for line, counters in zip(self.lines, self._line_counts, strict=True):
                labels = {k: dict(v) for k, v in counters.by_label.items()}
                lines[line.name] = {"in": sum(v["in"] for v in labels.values()),
                                    "out": sum(v["out"] for v in labels.values()), "labels": labels}
        return {"zones": zones, "lines": lines}
