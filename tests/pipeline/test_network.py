"""Network sources against real servers on 127.0.0.1: RTSP (GStreamer's RTSP server) and HTTP
MJPEG (ffmpeg). Kill the server mid-stream: the stream goes `reconnecting`, then `running` again
when the server is back."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from aisp.pipeline import CallbackSink, Engine, StreamSpec, UrlSource
from aisp.settings import load_settings
from tests.conftest import require_service
from tests.ports import free_port

TIMEOUT = 60
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")



def gst_rtsp_available() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
             "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
             "assert all(Gst.ElementFactory.find(e) for e in ('videotestsrc', 'jpegenc', 'rtpjpegpay'))")
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=60).returncode == 0


class FrameCounter:
    """A sink callback; ``wait_for(n)`` blocks until n frames arrived (no sleeping)."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self, result) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = TIMEOUT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, timeout)


def network_settings(tmp_path):
    return load_settings(environ={}, data_dir=tmp_path, stall_timeout_seconds=5,
                         reconnect_initial_delay_seconds=0.05, reconnect_max_delay_seconds=0.5,
                         reconnect_max_attempts=200)


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(TIMEOUT)


def check_reconnects(tmp_path, url: str, start_server, loader) -> None:
    engine = Engine(network_settings(tmp_path), loader=loader, monitor_interval=None)
    counter = FrameCounter()
    server = start_server()
    try:
        stream = engine.add_stream(StreamSpec("net", UrlSource(url, read_timeout=5), ["fake"]),
                                   [CallbackSink(counter)], start=True)
        assert counter.wait_for(5), f"no frames from {url}: {stream.state} {stream.last_error}"
        assert stream.state == "running"
        kill(server)  # the server dies mid-stream
        assert stream.wait_for_state("reconnecting", timeout=TIMEOUT), stream.state
        seen = counter.count
        server = start_server()
        assert stream.wait_for_state("running", timeout=TIMEOUT), (stream.state, stream.last_error)
        assert counter.wait_for(seen + 5)  # frames flow again
        assert stream.reconnects >= 1 and stream.last_error
        snap = stream.snapshot()
        assert snap["state"] == "running" and snap["stats"]["frames_out"] >= seen + 5
    finally:
        assert engine.shutdown(TIMEOUT)
        kill(server)
    assert stream.state == "stopped"


@pytest.mark.rtsp
def test_rtsp_source_reconnects_when_the_server_returns(tmp_path, loader) -> None:
    require_service(gst_rtsp_available(), "GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0, "
                                          "gstreamer1.0-plugins-good) is not installed")
    port = free_port()

    def start():
        proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), str(port)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        line = proc.stdout.readline()  # blocks until the server listens (or dies)
        assert line.strip() == "READY", f"RTSP server did not start: {line!r}"
        return proc

    check_reconnects(tmp_path, f"rtsp://127.0.0.1:{port}/test", start, loader)


def test_http_mjpeg_source_reconnects_when_the_server_returns(tmp_path, loader) -> None:
    ffmpeg = shutil.which("ffmpeg")
    require_service(ffmpeg is not None, "ffmpeg is not installed")
    port = free_port()

    def start():
        # ffmpeg serves one client at a time; the engine retries until it listens
        return subprocess.Popen(
            [ffmpeg, "-hide_banner", "-loglevel", "quiet", "-re", "-f", "lavfi",
             "-i", "testsrc=size=160x120:rate=15", "-f", "mpjpeg", "-listen", "1",
             f"http://127.0.0.1:{port}/stream.mjpg"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    check_reconnects(tmp_path, f"http://127.0.0.1:{port}/stream.mjpg", start, loader)




def test_hls_over_http_is_read_completely(tmp_path, loader, settings) -> None:
    """An HLS playlist (written by PyAV) served by a local HTTP server, read as a finite stream."""
    import functools
    import http.server

    import av
    import numpy as np

    from aisp.pipeline import ListSink, run_job

    hls_dir = tmp_path / "hls"
    hls_dir.mkdir()
    with av.open(str(hls_dir / "index.m3u8"), "w", format="hls", options={"hls_time": "1"}) as container:
        stream = container.add_stream("libx264", rate=15, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output clean
            pass

    handler = functools.partial(Quiet, directory=str(hls_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.m3u8"
        sink = ListSink()
        summary = run_job(url, "fake", live=False, sinks=[sink], loader=loader, settings=settings)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)
    assert summary.ok and summary.frames == 30
    assert [r.frame.index for r in sink.results] == list(range(30))
    assert [round(float(r.frame.image.mean()) / 8) for r in sink.results] == list(range(30))
