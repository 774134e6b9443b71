"""A stream's lifecycle methods, one at a time, without an engine (no threads, no sleeps)."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from aisp.errors import SourceError
from aisp.models.fake import FakeModel
from aisp.pipeline._describe import describe
from aisp.pipeline.frame_types import Frame, FrameResult
from aisp.pipeline.scheduler import Scheduler
from aisp.pipeline.sources import MemorySource
from aisp.pipeline.stats import StreamMeter
from aisp.pipeline.stream import Stream, StreamSpec
from aisp.pipeline.watchdog import Watchdog
from aisp.pipeline.workers import WorkerJob, WorkerPool
from tests.pipeline.helpers import make_images


class Recorder(MemorySource):
    def __init__(self) -> None:
        super().__init__(make_images(2), live=True)
        self.interrupts = 0

    def interrupt(self) -> None:
        self.interrupts += 1


def make_stream(on_stop=None) -> tuple[Stream, Recorder, list[Stream]]:
    source = Recorder()
    stopped: list[Stream] = []
    clock = lambda: 0.0  # noqa: E731
    stream = Stream(StreamSpec("s", source, ["fake"]), source, [], StreamMeter(clock), Watchdog(5.0, clock),
                    mjpeg=False, on_stop=on_stop if on_stop is not None else stopped.append)
    return stream, source, stopped


def result(seq: int) -> FrameResult:
    frame = Frame("s", seq, None, 0.0, make_images(1)[0])
    frame.seq = seq
    return FrameResult(frame)


def test_request_stop_interrupts_the_source_and_calls_on_stop() -> None:
    stream, source, stopped = make_stream()
    assert not stream.stop_requested and stream.wait_stop(0) is False
    stream.request_stop()
    assert stream.stop_requested and stream.wait_stop(None) is True
    assert source.interrupts == 1 and stopped == [stream]
    assert not stream.failed  # a stop is not a failure
    stream.finish()
    assert stream.state == "stopped" and stream.done


def test_abort_keeps_the_first_reason_logs_once_and_stops(caplog) -> None:
    stream, source, stopped = make_stream()
    with caplog.at_level(logging.ERROR, "aisp.pipeline"):
        assert stream.abort("SourceError: gone") is True
        assert stream.abort("RuntimeError: later") is False
    assert stream.failed and stream.last_error == "SourceError: gone"
    assert [r.getMessage() for r in caplog.records] == ["stream s failed: SourceError: gone"]
    assert stream.stop_requested and source.interrupts == 2 and stopped == [stream, stream]
    stream.record_error("a later error does not replace the abort reason")
    assert stream.last_error == "SourceError: gone"
    stream.finish()
    assert stream.state == "failed"
    stream.set_state("running")  # terminal states stick
    assert stream.state == "failed"


def test_fail_at_end_does_not_stop_but_ends_failed() -> None:
    stream, source, stopped = make_stream()
    stream.set_state("running")
    stream.fail_at_end("SourceError: video ended after 3 of 9 frames")
    assert not stream.stop_requested and not stream.failed and stopped == []
    assert stream.state == "running" and stream.last_error == "SourceError: video ended after 3 of 9 frames"
    stream.finish()
    assert stream.state == "failed"


def test_fail_at_end_without_a_reason_keeps_the_error() -> None:
    stream, _, _ = make_stream()
    stream.record_error("first")
    stream.fail_at_end()
    assert stream.last_error == "first"
    stream.finish()
    assert stream.state == "failed"


def test_reconnect_request_then_the_readers_side() -> None:
    stream, source, stopped = make_stream()
    stream.watchdog.arm(0.0)
    stream.set_state("running")
    stream.request_reconnect("stalled: no frame for 6.0 s")
    assert stream.reconnect_requested and source.interrupts == 1
    assert stream.state == "reconnecting" and stream.last_error == "stalled: no frame for 6.0 s"
    assert not stream.stop_requested and stopped == []
    stream.begin_reconnect("stalled: no frame for 6.0 s")
    assert not stream.reconnect_requested
    assert stream.watchdog.stalled(100.0) is False  # disarmed while reconnecting
    stream.reconnected()
    assert stream.reconnects == 1 and stream.state == "running"
    assert stream.watchdog.silence(0.0) == 0.0 and stream.watchdog.stalled(1e9) is True  # armed again


def test_deliver_hands_results_to_the_reorder_buffer_in_any_order() -> None:
    stream, _, _ = make_stream()
    stream.deliver([result(1), result(2)])
    assert len(stream.reorder) == 2
    stream.deliver([result(0)])
    stream.reorder.finish(3)
    assert [stream.reorder.pop(0).frame.seq for _ in range(3)] == [0, 1, 2]
    assert stream.reorder.pop(0) is None


def test_the_stats_in_the_snapshot_are_the_api_dict() -> None:
    stream, _, _ = make_stream()
    snap = stream.snapshot()
    assert snap["stats"] == stream.stats.snapshot().to_dict() and isinstance(snap["stats"], dict)


def test_worker_job_is_a_frozen_value() -> None:
    stream, _, _ = make_stream()
    job = WorkerJob(("fake",), False, stream.deliver)
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.needs_image = True  # type: ignore[misc]


def test_a_worker_pool_delivers_through_the_job() -> None:
    delivered: list[FrameResult] = []
    model = FakeModel("fake")
    pool = WorkerPool(Scheduler(), 1, lambda name, instance: model)
    pool.set_job("s", WorkerJob(("fake",), True, delivered.extend))
    out = pool.run(0, [result(0).frame], ["fake"], needs_image=True)
    assert out[0].results["fake"].model == "fake" and out[0].annotated is not None
    assert pool.job("s") is not None
    pool.remove_job("s")
    assert pool.job("s") is None
    assert pool.check_models(["fake"]) is bool(model.supports_batch)


@pytest.mark.parametrize(("exc", "text"), [
    (SourceError("cannot open 'x.mp4'", source="x.mp4", details={"phase": "open"}),
     "SourceError: cannot open 'x.mp4'"),
    (ValueError("bad value"), "ValueError: bad value"),
    (RuntimeError(), "RuntimeError: RuntimeError"),
    (KeyboardInterrupt(), "KeyboardInterrupt: KeyboardInterrupt"),
])
def test_describe(exc, text) -> None:
    assert describe(exc) == text
