"""The encoder and HLS on a real running stream (a paced live source, the fake model), read back
with PyAV: segments decode, carry consecutive source frames, and HLS stops when idle."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator

import pytest

from aisp.pipeline import Engine, StreamSpec
from aisp.pipeline.encode import EncodedPacket, EncoderOptions, VideoFormat, VideoOutput
from aisp.pipeline.video_out import StreamVideo
from aisp.settings import load_settings
from tests.outputs.helpers import CounterSource, barcode_image, read_barcode, wait_until
from tests.pipeline.helpers import FakeLoader

av = pytest.importorskip("av")


@pytest.fixture
def running(tmp_path) -> Iterator[tuple[Engine, StreamVideo, CounterSource]]:
    settings = load_settings(environ={}, data_dir=tmp_path, hls_idle_timeout_seconds=30.0)
    engine = Engine(settings, FakeLoader())
    video = StreamVideo("cam", settings, hls=True, clock=engine.clock)
    source = CounterSource(fps=30)
    engine.add_stream(StreamSpec("cam", source, ["fake"]), sinks=[video.sink()], start=True)
    try:
        yield engine, video, source
    finally:
        engine.shutdown(5)
        video.close()


def _decode(data: bytes) -> list:
    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_hls_segments_decode_to_consecutive_frames(running) -> None:
    _engine, video, _source = running
    assert not video.output.active  # nobody watches: no encoder
    video.hls.touch()
    wait_until(lambda: video.segmenter.stats()["segments"] >= 4, 15, message="4 HLS segments")
    playlist = video.segmenter.playlist(lambda n: f"seg-{n}.ts")
    lines = playlist.splitlines()
    assert lines[0] == "#EXTM3U" and "#EXT-X-TARGETDURATION:1" in lines
    uris = [line for line in lines if line.startswith("seg-")]
    durations = [float(line.split(":")[1].rstrip(",")) for line in lines if line.startswith("#EXTINF")]
    assert len(uris) >= 4 and all(0.8 <= d <= 1.2 for d in durations), durations
    indices: list[int] = []
    for uri in uris[1:4]:  # the first one may miss frames dropped while the encoder opened
        seg = video.segmenter.segment(int(uri[4:-3]))
        frames = _decode(seg.data)
        assert frames[0].shape == (240, 320, 3)
        assert 24 <= len(frames) <= 36  # ~1 s at 30 FPS
        indices += [read_barcode(f) for f in frames]
    # three segments in a row hold consecutive source frames: nothing lost between segments
    assert indices == list(range(indices[0], indices[0] + len(indices)))
    stats = video.stats()
    assert stats["encoder"]["width"] == 320 and stats["encoder"]["frames_encoded"] >= len(indices)


def test_hls_stops_when_idle_and_restarts_on_request(tmp_path) -> None:
    now = [1000.0]
    settings = load_settings(environ={}, data_dir=tmp_path, hls_idle_timeout_seconds=5.0)
    engine = Engine(settings, FakeLoader())
    video = StreamVideo("cam", settings, hls=True, clock=lambda: now[0])
    engine.add_stream(StreamSpec("cam", CounterSource(fps=30), ["fake"]), sinks=[video.sink()], start=True)
    try:
        video.hls.touch()
        assert video.segmenter.wait_ready(10)
        now[0] += 4.0  # within the timeout: still running
        wait_until(lambda: video.output.stats().frames_encoded > 40, 10, message="more frames")
        assert video.hls.running
        now[0] += 2.0  # 6 s after the last request
        wait_until(lambda: not video.output.active, 5, message="HLS to stop when idle")
        assert video.hls.idle_stops == 1
        encoded = video.output.stats().frames_encoded
        threading.Event().wait(0.3)  # frames keep coming (10 of them) but nothing is encoded
        assert video.output.stats().frames_encoded == encoded
        video.hls.touch()  # a viewer comes back
        assert video.segmenter.wait_ready(10) and video.hls.starts == 2
    finally:
        engine.shutdown(5)
        video.close()


class _Blocking:
    """A consumer that blocks the encoder until released (an encoder that lags)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.packets: list[EncodedPacket] = []

    def on_start(self, fmt: VideoFormat) -> None:
        pass

    def on_packet(self, packet: EncodedPacket) -> None:
        self.entered.set()
        self.release.wait(10)
        self.packets.append(packet)

    def on_stop(self) -> None:
        self.release.set()


def test_a_lagging_encoder_drops_frames_and_never_blocks_the_sink() -> None:
    output = VideoOutput("cam", EncoderOptions(), queue_frames=2)
    consumer = _Blocking()
    image = barcode_image(0)
    try:
        assert not output.submit(image, 0.0, 0)  # no consumer: refused, nothing queued
        output.attach("slow", consumer)
        output.submit(image, 0.0, 0)
        assert consumer.entered.wait(10)  # the encoder is stuck in the consumer
        for i in range(1, 21):
            assert output.submit(barcode_image(i), i / 30, i)  # returns at once every time
        stats = output.stats()
        assert stats.frames_in == 21 and stats.frames_dropped == 18  # the queue keeps the 2 newest
        consumer.release.set()
        wait_until(lambda: len(consumer.packets) == 3, 10, message="the queued frames")
        assert [p.index for p in consumer.packets] == [0, 19, 20]
    finally:
        output.close()
