"""The engine end to end on fake sources, fake models and list sinks (real threads, no sleeps)."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from aisp.errors import ConflictError, NotFoundError, SourceError, ValidationError
from aisp.models.fake import FakeModel
from aisp.models.results import Detections
from aisp.pipeline import Engine, ListSink, MemorySource, StreamSpec
from aisp.pipeline.memory import MemoryGuard
from aisp.pipeline.sources import Source, SourceFrame
from aisp.settings import load_settings
from tests.pipeline.helpers import FakeLoader, RegistryLoader, make_images

TIMEOUT = 30


def box(frame):
    return Detections(np.array([[1, 1, 5, 5]], np.float32), np.array([0.9], np.float32),
                      np.zeros(1, np.int32))


@pytest.fixture
def engine(settings, loader):
    eng = Engine(settings, loader=loader, workers=2, monitor_interval=None)
    yield eng
    assert eng.shutdown(TIMEOUT), "engine did not shut down in time"


def run(engine, spec, sinks=()):
    stream = engine.add_stream(spec, list(sinks), start=True)
    assert stream.wait(TIMEOUT), f"stream stuck in {stream.state}"
    return stream


def test_results_reach_sinks_in_frame_order_even_when_workers_finish_out_of_order(settings) -> None:
    gate = threading.Event()
    finished: list[int] = []
    lock = threading.Lock()

    def slow_first(frame):
        value = int(frame[0, 0, 0])
        if value == 0:
            assert gate.wait(TIMEOUT)
        if value == 2:
            gate.set()
        with lock:
            finished.append(value)
        return box(frame)

    loader = FakeLoader(boxes=slow_first)
    engine = Engine(settings, loader=loader, workers=2, max_batch=1, monitor_interval=None)
    sink = ListSink()
    stream = run(engine, StreamSpec("s", MemorySource(make_images(20)), ["fake"]), [sink])
    assert engine.shutdown(TIMEOUT)
    assert finished.index(2) < finished.index(0)  # frame 2 really finished before frame 0
    assert [r.frame.index for r in sink.results] == list(range(20))
    assert stream.state == "stopped" and sink.closed
    snap = stream.stats.snapshot()
    assert snap.frames_out == 20 and snap.dropped == 0 and snap.detections == 20


def test_files_are_processed_completely_with_backpressure(settings, loader) -> None:
    engine = Engine(settings, loader=loader, workers=3, queue_size=2, monitor_interval=None)
    sink = ListSink(needs_image=True)
    stream = run(engine, StreamSpec("f", MemorySource(make_images(200)), ["fake", "other"]), [sink])
    assert engine.shutdown(TIMEOUT)
    assert [r.frame.index for r in sink.results] == list(range(200))
    assert all(set(r.results) == {"fake", "other"} for r in sink.results)
    assert all(r.annotated is not None and r.annotated.shape == (48, 64, 3) for r in sink.results)
    assert stream.stats.snapshot().dropped == 0


def test_batches_are_used_when_the_model_supports_them(settings) -> None:
    gate, eof = threading.Event(), threading.Event()
    sizes: list[int] = []

    class BatchRecorder(FakeModel):
        def infer_batch(self, frames):
            sizes.append(len(frames))
            return super().infer_batch(frames)

    model = BatchRecorder("fake", boxes=lambda f: (gate.wait(TIMEOUT), box(f))[1])
    engine = Engine(settings, loader=lambda name, inst: model, workers=1, max_batch=4, monitor_interval=None)

    class Finite(MemorySource):
        def read(self):
            item = super().read()
            if item is None:
                eof.set()
            return item

    sink = ListSink()
    stream = engine.add_stream(StreamSpec("b", Finite(make_images(12)), ["fake"]), [sink], start=True)
    assert eof.wait(TIMEOUT)  # the single worker is stuck on its first frame; the rest is queued
    gate.set()
    assert stream.wait(TIMEOUT)
    assert engine.shutdown(TIMEOUT)
    assert [r.frame.index for r in sink.results] == list(range(12))
    assert max(sizes) == 4 and model.calls == 12


def test_every_and_max_fps_thin_a_file(engine) -> None:
    every = ListSink()
    run(engine, StreamSpec("e", MemorySource(make_images(30), fps=30), ["fake"], every=3), [every])
    assert [r.frame.index for r in every.results] == list(range(0, 30, 3))
    capped = ListSink()
    run(engine, StreamSpec("m", MemorySource(make_images(30), fps=30), ["fake"], max_fps=10), [capped])
    assert [r.frame.index for r in capped.results] == list(range(0, 30, 3))
    start = ListSink()
    run(engine, StreamSpec("st", MemorySource(make_images(10)), ["fake"], start_frame=7), [start])
    assert [r.frame.index for r in start.results] == [7, 8, 9]


def test_non_thread_safe_models_get_one_instance_per_worker(settings) -> None:
    class ThreadRecorder(FakeModel):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.threads: set[int] = set()

        def infer(self, frame):
            self.threads.add(threading.get_ident())
            return super().infer(frame)

    instances: dict[str, ThreadRecorder] = {}
    lock = threading.Lock()

    def loader(name, instance):
        with lock:
            return instances.setdefault(instance, ThreadRecorder(name, thread_safe=False, cost_ms=1))

    engine = Engine(settings, loader=loader, workers=3, max_batch=1, monitor_interval=None)
    run(engine, StreamSpec("n", MemorySource(make_images(60)), ["fake"]), [ListSink()])
    assert engine.shutdown(TIMEOUT)
    assert set(instances) == {"w0", "w1", "w2"}
    assert sum(m.calls for m in instances.values()) == 60
    assert all(len(m.threads) <= 1 for m in instances.values())  # never shared between threads
    assert len(set().union(*(m.threads for m in instances.values()))) == sum(bool(m.threads) for m in
                                                                          instances.values())


def test_live_reader_never_blocks_and_counts_drops(settings, loader) -> None:
    gate = threading.Event()
    loader.configure("fake", boxes=lambda f: (gate.wait(TIMEOUT), box(f))[1])
    engine = Engine(settings, loader=loader, workers=1, queue_size=4, max_batch=1, monitor_interval=None)
    reads = threading.Event()

    class CountingLive(MemorySource):
        def read(self):
            item = super().read()
            if self.frames_read >= 200:
                reads.set()
            return item

    sink = ListSink()
    stream = engine.add_stream(StreamSpec("live", CountingLive(make_images(3), live=True), ["fake"]), [sink],
                               start=True)
    assert reads.wait(TIMEOUT)  # 200 frames read while the only worker is blocked
    snap = stream.stats.snapshot()
    assert snap.dropped >= 200 - 4 - 4  # queue capacity + in-flight limit
    assert snap.queue_depths["input"] <= 4
    gate.set()
    assert engine.stop_stream("live", TIMEOUT)
    assert stream.state == "stopped" and sink.closed
    assert engine.shutdown(TIMEOUT)


def test_drop_newest_policy(loader, tmp_path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path, drop_policy="drop_newest")
    busy, gate, done = threading.Event(), threading.Event(), threading.Event()

    def blocked(frame):
        busy.set()
        assert gate.wait(TIMEOUT)
        return box(frame)

    loader.configure("fake", boxes=blocked)
    engine = Engine(settings, loader=loader, workers=1, queue_size=2, max_batch=1, monitor_interval=None)

    class Live(MemorySource):
        after = 0

        def read(self):
            if busy.is_set():
                self.after += 1
                if self.after >= 50:
                    done.set()
            return super().read()

    sink = ListSink()
    stream = engine.add_stream(StreamSpec("l", Live(make_images(100), live=True), ["fake"]), [sink],
                               start=True)
    assert done.wait(TIMEOUT)  # 50 more frames read while the worker holds frame 0
    # drop-newest keeps the oldest frames: frame 1 is still queued although 50+ frames came after it
    queued = [f.index for f in stream.queue.items]
    assert queued[0] == 1 and len(queued) == 2
    assert stream.stats.snapshot().dropped >= 47
    gate.set()
    engine.stop_stream("l", TIMEOUT)
    assert engine.shutdown(TIMEOUT)
    assert [r.frame.index for r in sink.results] == [0]


def test_failing_model_fails_the_stream_and_nothing_hangs(engine, loader) -> None:
    sink = ListSink()
    calls = {"n": 0}

    def fail_on_third(frame):
        calls["n"] += 1
        if int(frame[0, 0, 0]) == 2:
            raise RuntimeError("boom on frame 2")
        return box(frame)

    loader.configure("fake", boxes=fail_on_third)
    stream = run(engine, StreamSpec("y", MemorySource(make_images(500)), ["fake"]), [sink])
    assert stream.state == "failed"
    assert "boom on frame 2" in stream.last_error
    assert sink.closed and sink.results[2].error is not None
    assert len(sink.results) < 500  # the reader was stopped


def test_failing_sink_stops_the_stream_and_closes_the_others(engine) -> None:
    class Broken(ListSink):
        def write(self, result):
            if result.frame.index == 3:
                raise OSError("disk full")
            super().write(result)

    broken, good = Broken(), ListSink()
    stream = run(engine, StreamSpec("s", MemorySource(make_images(500)), ["fake"]), [good, broken])
    assert stream.state == "failed" and "disk full" in stream.last_error
    assert broken.closed and good.closed
    assert len(good.results) < 500


def test_stream_registry_errors(engine) -> None:
    engine.add_stream(StreamSpec("a", MemorySource(make_images(1)), ["fake"]))
    with pytest.raises(ConflictError, match="already exists"):
        engine.add_stream(StreamSpec("a", MemorySource(make_images(1)), ["fake"]))
    with pytest.raises(NotFoundError) as info:
        engine.get_stream("zzz")
    assert info.value.details == {"kind": "stream", "key": "zzz"}
    assert [s.id for s in engine.streams()] == ["a"]
    assert engine.remove_stream("a", TIMEOUT)
    assert engine.streams() == []


def test_unknown_model_is_reported_before_start(settings) -> None:
    models = RegistryLoader()  # the real registry
    engine = Engine(settings, models, monitor_interval=None)
    with pytest.raises(NotFoundError, match="unknown model 'nope'"):
        engine.add_stream(StreamSpec("a", MemorySource(make_images(1)), ["nope"]))
    assert engine.streams() == []
    assert engine.shutdown(TIMEOUT)
    models.close()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"models": []}, "models"), ({"models": ["a", "a"]}, "models"), ({"every": 0}, "every"),
    ({"max_fps": 0}, "max_fps"), ({"priority": "high"}, "priority"), ({"id": ""}, "id"),
])
def test_stream_spec_validation(kwargs, field) -> None:
    args = {"id": "s", "source": "demo", "models": ["fake"], **kwargs}
    with pytest.raises(ValidationError) as info:
        StreamSpec(**args)
    assert info.value.field == field


def test_two_streams_share_the_workers(engine) -> None:
    a, b = ListSink(), ListSink()
    sa = engine.add_stream(StreamSpec("a", MemorySource(make_images(40)), ["fake"]), [a], start=True)
    sb = engine.add_stream(StreamSpec("b", MemorySource(make_images(40)), ["fake"], priority=3), [b],
                           start=True)
    assert sa.wait(TIMEOUT) and sb.wait(TIMEOUT)
    assert [r.frame.index for r in a.results] == list(range(40))
    assert [r.frame.index for r in b.results] == list(range(40))
    assert {r.frame.stream_id for r in b.results} == {"b"}


class StallingSource(Source):
    """Live; delivers ``free`` frames per connection, then blocks until interrupted."""

    live = True

    def __init__(self, free: int = 3) -> None:
        super().__init__("stalling")
        self.free = free
        self.opened = 0
        self.sent = 0
        self.unblock = threading.Event()
        self.stalled = threading.Event()

    def open(self) -> None:
        self.opened += 1
        self.sent = 0
        self.unblock.clear()

    def read(self):
        if self.sent >= self.free:
            self.stalled.set()
            self.unblock.wait(TIMEOUT)
            return None  # interrupted: looks like a disconnect
        self.sent += 1
        self.frames_read += 1
        return SourceFrame(np.zeros((8, 8, 3), np.uint8), self.frames_read / 30)

    def interrupt(self) -> None:
        self.unblock.set()


def test_stalled_live_source_is_reconnected(loader, tmp_path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path, stall_timeout_seconds=5,
                             reconnect_initial_delay_seconds=0.001, reconnect_max_delay_seconds=0.002)
    now = [1000.0]
    engine = Engine(settings, clock=lambda: now[0], loader=loader, monitor_interval=None)
    source = StallingSource()
    stream = engine.add_stream(StreamSpec("cam", source, ["fake"]), [ListSink()], start=True)
    assert source.stalled.wait(TIMEOUT) and stream.state == "running"
    now[0] += 4.0
    engine.check_health()
    assert stream.state == "running"  # 4 s of silence is under the 5 s timeout
    now[0] += 2.0
    source.stalled.clear()
    engine.check_health()
    assert stream.state == "reconnecting" and "stalled" in stream.last_error
    assert stream.wait_for_state("running", timeout=TIMEOUT)
    assert source.stalled.wait(TIMEOUT)  # frames flow again on the new connection, then it stalls again
    assert source.opened == 2 and stream.reconnects == 1
    engine.stop_stream("cam", TIMEOUT)
    assert stream.state == "stopped"
    assert engine.shutdown(TIMEOUT)


@pytest.mark.parametrize("url", ["rtsp://127.0.0.1:9/none", "http://127.0.0.1:9/stream.mjpg"])
def test_unreachable_url_retries_then_fails_with_the_reason(loader, tmp_path, url) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path, reconnect_initial_delay_seconds=0.001,
                             reconnect_max_delay_seconds=0.004, reconnect_max_attempts=3)
    engine = Engine(settings, loader=loader, monitor_interval=None)
    sink = ListSink()
    stream = engine.add_stream(StreamSpec("u", url, ["fake"]), [sink], start=True)
    assert stream.wait(TIMEOUT)
    assert stream.state == "failed"
    assert "gave up after 3 reconnect attempts" in stream.last_error
    assert "refused" in stream.last_error.lower() or "cannot open" in stream.last_error
    assert sink.closed and sink.results == []
    assert engine.shutdown(TIMEOUT)


def test_memory_guard_shrinks_live_buffers_and_drops(loader, settings, caplog) -> None:
    rss = [10]
    guard = MemoryGuard(100, rss=lambda: rss[0])
    gate = threading.Event()
    loader.configure("fake", boxes=lambda f: (gate.wait(TIMEOUT), box(f))[1])
    engine = Engine(settings, loader=loader, workers=1, queue_size=8, monitor_interval=None,
                    memory_guard=guard)
    filled = threading.Event()

    class Live(MemorySource):
        def read(self):
            if self.frames_read >= 40:
                filled.set()
            return super().read()

    stream = engine.add_stream(StreamSpec("l", Live(make_images(2), live=True), ["fake"]), start=True)
    assert filled.wait(TIMEOUT)
    base = stream.queue.capacity
    assert base == 2  # live queues are short: min(queue_size, max(2, workers))
    rss[0] = 1000
    with caplog.at_level(logging.WARNING, logger="aisp.pipeline"):
        engine.check_health()
    assert any("memory guard" in r.message for r in caplog.records)
    assert stream.queue.capacity == 1 and stream.stats.snapshot().queue_depths["input"] <= 1
    rss[0] = 10
    engine.check_health()
    assert stream.queue.capacity == base
    gate.set()
    assert engine.shutdown(TIMEOUT)


def test_stopping_a_never_started_stream_closes_its_sinks(engine) -> None:
    sink = ListSink()
    stream = engine.add_stream(StreamSpec("idle", MemorySource(make_images(3)), ["fake"]), [sink])
    assert engine.stop_stream("idle", TIMEOUT)
    assert stream.state == "stopped" and sink.closed


def test_gil_switch_interval_is_lowered_while_running_and_restored(settings, loader) -> None:
    import sys

    before = sys.getswitchinterval()
    engine = Engine(settings, loader=loader, monitor_interval=None, switch_interval=0.0002)
    other = Engine(settings, loader=loader, monitor_interval=None, switch_interval=0.0002)
    engine.add_stream(StreamSpec("a", MemorySource(make_images(3)), ["fake"]), start=True)
    other.add_stream(StreamSpec("b", MemorySource(make_images(3)), ["fake"]), start=True)
    assert sys.getswitchinterval() == pytest.approx(0.0002)
    assert engine.shutdown(TIMEOUT)
    assert sys.getswitchinterval() == pytest.approx(0.0002)  # the other engine still runs
    assert other.shutdown(TIMEOUT)
    assert sys.getswitchinterval() == pytest.approx(before)
    with pytest.raises(ValueError, match="switch interval expected > 0"):
        Engine(settings, loader=loader, monitor_interval=None, switch_interval=0)


# --- codec threads shared out over the readers -------------------------------------------------
def test_concurrent_streams_share_the_codec_threads(settings, loader, video_file) -> None:
    """4 cores: a lone reader gets 5 codec threads; one that starts beside it gets 5 // 2 = 2 (the
    decoder of a real file is told so); the first keeps its 5 (FFmpeg cannot change them)."""
    pytest.importorskip("av")
    from aisp.cpu_budget import plan_cpu
    from aisp.pipeline.sources import VideoFileSource

    engine = Engine(settings, loader=loader, plan=plan_cpu(4), monitor_interval=None)
    try:
        first = MemorySource(make_images(3), live=True)
        engine.add_stream(StreamSpec("a", first, ["fake"]), start=True)
        assert first.decode_threads == 5
        second = VideoFileSource(video_file, decoder="pyav")
        engine.add_stream(StreamSpec("b", second, ["fake"]))  # a file: opened here, not started
        assert second.decode_threads == 2 and first.decode_threads == 5
        assert second._decoder.threads == 2 and second._decoder._container.streams.video[0].thread_count == 2
        # a source that failed to open is no reader: the next one does not count it
        gone = VideoFileSource(video_file.with_name("gone.mp4"))  # still referenced: not collected
        with pytest.raises(SourceError):
            engine.add_stream(StreamSpec("gone", gone, ["fake"]))
        # a stopped stream's reader is gone: 2 readers (b, the new one), not 3
        assert engine.stop_stream("a", TIMEOUT)
        third = MemorySource(make_images(3), live=True)
        engine.add_stream(StreamSpec("c", third, ["fake"]))
        assert third.decode_threads == 2
        # a source given threads before add_stream (a task opens its own) counts from then on
        early = MemorySource(make_images(3))
        assert engine.assign_decode_threads(early) == 1  # b, c and itself: 5 // 3
        later = MemorySource(make_images(3))
        assert engine.assign_decode_threads(later) == 1  # 5 // 4
        engine.add_stream(StreamSpec("early", early, ["fake"]))
        assert early.decode_threads == 1  # kept
        # threads its creator chose are kept
        own = MemorySource(make_images(3))
        own.decode_threads = 7
        engine.add_stream(StreamSpec("own", own, ["fake"]))
        assert own.decode_threads == 7
    finally:
        assert engine.shutdown(TIMEOUT)


def test_the_decode_threads_setting_is_used_as_given_for_every_reader(settings, loader) -> None:
    from aisp.cpu_budget import plan_cpu

    engine = Engine(settings, loader=loader, plan=plan_cpu(4, decode_threads=4), monitor_interval=None)
    try:
        sources = [MemorySource(make_images(3), live=True) for _ in range(3)]
        for i, source in enumerate(sources):
            engine.add_stream(StreamSpec(f"s{i}", source, ["fake"]), start=True)
        assert [s.decode_threads for s in sources] == [4, 4, 4]
    finally:
        assert engine.shutdown(TIMEOUT)
