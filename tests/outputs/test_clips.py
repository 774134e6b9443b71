"""Event clips on a real running stream: an event published on the bus writes an MP4 that PyAV
reads back with the right duration, frame count and pre-roll frames; overlapping events merge;
post-roll runs from the last matching detection (an object that stays in view); retention by
age and by size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aisp.errors import ValidationError
from aisp.events import Event, EventBus
from aisp.pipeline import CallbackSink, Engine, StreamSpec
from aisp.pipeline.clip_index import ClipLibrary
from aisp.pipeline.clips import ClipRule
from aisp.pipeline.video_out import StreamVideo
from aisp.settings import load_settings
from tests.outputs.helpers import CounterSource, read_barcode, wait_until
from tests.pipeline.helpers import FakeLoader

av = pytest.importorskip("av")

FPS = 30


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[tuple[Engine, StreamVideo, ClipLibrary, EventBus]]:
    settings = load_settings(environ={}, data_dir=tmp_path)
    engine = Engine(settings, FakeLoader())
    library = ClipLibrary(tmp_path / "clips")
    rule = ClipRule.parse({"types": ["enter", "appeared"], "labels": ["person"], "pre_seconds": 2,
                           "post_seconds": 2})
    video = StreamVideo("cam", settings, record=rule, library=library, clock=engine.clock)
    bus = EventBus()
    bus.subscribe("clips", video.on_event)
    engine.add_stream(StreamSpec("cam", CounterSource(fps=FPS), ["fake"]), sinks=[video.sink()], start=True)
    try:
        yield engine, video, library, bus
    finally:
        bus.close()
        engine.shutdown(5)
        video.close()


def _read(path: Path) -> tuple[float, list[int]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [read_barcode(f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        duration = float(stream.duration * stream.time_base) if stream.duration else container.duration / 1e6
    return duration, frames


def _ready(library: ClipLibrary, event_id: str) -> bool:
    rec = library.for_event(event_id)
    return rec is not None and rec.state == "ready"


def _event_now(engine: Engine, **kw) -> Event:
    return Event(stream_id="cam", time=0.0, captured_at=engine.clock(), **kw)


def _current_frame(video: StreamVideo) -> int:
    return video.output.stats().frames_in


def test_an_event_writes_a_clip_with_pre_and_post_roll(recording) -> None:
    engine, video, library, bus = recording
    recorder = video.recorder
    assert recorder is not None
    wait_until(lambda: recorder.stats()["ring_seconds"] >= 2.5, 15, message="2.5 s of pre-roll")
    ring = recorder.stats()
    assert ring["ring_seconds"] <= 3.5  # the ring keeps pre-roll plus at most one GOP
    # a frame counter tells which source frame the event was on: the newest in the ring
    event = _event_now(engine, type="enter", label="person", zone="door")
    event_frame = recorder._ring[-1].index  # noqa: SLF001 - the frame being captured at the event
    bus.publish(Event(stream_id="cam", type="stream", time=0.0, state="running"))  # not selected
    bus.publish(_event_now(engine, type="enter", label="car"))  # label not selected
    bus.publish(event)
    wait_until(lambda: _ready(library, event.id), 20, message="the clip to be written")
    rec = library.for_event(event.id)
    assert rec.events == [event.id] and rec.stream_id == "cam"
    duration, frames = _read(library.path(rec))
    assert abs(duration - 4.0) <= 0.5, duration  # 2 s before + 2 s after
    assert abs(len(frames) - 4 * FPS) <= 15, len(frames)
    assert abs(rec.frames - len(frames)) <= 1  # the edit list may hide the frame on its boundary
    # pre-roll: the clip starts ~2 s (60 frames) before the event's frame, and holds it
    assert event_frame in frames
    assert abs((event_frame - frames[0]) - 2 * FPS) <= 8, (event_frame, frames[0])
    assert frames == sorted(frames)
    assert recorder.stats()["events_matched"] == 1 and recorder.clips_written == 1


def test_overlapping_events_merge_into_one_clip(recording) -> None:
    engine, video, library, bus = recording
    recorder = video.recorder
    wait_until(lambda: recorder.stats()["ring_seconds"] >= 2.5, 15, message="pre-roll")
    first = _event_now(engine, type="appeared", label="person")
    bus.publish(first)
    start = _current_frame(video)
    wait_until(lambda: _current_frame(video) >= start + FPS, 10, message="one more second")
    second = _event_now(engine, type="enter", label="person")
    bus.publish(second)
    wait_until(lambda: _ready(library, second.id), 20, message="the merged clip")
    a, b = library.for_event(first.id), library.for_event(second.id)
    assert a.id == b.id and set(a.events) == {first.id, second.id}
    duration, _frames = _read(library.path(a))
    assert abs(duration - 5.0) <= 0.5, duration  # 2 s pre + 1 s between + 2 s post
    assert len(library.list("cam")) == 1


def test_clip_rule_is_validated() -> None:
    assert ClipRule.parse({}).pre_seconds == 5.0 and "stream" not in ClipRule.parse({}).types
    for bad, field in [({"types": ["explode"]}, "record.types"), ({"labels": "person"}, "record.labels"),
                       ({"pre_seconds": -1}, "record.pre_seconds"),
                       ({"post_seconds": 1e9}, "record.post_seconds"),
                       ({"pre_seconds": True}, "record.pre_seconds"), ({"color": 1}, "record")]:
        with pytest.raises(ValidationError) as info:
            ClipRule.parse(bad)
        assert info.value.details.get("field") == field, (bad, info.value.details)


def _fake_clip(library: ClipLibrary, clip_id: str, started: float, size: int) -> None:
    rec, part = library.new_clip(clip_id, "cam/../x", started, [f"e{clip_id}"])
    part.write_bytes(b"\0" * size)
    library.finish(clip_id, ended_at=started + 10, duration=10.0, frames=300)


def test_retention_by_age_and_total_size(tmp_path: Path) -> None:
    now = [1_000_000.0]
    library = ClipLibrary(tmp_path / "clips", max_age_days=1.0, max_total_bytes=2500,
                          wallclock=lambda: now[0])
    _fake_clip(library, "a" * 26, now[0] - 2 * 86400, 1000)  # older than a day: deleted at once
    assert library.get("a" * 26) is None and library.deleted == 1
    for n, name in enumerate("bcd"):
        _fake_clip(library, name * 26, now[0] - 100 + n, 1000)
    # three 1000-byte clips > 2500 bytes: the oldest goes
    assert [c.id[0] for c in library.list()] == ["c", "d"]
    assert library.for_event("e" + "b" * 26) is None and library.for_event("e" + "d" * 26).state == "ready"
    files = sorted(p.name for p in (tmp_path / "clips").rglob("*.mp4"))
    assert files == ["c" * 26 + ".mp4", "d" * 26 + ".mp4"]
    # every file stays inside the clip directory whatever the stream id
    root = (tmp_path / "clips").resolve()
    assert all(p.resolve().is_relative_to(root) for p in root.rglob("*"))
    # the index survives a restart; a half-written clip left by a crash is removed
    stray = next((tmp_path / "clips").glob("*/")) / ("e" * 26 + ".mp4.part")
    stray.write_bytes(b"partial")
    reopened = ClipLibrary(tmp_path / "clips", max_age_days=1.0, max_total_bytes=2500,
                           wallclock=lambda: now[0])
    assert [c.id[0] for c in reopened.list()] == ["c", "d"] and not stray.exists()
    now[0] += 2 * 86400
    assert reopened.prune() == 2 and reopened.list() == []


# -- post-roll follows detections ---------------------------------------------------------------
APPEAR, LEAVE_ZONE, VANISH = 90, 180, 240  # frame indices: 3 s in, 3 s inside the zone, 2 s beside it
INSIDE = (100.0, 80.0, 200.0, 220.0)  # anchor (150, 220): inside "door" (x < 160)
BESIDE = (120.0, 80.0, 220.0, 220.0)  # anchor (170, 220): outside it; IoU 0.67, so the same track
DOOR = {"name": "door", "polygon": [[0, 0], [160, 0], [160, 240], [0, 240]]}


def _person(frame):
    from aisp.models.results import Detections

    index = read_barcode(frame)
    if APPEAR <= index < VANISH:
        box = INSIDE if index < LEAVE_ZONE else BESIDE
        return Detections([box], [0.9], [0], None, ("person",))
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), None, ())


@pytest.mark.parametrize("record, last_frame", [
    # an `appeared` event once; the person stays in view 5 s more: the clip runs to 2 s after it vanished
    ({"types": ["appeared"], "labels": ["person"]}, VANISH - 1),
    # an `enter` event once; the person stays in the zone 3 s, then beside it: 2 s after it left the zone
    ({"types": ["enter"], "labels": ["person"], "zones": ["door"]}, LEAVE_ZONE - 1),
], ids=["labels", "zone"])
def test_post_roll_runs_from_the_last_matching_detection(tmp_path: Path, record: dict,
                                                         last_frame: int) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    bus = EventBus()
    engine = Engine(settings, FakeLoader(boxes=_person), events=bus)
    library = ClipLibrary(tmp_path / "clips")
    rule = ClipRule.parse({**record, "pre_seconds": 1, "post_seconds": 2})
    video = StreamVideo("cam", settings, record=rule, library=library, clock=engine.clock)
    events: list[Event] = []
    captured: dict[int, float] = {}
    bus.subscribe("clips", video.on_event)
    bus.subscribe("test", events.append)
    sinks = [CallbackSink(lambda r: captured.__setitem__(r.frame.index, r.frame.captured_at)), video.sink()]
    spec = StreamSpec("cam", CounterSource(fps=FPS), ["fake"], zones=[DOOR])
    engine.add_stream(spec, sinks=sinks, start=True)
    try:
        def selected() -> list[Event]:
            return [e for e in list(events) if rule.matches(e)]

        wait_until(selected, 30, message="the object's event")
        wait_until(lambda: _ready(library, selected()[0].id), 40, message="the clip to be written")
        assert len(selected()) == 1  # one event: only detections can have kept the clip going
        event = selected()[0]
        rec = library.for_event(event.id)
        duration, frames = _read(library.path(rec))
        wait_until(lambda: last_frame in captured, 20, message="the last matching frame")
    finally:
        bus.close()
        engine.shutdown(5)
        video.close()
    assert rec.events == [event.id]
    assert APPEAR <= event.frame_index <= APPEAR + 3
    expected = (captured[last_frame] + 2.0) - (event.captured_at - 1.0)  # pre-roll .. post-roll
    assert abs(duration - expected) <= 0.5, (duration, expected)
    assert abs(frames[-1] - (last_frame + 2 * FPS)) <= 15, (frames[-1], last_frame)  # 2 s after it
    assert abs(frames[0] - (event.frame_index - FPS)) <= 8, (frames[0], event.frame_index)


def test_detections_are_watched_only_while_a_clip_is_open_or_requested(tmp_path: Path) -> None:
    from aisp.models import ModelResult
    from aisp.models.results import Detections
    from aisp.pipeline.clips import ClipRecorder
    from aisp.pipeline.frame_types import Frame, FrameResult

    rule = ClipRule.parse({"labels": ["person"], "zones": ["door"]})
    recorder = ClipRecorder("cam", rule, ClipLibrary(tmp_path / "clips"))
    person = Detections([INSIDE], [0.9], [0], None, ("person",))

    def result(t: float, zones) -> FrameResult:
        frame = Frame("cam", int(t * FPS), None, t, np.zeros((240, 320, 3), np.uint8))
        return FrameResult(frame, {"fake": ModelResult("fake", 1.0, detections=person)}, zones=zones)

    recorder.on_frame(result(1.0, {"door": {"person": 1}}))
    assert recorder._seen == float("-inf")  # noqa: SLF001 - no clip: the frame is not even looked at
    recorder.on_event(Event(type="enter", stream_id="cam", time=0.0, captured_at=1.0, label="person",
                            zone="door"))
    recorder.on_frame(result(2.0, {"door": {"person": 1}}))
    recorder.on_frame(result(3.0, {"porch": {"person": 1}}))  # another zone: not selected
    recorder.on_frame(result(4.0, {"door": {"car": 2}}))  # another label: not selected
    recorder.on_frame(result(5.0, None))  # nobody inside a zone
    assert recorder._seen == 2.0  # noqa: SLF001
    assert not ClipRule.parse({"types": ["stream"]}).follows_detections
