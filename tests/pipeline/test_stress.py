"""Many streams at once, mixed priorities, live and finite, with workers finishing out of order."""

from __future__ import annotations

import threading

import pytest

from aisp.pipeline import Engine, ListSink, MemorySource, StreamSpec
from tests.pipeline.helpers import FakeLoader, make_images

TIMEOUT = 120


@pytest.mark.slow
def test_many_streams_stay_ordered_and_shut_down_cleanly(settings) -> None:
    loader = FakeLoader(cost_ms=0.5)
    engine = Engine(settings, loader=loader, workers=4, queue_size=4, monitor_interval=0.05)
    files, lives = {}, {}
    for i in range(6):
        sink = ListSink(needs_image=i % 2 == 0)
        files[f"f{i}"] = sink
        engine.add_stream(StreamSpec(f"f{i}", MemorySource(make_images(300)), ["fake", "b"], priority=i % 3),
                          [sink], start=True)
    enough = threading.Barrier(3 + 1)

    class Live(MemorySource):
        def read(self):
            item = super().read()
            if self.frames_read == 500:
                enough.wait(TIMEOUT)
            return item

    for i in range(3):
        sink = ListSink()
        lives[f"l{i}"] = sink
        engine.add_stream(StreamSpec(f"l{i}", Live(make_images(7), live=True), ["fake"]), [sink], start=True)
    for sid in files:
        assert engine.get_stream(sid).wait(TIMEOUT), sid
    enough.wait(TIMEOUT)  # every live stream has read 500 frames
    assert engine.shutdown(TIMEOUT)
    for sid, sink in files.items():
        assert [r.frame.index for r in sink.results] == list(range(300)), sid
        assert engine.get_stream(sid).stats.snapshot().dropped == 0
    for sid, sink in lives.items():
        indexes = [r.frame.index for r in sink.results]
        assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes), sid
        stream = engine.get_stream(sid)
        assert stream.state == "stopped" and sink.closed
        snap = stream.stats.snapshot()
        assert snap.frames_in >= 500
        assert snap.frames_out + snap.dropped <= snap.frames_in
