"""``PolicySource``: API sources open under the policy, with safe FFmpeg options, generic errors.

The tricks are real: an HTTP server on loopback serves playlists, concat scripts and redirects,
and the media dir holds playlists that name files and URLs outside it. Each must fail to give a
frame; the error the caller sees is the same one text whatever the reason.
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aisp.errors import SourceError, SourceNotAllowedError
from aisp.netpolicy import SourcePolicy
from aisp.pipeline.decode import PROTOCOL_WHITELISTS, safe_options
from aisp.pipeline.policy_source import OPEN_FAILED, PolicySource
from tests.pipeline.helpers import write_video

pytest.importorskip("av")


class _Handler(http.server.SimpleHTTPRequestHandler):
    redirect_to = ""

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path/www``: (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = type("H", (_Handler,), {"__init__": lambda self, *a, **k: _Handler.__init__(
        self, *a, directory=str(root), **k)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _policy(tmp_path: Path, hosts: tuple[str, ...] = ("127.0.0.1",), resolver=None) -> SourcePolicy:
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    return SourcePolicy(media_dirs=[media], schemes=("http", "https", "rtsp"), hosts=hosts, resolver=resolver)


def _ts_segment(path: Path, n: int = 5) -> Path:
    import av

    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("mpeg2video", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _playlist(path: Path, *segments: str) -> Path:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1"]
    for seg in segments:
        lines += ["#EXTINF:1.0,", seg]
    path.write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    return path


def _frames(src: PolicySource) -> int:
    src.open()
    try:
        return sum(1 for _ in src)
    finally:
        src.close()


def _refused(src: PolicySource) -> str:
    with pytest.raises(SourceError) as info:
        _frames(src)
    return info.value.message


def test_safe_options_whitelist_protocols_per_scheme_and_follow_no_redirect() -> None:
    assert safe_options("/media/clip.mp4") == {"protocol_whitelist": "file"}
    http_opts = safe_options("http://cam.lan/video.mjpg")
    assert http_opts["protocol_whitelist"] == PROTOCOL_WHITELISTS["http"]
    assert http_opts["max_redirects"] == "0"
    assert "file" not in http_opts["protocol_whitelist"].split(",")
    assert safe_options("rtsp://cam.lan/live")["rtsp_transport"] == "tcp"
    for scheme in ("tcp", "udp", "concat", "pipe", "data", "file"):
        with pytest.raises(SourceError):
            safe_options(f"{scheme}://x/y")


def test_a_file_in_the_media_dir_plays_and_the_decoder_got_the_whitelist(tmp_path: Path) -> None:
    p = _policy(tmp_path)
    write_video(tmp_path / "media" / "clip.mp4", n=12)
    src = PolicySource("clip.mp4", p)
    assert not src.live and _frames(src) == 12
    src.open()
    try:
        assert src._inner._decoder.options == {"protocol_whitelist": "file"}  # type: ignore[union-attr]
    finally:
        src.close()


def test_an_http_url_of_finite_media_is_finite_for_tasks_and_live_for_streams(tmp_path: Path, web) -> None:
    base, root = web
    write_video(root / "clip.mp4", n=10, faststart=True)
    task_src = PolicySource(f"{base}/clip.mp4", _policy(tmp_path), finite_ends=True)
    assert _frames(task_src) == 10 and task_src.live is False
    assert PolicySource(f"{base}/clip.mp4", _policy(tmp_path)).live is True


def test_playlist_and_concat_tricks_inside_allowed_sources_give_no_frame(tmp_path: Path, web) -> None:
    base, root = web
    p = _policy(tmp_path)
    media = tmp_path / "media"
    secret = _ts_segment(tmp_path / "outside.ts")  # a video outside every media dir
    _ts_segment(root / "seg.ts")
    # an allowed HTTP source whose playlist names a local file, or a concat: of local files
    _playlist(root / "file.m3u8", f"file:{secret}")
    _playlist(root / "concat.m3u8", f"concat:{secret}|{secret}")
    (root / "list.ffconcat").write_text(f"ffconcat version 1.0\nfile 'file:{secret}'\n")
    # files in the media dir that name other files or URLs
    _playlist(media / "local.m3u8", str(secret))
    _playlist(media / "net.m3u8", f"{base}/seg.ts")
    (media / "abs.ffconcat").write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
    texts = set()
    for spec in (f"{base}/file.m3u8", f"{base}/concat.m3u8", f"{base}/list.ffconcat", "local.m3u8",
                 "net.m3u8", "abs.ffconcat"):
        texts.add(_refused(PolicySource(spec, p, live=False)))
    assert texts == {OPEN_FAILED}
    # the same server plays an honest playlist: what failed above was the trick, not HLS
    _playlist(root / "ok.m3u8", "seg.ts")
    assert _frames(PolicySource(f"{base}/ok.m3u8", p, live=False)) == 5


def test_a_redirect_is_not_followed(tmp_path: Path, web) -> None:
    base, root = web
    write_video(root / "clip.mp4", n=5, faststart=True)
    _Handler.redirect_to = f"{base}/clip.mp4"
    try:
        assert _refused(PolicySource(f"{base}/redirect", _policy(tmp_path), live=False)) == OPEN_FAILED
    finally:
        _Handler.redirect_to = ""


def test_open_failures_all_read_the_same(tmp_path: Path) -> None:
    p = _policy(tmp_path)
    media = tmp_path / "media"
    (media / "notvideo.mp4").write_bytes(os.urandom(4096))
    (media / "empty").mkdir()
    texts = {_refused(PolicySource(spec, p, live=False))
             for spec in ("missing.mp4", "notvideo.mp4", "empty", "http://127.0.0.1:9/closed.mjpg")}
    assert texts == {OPEN_FAILED}


def test_folders_and_globs_keep_only_images_inside_the_media_dirs(tmp_path: Path) -> None:
    import cv2

    p = _policy(tmp_path)
    media = tmp_path / "media"
    (media / "imgs").mkdir()
    for i in range(3):
        cv2.imwrite(str(media / "imgs" / f"{i}.png"), np.full((8, 8, 3), i, np.uint8))
    outside = tmp_path / "secret.png"
    cv2.imwrite(str(outside), np.zeros((8, 8, 3), np.uint8))
    os.symlink(outside, media / "imgs" / "9.png")  # a link out of the media dir
    assert _frames(PolicySource("imgs", p)) == 3
    assert _frames(PolicySource("imgs/*.png", p)) == 3
    with pytest.raises(SourceNotAllowedError):
        PolicySource(str(tmp_path / "*.png"), p)


def test_every_reconnect_checks_the_host_again_dns_rebinding(tmp_path: Path, web) -> None:
    base, root = web
    write_video(root / "clip.mp4", n=4, faststart=True)
    port = base.rsplit(":", 1)[1]
    answers = {"cam.example": ["203.0.113.7"]}
    p = _policy(tmp_path, hosts=(), resolver=lambda host: answers.get(host, []))
    src = PolicySource(f"http://cam.example:{port}/clip.mp4", p)  # public address: allowed
    answers["cam.example"] = ["127.0.0.1"]  # the name now points at the server itself
    with pytest.raises(SourceNotAllowedError) as info:
        src.open()
    assert info.value.setting == "AISP_SOURCE_HOSTS"


def test_rtsp_plays_under_its_whitelist(tmp_path: Path) -> None:
    """The RTSP whitelist is enough for a real RTSP server (TCP transport)."""
    import subprocess

    from tests.conftest import require_service
    from tests.pipeline.test_network import RTSP_SERVER, SYSTEM_PYTHON, gst_rtsp_available, kill
    from tests.ports import free_port

    require_service(gst_rtsp_available(), "GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0, "
                                          "gstreamer1.0-plugins-good) is not installed")
    port = free_port()
    server = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "READY"
        src = PolicySource(f"rtsp://127.0.0.1:{port}/test", _policy(tmp_path), read_timeout=10)
        src.open()
        try:
            options = src._inner._decoder.options  # type: ignore[union-attr]
            assert options["protocol_whitelist"] == PROTOCOL_WHITELISTS["rtsp"]
            frames = [src.read() for _ in range(3)]
            assert all(f is not None and f.image.shape == (240, 320, 3) for f in frames)
        finally:
            src.close()
    finally:
        kill(server)


# --- the CPU plan's codec threads reach the decoder -------------------------------------------
def _engine(tmp_path: Path):
    from aisp.cpu_budget import plan_cpu
    from aisp.pipeline import Engine
    from aisp.settings import load_settings
    from tests.pipeline.helpers import FakeLoader

    settings = load_settings(environ={}, data_dir=tmp_path / "data")
    # 2 cores, one reader: 3 codec threads, not FFmpeg's own choice (thread_count 0)
    return Engine(settings, FakeLoader(), plan=plan_cpu(2), monitor_interval=None)


def test_a_file_opened_by_the_engine_decodes_with_the_plans_threads(tmp_path: Path) -> None:
    from aisp.pipeline import CallbackSink, StreamSpec

    policy = _policy(tmp_path)
    video = write_video(tmp_path / "media" / "clip.mp4", n=6)
    src = PolicySource(str(video), policy)
    engine = _engine(tmp_path)
    try:
        seen: list[int] = []
        stream = engine.add_stream(StreamSpec("file", src, ["fake"]), [CallbackSink(lambda r: seen.append(
            r.frame.index))])
        decoder = src._inner._decoder  # type: ignore[union-attr] - opened by add_stream
        assert src.decode_threads == 3 and decoder.name == "pyav" and decoder.threads == 3
        assert decoder._container.streams.video[0].thread_count == 3  # what FFmpeg was told
        engine.start_stream("file")
        assert stream.wait(30) and stream.state == "stopped" and seen == list(range(6))
    finally:
        engine.shutdown(10)


def test_a_url_opened_by_the_reader_decodes_with_the_plans_threads(
        tmp_path: Path, web: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A live URL is opened on the reader thread, by ``PolicySource.open``: the inner source it
    builds gets the threads too (spied on PyAV's decoder, as the source is gone once it ends)."""
    import threading

    from aisp.pipeline import CallbackSink, StreamSpec
    from aisp.pipeline.decode import PyAVDecoder

    base, root = web
    write_video(root / "clip.mp4", n=6)
    opened: list[tuple[int, int]] = []
    real_open = PyAVDecoder.open

    def spy(self: PyAVDecoder) -> None:
        real_open(self)
        opened.append((self.threads, self._container.streams.video[0].thread_count))

    monkeypatch.setattr(PyAVDecoder, "open", spy)
    src = PolicySource(f"{base}/clip.mp4", _policy(tmp_path))
    assert src.live
    engine = _engine(tmp_path)
    try:
        got = threading.Event()
        engine.add_stream(StreamSpec("url", src, ["fake"]), [CallbackSink(lambda r: got.set())], start=True)
        assert got.wait(30)
        assert opened and opened[0] == (3, 3)
    finally:
        engine.shutdown(10)
