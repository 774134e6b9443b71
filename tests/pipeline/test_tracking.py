"""Tracking on a generated video of three squares whose paths cross: identity switches stay
<= 1 per crossing, through the tracker alone and through the whole engine (real threads); the
stream's state changes (running, reconnecting, failed, stopped) as events."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from aisp.errors import ValidationError
from aisp.events import Event, EventBus
from aisp.models.results import Detections
from aisp.pipeline import Engine, ListSink, MemorySource, StreamSpec, VideoFileSource
from aisp.pipeline.tracking import ObjectTracker
from aisp.settings import load_settings
from tests.pipeline import shapes
from tests.pipeline.helpers import FakeLoader, make_images

TIMEOUT = 60


def _assigned(dets: Detections, tracker_id: np.ndarray) -> dict[int, int]:
    pairs = zip(dets.class_id.tolist(), tracker_id.tolist(), strict=True)
    return {int(c): int(t) for c, t in pairs if t >= 0}


def test_the_generated_paths_cross_three_times() -> None:
    assert shapes.crossings() == 3


def test_identity_switches_at_most_one_per_crossing_tracker_alone() -> None:
    tracker = ObjectTracker()
    assigned = []
    for img in shapes.frames():
        dets = shapes.detect(img)
        assigned.append(_assigned(dets, tracker.update(dets).tracker_id))
    assert shapes.identity_switches(assigned) <= shapes.crossings()
    assert len({t for a in assigned for t in a.values()}) <= 3 + shapes.crossings()
    # every square is tracked on nearly every frame once confirmed
    assert sum(len(a) for a in assigned) >= 3 * 90 - 3 * 3


def test_track_confirmation_and_end() -> None:
    tracker = ObjectTracker(min_hits=3, max_lost_frames=4)
    one = Detections(np.array([[10, 10, 50, 50]], np.float32), np.array([0.8], np.float32),
                     np.zeros(1, np.int32), None, ("car",))
    ids = []
    started = []
    for _ in range(5):
        up = tracker.update(one)
        ids.append(int(up.tracker_id[0]))
        started.extend(up.started)
    assert ids[:2] == [-1, -1] and ids[2] > 0 and len(set(ids[2:])) == 1
    assert [s.track_id for s in started] == [ids[2]] and started[0].label == "car"
    ended: list = []
    misses = 0
    while not ended and misses < 10:
        misses += 1
        ended.extend(tracker.update(Detections.empty()).ended)
    assert [e.track_id for e in ended] == [ids[2]] and ended[0].box == (10.0, 10.0, 50.0, 50.0)
    assert misses <= 5 and tracker.live_count == 0


def test_labels_never_share_a_track() -> None:
    tracker = ObjectTracker(min_hits=1)
    box = np.array([[10, 10, 50, 50]], np.float32)
    a = tracker.update(Detections(box, np.array([0.9], np.float32), np.zeros(1, np.int32), None, ("face",)))
    b = tracker.update(Detections(box, np.array([0.9], np.float32), np.zeros(1, np.int32), None, ("person",)))
    assert a.tracker_id[0] > 0 and b.tracker_id[0] > 0 and a.tracker_id[0] != b.tracker_id[0]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"min_hits": 0}, "track_min_hits"),
    ({"max_lost_frames": True}, "track_max_lost_frames"),
    ({"max_distance": 0}, "track_max_distance"),
    ({"max_distance": 1.5}, "track_max_distance"),
])
def test_tracker_arguments_are_validated(kwargs, field) -> None:
    with pytest.raises(ValidationError) as info:
        ObjectTracker(**kwargs)
    assert info.value.details["field"] == field


def test_detections_tracker_id_is_validated_sliced_and_serialised() -> None:
    dets = shapes.detect(shapes.frame(0)).with_tracker_id([4, -1, 7])
    assert dets[1:].tracker_id.tolist() == [-1, 7]
    items = dets.to_list()
    assert items[0]["track_id"] == 4 and "track_id" not in items[1]
    with pytest.raises(ValidationError, match="tracker_id"):
        dets.with_tracker_id([1, 2])


class _Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait(self, predicate, timeout: float = TIMEOUT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.events), timeout)


def test_engine_tracks_a_generated_video_and_publishes_events(settings, tmp_path: Path) -> None:
    video = shapes.write_video(tmp_path / "shapes.mp4")
    bus = EventBus()
    got = _Collector()
    bus.subscribe("test", got)
    loader = FakeLoader(boxes=shapes.detect)
    engine = Engine(settings, loader=loader, workers=2, monitor_interval=None, events=bus)
    sink = ListSink()
    spec = StreamSpec(
        "shapes", VideoFileSource(str(video)), ["fake"],
        zones=[{"name": "left", "polygon": [[0, 0], [160, 0], [160, 240], [0, 240]]}],
        lines=[{"name": "mid", "start": [0, 0.6], "end": [1, 0.6], "relative": True}],
    )
    assert spec.track is True  # zones turn tracking on
    stream = engine.add_stream(spec, [sink], start=True)
    assert stream.wait(TIMEOUT), stream.state
    assert engine.shutdown(TIMEOUT)
    assert got.wait(lambda evs: any(e.type == "stream" and e.state == "stopped" for e in evs))
    bus.close()

    assigned = []
    for result in sink.results:
        dets = result.results["fake"].detections
        assert dets is not None and dets.tracker_id is not None
        assigned.append(_assigned(dets, dets.tracker_id))
    assert len(assigned) == 90
    assert shapes.identity_switches(assigned) <= shapes.crossings()

    events = got.events
    kinds = [e.type for e in events]
    assert kinds[0] == "stream" and events[0].state == "running"
    assert kinds[-1] == "stream" and events[-1].state == "stopped"
    appeared = [e for e in events if e.type == "appeared"]
    gone = [e for e in events if e.type == "gone"]
    assert len(appeared) == len(gone) >= 3
    assert {e.track_id for e in appeared} == {e.track_id for e in gone}
    assert all(e.stream_id == "shapes" and e.label == "shape" and e.box is not None for e in appeared)
    assert all(e.frame_index is not None and e.captured_at is not None for e in appeared)
    # blue moves down across the line at y = 144: one crossing, "in" (left to right of start->end)
    crosses = [e for e in events if e.type == "cross"]
    blue = assigned[-1][2]
    assert [(e.zone, e.direction, e.track_id) for e in crosses] == [("mid", "in", blue)]
    # red starts in the left half and leaves it; green comes into it; blue's anchor (x = 160) is
    # on the polygon's edge and may count either way, so only red and green are checked
    red, green = assigned[-1][0], assigned[-1][1]
    left = [(e.type, e.track_id) for e in events if e.zone == "left" and e.track_id in (red, green)]
    assert ("enter", red) in left and ("exit", red) in left and ("enter", green) in left
    assert left.index(("enter", red)) < left.index(("exit", red))
    counts = stream.analytics_stats()
    assert counts["lines"]["mid"] == {"in": 1, "out": 0, "labels": {"shape": {"in": 1, "out": 0}}}
    assert counts["zones"]["left"]["count"] == 0  # every track ended with the stream
    assert counts["events"]["cross"] == 1


def test_stream_state_changes_are_events(settings) -> None:
    bus = EventBus()
    got = _Collector()
    bus.subscribe("test", got)
    engine = Engine(settings, loader=FakeLoader(), workers=1, monitor_interval=None, events=bus)
    stream = engine.add_stream(StreamSpec("bad", MemorySource(make_images(5), fail_after=2), ["fake"]),
                               start=True)
    assert stream.wait(TIMEOUT) and stream.state == "failed"
    assert engine.shutdown(TIMEOUT)
    assert got.wait(lambda evs: any(e.state == "failed" for e in evs))
    bus.close()
    states = [(e.type, e.stream_id, e.state) for e in got.events]
    assert states == [("stream", "bad", "running"), ("stream", "bad", "failed")]
    assert got.events[-1].message and got.events[-1].time > 0


class _FailsOnce(MemorySource):
    """Live: the first connection gives 3 frames, then a read fails (the link dropped); the next
    connection gives a frame every 10 ms (the camera's clock) until it is closed."""

    def __init__(self) -> None:
        super().__init__(make_images(1), live=True, name="flaky")
        self.connections = 0
        self._closed = threading.Event()

    def open(self) -> None:
        self.connections += 1
        self._closed.clear()

    def read(self):
        if self.connections == 1 and self.frames_read >= 3:
            raise OSError("connection reset by peer")
        if self.connections > 1 and self._closed.wait(0.01):
            return None
        return super().read()

    def interrupt(self) -> None:
        self._closed.set()

    def close(self) -> None:
        self._closed.set()


def test_a_source_that_drops_and_comes_back_publishes_reconnecting_then_running() -> None:
    settings = load_settings(environ={}, reconnect_initial_delay_seconds=0.01,
                             reconnect_max_delay_seconds=0.05, reconnect_max_attempts=3)
    bus = EventBus()
    got = _Collector()
    bus.subscribe("test", got)
    engine = Engine(settings, loader=FakeLoader(), workers=1, monitor_interval=None, events=bus)
    source = _FailsOnce()
    try:
        stream = engine.add_stream(StreamSpec("flaky", source, ["fake"]), [ListSink()], start=True)
        assert got.wait(lambda evs: [e.state for e in evs][:3] == ["running", "reconnecting", "running"]), \
            [(e.type, e.state) for e in got.events]
        assert stream.state == "running" and stream.reconnects == 1 and source.connections == 2
        assert engine.stop_stream("flaky", TIMEOUT)
        assert got.wait(lambda evs: evs[-1].state == "stopped")
    finally:
        engine.shutdown(TIMEOUT)
        bus.close()
    events = got.events
    assert [(e.type, e.stream_id, e.state) for e in events] == [
        ("stream", "flaky", "running"), ("stream", "flaky", "reconnecting"), ("stream", "flaky", "running"),
        ("stream", "flaky", "stopped")]
    assert "connection reset by peer" in events[1].message  # why it reconnects
    assert events[0].time <= events[1].time <= events[2].time
