"""Zones and lines: validation naming the field, enter/exit/dwell, who is inside on each frame,
crossing direction, the segment (not its extension), label filters, relative coordinates,
bounded label keys."""

from __future__ import annotations

import pytest

from aisp.errors import ValidationError
from aisp.pipeline import StreamSpec
from aisp.pipeline.zones import MAX_LABEL_KEYS, TrackedObject, ZoneTracker, parse_lines, parse_zones

SHAPE = (100, 200)  # height, width
SQUARE = {"name": "sq", "polygon": [[50, 20], [150, 20], [150, 80], [50, 80]]}


def obj(tid: int, x: float, y: float, label: str = "person") -> TrackedObject:
    """A 10x20 box whose anchor (bottom centre) is at (x, y)."""
    return TrackedObject(tid, label, (x - 5, y - 20, x + 5, y), 0.9)


@pytest.mark.parametrize(("zones", "field"), [
    ("nope", "zones"),
    ([{"polygon": [[0, 0], [1, 0], [1, 1]]}], "zones[0].name"),
    ([{"name": "a/b", "polygon": [[0, 0], [1, 0], [1, 1]]}], "zones[0].name"),
    ([{"name": "a", "polygon": [[0, 0], [1, 0]]}], "zones[0].polygon"),
    ([{"name": "a", "polygon": [[0, 0], [1, 0], ["x", 1]]}], "zones[0].polygon[2]"),
    ([{"name": "a", "polygon": [[0, 0], [1, 0], [-1, 1]]}], "zones[0].polygon[2]"),
    ([{"name": "a", "polygon": [[0, 0], [0.5, 0], [2, 1]], "relative": True}], "zones[0].polygon[2]"),
    ([{"name": "a", "polygon": [[0, 0], [1, 1], [2, 2]]}], "zones[0].polygon"),
    ([{"name": "a", "polygon": [[0, 0], [1, 0], [1, 1]], "labels": []}], "zones[0].labels"),
    ([{"name": "a", "polygon": [[0, 0], [1, 0], [1, 1]], "dwell": 0}], "zones[0].dwell"),
    ([{"name": "a", "polygon": [[0, 0], [1, 0], [1, 1]], "colour": "red"}], "zones[0].colour"),
    ([SQUARE, SQUARE], "zones[1].name"),
])
def test_bad_zones_name_the_field(zones, field) -> None:
    with pytest.raises(ValidationError) as info:
        parse_zones(zones)
    assert info.value.details["field"] == field


def test_bad_lines_and_shared_names() -> None:
    with pytest.raises(ValidationError) as info:
        parse_lines([{"name": "l", "start": [1, 1], "end": [1, 1]}])
    assert info.value.details["field"] == "lines[0].end"
    with pytest.raises(ValidationError) as info:
        StreamSpec("s", "x", ["fake"], zones=[SQUARE], lines=[{"name": "sq", "start": [0, 0], "end": [1, 1]}])
    assert info.value.details["field"] == "lines"
    with pytest.raises(ValidationError) as info:
        StreamSpec("s", "x", ["fake"], zones=[SQUARE, {**SQUARE, "name": "b", "polygon": [[0, 0], [1, 1]]}])
    assert info.value.details["field"] == "zones[1].polygon"
    with pytest.raises(ValidationError) as info:
        StreamSpec("s", "x", ["fake"], track=False, zones=[SQUARE])
    assert info.value.details["field"] == "track"


def test_enter_exit_and_counts() -> None:
    zt = ZoneTracker(parse_zones([SQUARE]))
    assert [h.type for h in zt.update([obj(1, 10, 50)], 0.0, SHAPE)] == []
    got = zt.update([obj(1, 60, 50), obj(2, 100, 50, "car")], 1.0, SHAPE)
    assert [(h.type, h.zone, h.obj.track_id) for h in got] == [("enter", "sq", 1), ("enter", "sq", 2)]
    assert zt.counts()["zones"]["sq"] == {"count": 2, "labels": {"person": 1, "car": 1}}
    assert zt.present == {"sq": {"person": 1, "car": 1}}
    assert zt.update([obj(1, 70, 50)], 2.0, SHAPE) == []  # track 2 not seen: still inside (coasting)
    assert zt.present == {"sq": {"person": 1}}  # only the objects seen on this frame
    out = zt.update([obj(1, 170, 50)], 3.5, SHAPE)
    assert zt.present == {}
    assert [(h.type, h.seconds) for h in out] == [("exit", 2.5)]
    ended = zt.track_ended(2, 4.0)
    assert [(h.type, h.obj.track_id, h.seconds) for h in ended] == [("exit", 2, 3.0)]
    assert zt.counts()["zones"]["sq"] == {"count": 0, "labels": {}}


def test_dwell_at_the_threshold_then_every_period() -> None:
    zt = ZoneTracker(parse_zones([{**SQUARE, "dwell": 2}]))
    seen = []
    for t in (0.0, 1.0, 1.9, 2.0, 3.0, 4.1, 5.0, 6.5):
        seen += [(h.type, h.seconds) for h in zt.update([obj(7, 100, 50)], t, SHAPE)]
    assert seen == [("enter", None), ("dwell", 2.0), ("dwell", 4.1), ("dwell", 6.5)]


def test_line_direction_segment_and_labels() -> None:
    # horizontal line at y = 50 from x = 50 to 150, only people
    line = {"name": "l", "start": [50, 50], "end": [150, 50], "labels": ["person"]}
    zt = ZoneTracker(lines=parse_lines([line]))
    evs = []
    for t, y in enumerate((30, 45, 50, 55, 70)):  # moving down, touching the line on the way
        got = zt.update([obj(1, 100, y), obj(2, 100, y, "car")], t, SHAPE)
        evs += [(h.direction, h.obj.track_id) for h in got]
    assert evs == [("in", 1)]  # down across a left-to-right line is "in"; the car is filtered out
    evs = [(h.direction) for h in zt.update([obj(1, 100, 20)], 5, SHAPE)]
    assert evs == ["out"]
    # crossing the line's extension (x = 180, beyond its end) is not a crossing
    assert zt.update([obj(3, 180, 30)], 6, SHAPE) == [] and zt.update([obj(3, 180, 70)], 7, SHAPE) == []
    assert zt.counts()["lines"]["l"] == {"in": 1, "out": 1, "labels": {"person": {"in": 1, "out": 1}}}


def test_relative_coordinates_follow_the_frame_size() -> None:
    right = {"name": "r", "polygon": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]], "relative": True}
    zt = ZoneTracker(parse_zones([right]))
    assert [h.type for h in zt.update([obj(1, 150, 50)], 0, (100, 200))] == ["enter"]
    assert [h.type for h in zt.update([obj(1, 150, 50)], 1, (100, 400))] == ["exit"]  # now in the left half


def test_label_keys_are_bounded() -> None:
    zt = ZoneTracker(parse_zones([{"name": "all", "polygon": [[0, 0], [200, 0], [200, 100], [0, 100]]}]))
    objs = [obj(i, 100, 50, f"l{i}") for i in range(MAX_LABEL_KEYS + 5)]
    zt.update(objs, 0, SHAPE)
    labels = zt.counts()["zones"]["all"]["labels"]
    assert len(labels) == MAX_LABEL_KEYS + 1 and labels["other"] == 5
