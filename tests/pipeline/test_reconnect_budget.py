"""The reconnect budget is one per stream (issue 13 item 5), with an injected clock.

A live source that opens every time and then drops after a few frames used to get a fresh
budget on each open, so it ran forever. Now every outage spends the budget, and only frames
flowing for a healthy period give it back. The fake source moves the engine's fake clock as it
delivers frames, so "healthy for a while" costs no real time.
"""

from __future__ import annotations

import numpy as np

from aisp.pipeline import CallbackSink, Engine, MemorySource, StreamSpec
from aisp.settings import load_settings
from tests.pipeline.helpers import FakeLoader
from tests.pipeline.test_stats import FakeClock

FRAME = np.zeros((8, 8, 3), np.uint8)


class DroppingSource(MemorySource):
    """Live; each connection gives ``per_connection`` frames ``step`` fake seconds apart, then ends.
    ``limit`` connections at most: after that every open fails (so the test always ends)."""

    def __init__(self, clock: FakeClock, per_connection: int, step: float, limit: int = 50) -> None:
        super().__init__([FRAME], live=True, name="dropping")
        self.clock, self.per_connection, self.step, self.limit = clock, per_connection, step, limit
        self.connections = 0
        self._left = 0

    def open(self) -> None:
        if self.connections >= self.limit:
            raise OSError("no more connections")
        self.connections += 1
        self._left = self.per_connection

    def read(self):
        if self._left == 0:
            return None  # the server dropped the connection
        self._left -= 1
        self.clock.advance(self.step)
        return super().read()


def _run(per_connection: int, step: float) -> tuple[DroppingSource, object]:
    clock = FakeClock()
    settings = load_settings(environ={}, reconnect_initial_delay_seconds=0.001,
                             reconnect_max_delay_seconds=0.002, reconnect_max_attempts=3,
                             stall_timeout_seconds=10.0)
    engine = Engine(settings, FakeLoader(), clock, workers=1, monitor_interval=None, switch_interval=None)
    source = DroppingSource(clock, per_connection, step)
    try:
        stream = engine.add_stream(StreamSpec("cam", source, ["fake"]), [CallbackSink(lambda r: None)],
                                   start=True)
        assert stream.wait(30)
    finally:
        engine.shutdown(10)
    return source, stream


def test_a_source_that_opens_then_drops_spends_the_budget() -> None:
    source, stream = _run(per_connection=3, step=0.1)  # 0.3 s of frames per connection
    assert stream.state == "failed" and "gave up after 3 reconnect attempts" in stream.last_error
    assert source.connections == 4  # the first open and three reconnects, each of which opened


def test_frames_flowing_for_a_healthy_period_give_the_budget_back() -> None:
    # 20 frames 1 s apart = 20 s per connection, longer than the healthy period (10 s)
    source, stream = _run(per_connection=20, step=1.0)
    assert source.connections == source.limit  # it kept reconnecting until the source ran out
    assert stream.state == "failed" and "no more connections" in stream.last_error
