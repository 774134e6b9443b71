from __future__ import annotations

import pytest

from aisp.pipeline.stats import FpsMeter, Percentiles, StreamStats, percentile


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def test_fps_meter_counts_events_in_window() -> None:
    clock = FakeClock()
    meter = FpsMeter(clock, window=2.0)
    for _ in range(31):  # 30 intervals of 1/30 s
        meter.tick()
        clock.advance(1 / 30)
    assert meter.rate() == pytest.approx(30.0, rel=1e-6)
    assert meter.total == 31
    clock.advance(5.0)  # everything leaves the window
    assert meter.rate() == 0.0


def test_fps_meter_rejects_bad_window() -> None:
    with pytest.raises(ValueError, match="window expected > 0"):
        FpsMeter(window=0)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, 0.0), ([5.0], 99, 5.0), ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 100, 4),
     (list(range(1, 101)), 99, 99), (list(range(1, 101)), 95, 95)],
)
def test_percentile_nearest_rank(values, q, expected) -> None:
    assert percentile([float(v) for v in values], q) == expected


def test_percentile_range_checked() -> None:
    with pytest.raises(ValueError, match="expected 0..100"):
        percentile([1.0], 101)


def test_percentiles_keep_last_samples() -> None:
    p = Percentiles(size=10)
    for v in range(100):
        p.add(v)
    s = p.summary()
    assert s["p50"] == 94 and s["max"] == 99 and p.count == 100


def test_stream_stats_latency_uses_the_injected_clock() -> None:
    clock = FakeClock(10.0)
    stats = StreamStats(clock)
    stats.queue_depths = lambda: {"input": 3}
    for i in range(10):
        captured = clock()
        stats.record_input(captured)
        clock.advance(0.040 + i * 0.001)  # 40..49 ms capture -> sink
        stats.record_output(captured, inference_ms=5.0, detections=2)
    stats.record_drop(3)
    snap = stats.snapshot()
    assert snap["frames_in"] == 10 and snap["frames_out"] == 10
    assert snap["dropped"] == 3 and snap["detections"] == 20
    assert snap["latency_ms"]["p50"] == pytest.approx(44.0, abs=1e-6)
    assert snap["latency_ms"]["p99"] == pytest.approx(49.0, abs=1e-6)
    assert snap["inference_ms"]["p95"] == 5.0
    assert snap["queue_depths"] == {"input": 3}
    assert snap["processed_fps"] > 0
