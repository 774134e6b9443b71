"""The sink contract, run against every sink, plus each sink's own behaviour."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from aisp.models.fake import FakeModel
from aisp.pipeline.frame_types import Frame, FrameResult
from aisp.pipeline.sinks import (
    CallbackSink,
    JsonlSink,
    LatestResultSink,
    ListSink,
    MJPEGSink,
    Sink,
    VideoSink,
)


def result(i: int, h: int = 48, w: int = 64) -> FrameResult:
    image = np.full((h, w, 3), (10 * i) % 256, np.uint8)
    frame = Frame("s", i, i / 30, 100.0 + i, image, seq=i)
    model = FakeModel("fake")
    return FrameResult(frame, {"fake": model.infer(image)}, image.copy())


class SinkContract:
    def make(self, tmp_path: Path) -> Sink:
        raise NotImplementedError

    def check(self, sink: Sink, tmp_path: Path, n: int) -> None:
        """What the sink holds after n results were written and it was closed."""

    def test_write_then_close_is_idempotent(self, tmp_path: Path) -> None:
        sink = self.make(tmp_path)
        sink.open()
        for i in range(5):
            sink.write(result(i))
        sink.close()
        sink.close()
        self.check(sink, tmp_path, 5)

    def test_close_without_writes(self, tmp_path: Path) -> None:
        sink = self.make(tmp_path)
        sink.open()
        sink.close()


class TestListSink(SinkContract):
    def make(self, tmp_path):
        return ListSink()

    def check(self, sink, tmp_path, n):
        assert [r.frame.index for r in sink.results] == list(range(n)) and sink.closed


class TestCallbackSink(SinkContract):
    def make(self, tmp_path):
        self.seen = []
        return CallbackSink(self.seen.append)

    def check(self, sink, tmp_path, n):
        assert len(self.seen) == n


class TestJsonlSink(SinkContract):
    def make(self, tmp_path):
        return JsonlSink(tmp_path / "out" / "events.jsonl", flush_every=2)

    def check(self, sink, tmp_path, n):
        lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        assert [r["index"] for r in rows] == list(range(n))
        assert rows[0]["results"]["fake"]["num_detections"] == 1
        assert rows[0]["width"] == 64 and rows[0]["num_detections"] == 1


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
class TestVideoSink(SinkContract):
    @pytest.fixture(autouse=True)
    def _backend(self, backend):
        self.backend = backend

    def make(self, tmp_path):
        return VideoSink(tmp_path / "out.mp4", fps=30, backend=self.backend)

    def check(self, sink, tmp_path, n):
        if n == 0:
            return
        assert sink.codec == ("libx264" if self.backend == "pyav" else "mp4v")
        cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
        frames = []
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(img)
        cap.release()
        assert len(frames) == n
        assert frames[0].shape == (48, 64, 3)
        assert [float(f.mean()) for f in frames] == pytest.approx([10.0 * i for i in range(n)], abs=4)


class TestMJPEGSink(SinkContract):
    def make(self, tmp_path):
        return MJPEGSink(quality=90)

    def check(self, sink, tmp_path, n):
        jpeg = sink.latest_jpeg()
        assert jpeg[:2] == b"\xff\xd8"
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (48, 64, 3) and float(img.mean()) == pytest.approx(40, abs=3)
        assert sink.seq == n


class TestLatestResultSink(SinkContract):
    def make(self, tmp_path):
        return LatestResultSink()

    def check(self, sink, tmp_path, n):
        assert sink.get().frame.index == n - 1 and sink.seq == n


def test_latest_wait_next_wakes_subscribers() -> None:
    sink = LatestResultSink()
    sink.open()
    got = []
    ready = threading.Event()

    def subscriber():
        ready.set()
        got.append(sink.wait_next(0, timeout=10))

    t = threading.Thread(target=subscriber)
    t.start()
    ready.wait(5)
    sink.write(result(3))
    t.join(10)
    assert got[0][0] == 1 and got[0][1].frame.index == 3
    assert sink.wait_next(1, timeout=0) is None  # nothing newer
    sink.close()
    assert sink.wait_next(1, timeout=None) is None  # closed: returns at once


def test_mjpeg_encodes_lazily_once_per_frame() -> None:
    sink = MJPEGSink()
    for i in range(5):
        sink.write(result(i))
    assert sink.encoded_frames == 0  # nobody asked: nothing encoded
    seq, data = sink.wait_next(0, timeout=0)
    assert seq == 5 and data.startswith(b"\xff\xd8")
    assert sink.latest_jpeg() == data and sink.encoded_frames == 1


@pytest.mark.parametrize(("cls", "kwargs", "match"), [
    (MJPEGSink, {"quality": 0}, "quality expected"),
    (VideoSink, {"path": "x.mp4", "fps": 0}, "fps expected"),
    (VideoSink, {"path": "x.mp4", "backend": "gst"}, "backend expected"),
])
def test_sink_arguments_are_checked(cls, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_mjpeg_draws_the_results_itself_and_never_asks_the_workers_to() -> None:
    """A stream nobody watches costs nothing: the MJPEG sink does not make the workers annotate
    every frame; the first viewer to ask draws the frame's results, the same drawing as theirs."""
    from aisp.models.annotate import annotate

    assert MJPEGSink.needs_image is False
    image = np.full((120, 160, 3), 40, np.uint8)
    frame = Frame("s", 0, 0.0, 100.0, image, seq=0)
    fake = FakeModel("fake").infer(image)
    assert fake.detections is not None and len(fake.detections) > 0
    sink = MJPEGSink(quality=95)
    sink.write(FrameResult(frame, {"fake": fake}, None))  # what a worker delivers when no sink needs images
    drawn = cv2.imdecode(np.frombuffer(sink.latest_jpeg(), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    expected = annotate(image, [fake])
    assert not np.array_equal(expected, image)  # the fake model's box is drawn
    to_drawing = np.abs(drawn.astype(int) - expected.astype(int)).mean()  # JPEG noise only
    to_raw = np.abs(drawn.astype(int) - image.astype(int)).mean()  # the drawing itself
    assert to_drawing < to_raw / 2, (to_drawing, to_raw)
    sink.close()


def test_a_stream_with_only_its_built_in_sinks_does_not_annotate() -> None:
    from aisp.pipeline.sources import MemorySource
    from aisp.pipeline.stats import StreamMeter
    from aisp.pipeline.stream import Stream, StreamSpec
    from aisp.pipeline.watchdog import Watchdog

    frames = [np.zeros((8, 8, 3), np.uint8)]
    plain = Stream(StreamSpec("a", MemorySource(frames), ["fake"]), MemorySource(frames), [], StreamMeter(),
                   Watchdog(10.0))
    video = Stream(StreamSpec("b", MemorySource(frames), ["fake"]), MemorySource(frames),
                   [ListSink(needs_image=True)], StreamMeter(), Watchdog(10.0))
    assert plain.mjpeg is not None and plain.needs_image is False
    assert video.needs_image is True
