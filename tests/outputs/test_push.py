"""Push to a real receiver on loopback (FFmpeg listening for RTSP or RTMP): frames arrive; the
receiver is killed: while it is away packets are dropped and counted and the stream keeps its
frame rate; it is restarted, and the push reconnects and frames arrive again."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from aisp.netpolicy import redact_url
from aisp.pipeline import Engine, StreamSpec
from aisp.pipeline.video_out import StreamVideo
from aisp.settings import load_settings
from tests.outputs.helpers import CounterSource, read_barcode, wait_until
from tests.outputs.receiver import Receiver, require_ffmpeg
from tests.pipeline.helpers import FakeLoader
from tests.ports import free_port

av = pytest.importorskip("av")

FPS = 30


def _frames(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        return [read_barcode(f.to_ndarray(format="rgb24")) for f in container.decode(stream)]


@pytest.mark.parametrize("scheme", ["rtsp", "rtmp"])
def test_push_reaches_a_receiver_and_reconnects_after_it_restarts(
        scheme: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    require_ffmpeg()
    caplog.set_level(logging.INFO)
    port = free_port()
    first = Receiver(scheme, port, tmp_path / "first.ts")
    second: Receiver | None = None
    settings = load_settings(environ={}, data_dir=tmp_path, push_reconnect_initial_seconds=0.2,
                             push_reconnect_max_seconds=1.0, push_timeout_seconds=3.0)
    engine = Engine(settings, FakeLoader())
    url = first.url.replace("127.0.0.1", "pusher:s3cret@127.0.0.1") if scheme == "rtsp" else first.url
    video = StreamVideo("cam", settings, push=url, push_display=redact_url(url), clock=engine.clock)
    try:
        wait_until(first.listening, 10, message="the receiver to listen")
        spec = StreamSpec("cam", CounterSource(fps=FPS), ["fake"])
        engine.add_stream(spec, sinks=[video.sink()], start=True)
        push = video.push
        assert push is not None
        wait_until(lambda: push.stats().sent >= 60, 20, message="60 packets pushed")
        assert push.stats().connected and push.stats().connects == 1
        first.kill()  # the server goes away mid-stream
        wait_until(lambda: push.stats().failures >= 1, 20, message="the push to notice")
        assert not push.stats().connected
        # the outage: the push thread backs off and retries; what the encoder hands it meanwhile
        # is dropped and counted, and the frame path keeps the source's rate (it never waits)
        stream = engine.get_stream("cam")
        away = push.stats()
        sent_before, dropped_before = away.sent, away.dropped
        frames0, sink0 = stream.stats.snapshot().frames_out, video.output.stats().frames_in
        t0 = time.monotonic()
        wait_until(lambda: push.stats().dropped >= dropped_before + 45, 20,
                   message="1.5 s of packets dropped while the receiver is away")
        elapsed = time.monotonic() - t0
        frames1, sink1 = stream.stats.snapshot().frames_out, video.output.stats().frames_in
        during = push.stats()
        assert not during.connected and during.sent == sent_before  # nothing got through
        assert during.failures >= 2  # the reconnect attempts fail too, with backoff between them
        assert (frames1 - frames0) / elapsed >= 0.8 * FPS, (frames1 - frames0, elapsed)
        assert (sink1 - sink0) / elapsed >= 0.8 * FPS, (sink1 - sink0, elapsed)  # the encode sink too
        second = Receiver(scheme, port, tmp_path / "second.ts")
        wait_until(lambda: push.stats().connects >= 2 and push.stats().sent >= sent_before + 60, 30,
                   message="the push to reconnect and send again")
        video.close()  # a clean end: the receiver sees the end of the stream and closes its file
        assert second.wait(15) == 0
        frames = _frames(tmp_path / "second.ts")
        assert len(frames) >= 30
        # what arrived after the reconnect is the live stream, in order
        assert frames == sorted(frames) and frames[-1] - frames[0] >= len(frames) - 1
        stats = push.stats()
        assert stats.dropped >= during.dropped > 0 and stats.sent > sent_before
        if scheme == "rtsp":
            assert stats.url == f"rtsp://pusher:***@127.0.0.1:{port}/live/cam"
            assert "s3cret" not in caplog.text  # the password never reaches a log line
    finally:
        video.close()
        engine.shutdown(5)
        first.kill()
        if second is not None:
            second.kill()
