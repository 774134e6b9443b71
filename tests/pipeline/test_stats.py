from __future__ import annotations

from types import MappingProxyType

import pytest

from aisp.pipeline.stats import FpsMeter, LatencySummary, Percentiles, StreamMeter, StreamStats, percentile


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
    assert s.p50 == 94 and s.max == 99 and p.count == 100


def test_stream_stats_latency_uses_the_injected_clock() -> None:
    clock = FakeClock(10.0)
    stats = StreamMeter(clock)
    stats.queue_depths = lambda: {"input": 3}
    for i in range(10):
        captured = clock()
        stats.record_input(captured)
        clock.advance(0.040 + i * 0.001)  # 40..49 ms capture -> sink
        stats.record_output(captured, inference_ms=5.0, detections=2)
    stats.record_drop(3)
    snap = stats.snapshot()
    assert snap.frames_in == 10 and snap.frames_out == 10
    assert snap.dropped == 3 and snap.detections == 20
    assert snap.latency_ms.p50 == pytest.approx(44.0, abs=1e-6)
    assert snap.latency_ms.p99 == pytest.approx(49.0, abs=1e-6)
    assert snap.inference_ms.p95 == 5.0
    assert snap.queue_depths == {"input": 3}
    assert snap.processed_fps > 0


def test_empty_percentiles_summarise_to_zeros() -> None:
    assert Percentiles().summary() == LatencySummary(0.0, 0.0, 0.0, 0.0, 0.0)


def test_stream_stats_is_a_frozen_snapshot_whose_dict_keeps_the_api_shape() -> None:
    clock = FakeClock(0.0)
    meter = StreamMeter(clock)
    depths = {"input": 1, "inflight": 2, "capacity": 8, "reorder": 0}
    meter.queue_depths = lambda: depths
    captured = clock()
    meter.record_input(captured)
    clock.advance(0.010)
    meter.record_output(captured, inference_ms=4.0, detections=1, error=True)
    snap = meter.snapshot()
    assert isinstance(snap, StreamStats) and isinstance(snap.latency_ms, LatencySummary)
    with pytest.raises(AttributeError):
        snap.frames_out = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.queue_depths["input"] = 9  # type: ignore[index]
    depths["input"] = 7  # a later change of the engine's depths does not reach the snapshot
    assert snap.queue_depths["input"] == 1
    # exactly the dict (keys, order, types) that the API, the store and /metrics used to get
    out = snap.to_dict()
    assert list(out) == ["input_fps", "processed_fps", "frames_in", "frames_out", "dropped", "errors",
                         "detections", "queue_depths", "latency_ms", "inference_ms"]
    assert out == {
        "input_fps": 0.0, "processed_fps": 0.0, "frames_in": 1, "frames_out": 1, "dropped": 0,
        "errors": 1, "detections": 1,
        "queue_depths": {"input": 1, "inflight": 2, "capacity": 8, "reorder": 0},
        "latency_ms": {"p50": 10.0, "p95": 10.0, "p99": 10.0, "mean": 10.0, "max": 10.0},
        "inference_ms": {"p50": 4.0, "p95": 4.0, "p99": 4.0, "mean": 4.0, "max": 4.0},
    }
    assert type(out["queue_depths"]) is dict and not isinstance(out["queue_depths"], MappingProxyType)
    assert list(out["latency_ms"]) == ["p50", "p95", "p99", "mean", "max"]
    assert StreamStats().to_dict()["latency_ms"] == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0,
                                                      "max": 0.0}
