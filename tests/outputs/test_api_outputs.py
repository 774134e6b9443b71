"""Video out through the real server (uvicorn on loopback, auth on): HLS read back by ffprobe and
PyAV, the start/stop route and its roles, hostile output/record input, the event clip route."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from tests.outputs.helpers import wait_until
from tests.outputs.live_app import LiveApp, live_app
from tests.outputs.receiver import require_ffmpeg
from tests.ports import free_port

httpx = pytest.importorskip("httpx")
av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with live_app(tmp_path_factory.mktemp("outputs"), source_hosts="127.0.0.1") as app:
        yield app


def _client(srv: LiveApp, key: str | None) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"X-API-Key": key} if key else {}, timeout=30)


def _error(r: httpx.Response, status: int, name: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["name"] == name, err
    return err


def test_hls_plays_in_ffprobe_and_pyav(srv: LiveApp) -> None:
    require_ffmpeg()
    admin, viewer = _client(srv, srv.admin), _client(srv, srv.viewer)
    r = admin.post("/api/streams", json={"id": "hls1", "source": "demo:live", "models": ["fake"],
                                         "output": {"hls": True}})
    assert r.status_code == 201, r.text
    assert r.json()["output"] == {"hls": True, "push": None}
    base = "/api/streams/hls1/hls"
    _error(_client(srv, None).get(f"{base}/index.m3u8"), 401, "UNAUTHORIZED")
    # never a key in a URL: ?key= is not accepted here
    _error(_client(srv, None).get(f"{base}/index.m3u8?key={srv.viewer}"), 401, "UNAUTHORIZED")
    r = viewer.get(f"{base}/index.m3u8")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    segments = [line for line in r.text.splitlines() if line and not line.startswith("#")]
    assert segments and all(s.startswith("seg-") and s.endswith(".ts") for s in segments)
    seg = viewer.get(f"{base}/{segments[-1]}")
    assert seg.status_code == 200 and seg.headers["content-type"] == "video/mp2t"
    with av.open(io.BytesIO(seg.content)) as container:
        frames = list(container.decode(video=0))
    assert frames and (frames[0].width, frames[0].height) == (640, 480)
    # ffprobe reads the live playlist over HTTP with the key in a header, never in the URL
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-headers", f"X-API-Key: {srv.viewer}\r\n", "-count_frames",
         "-read_intervals", "%+3",
         "-show_entries", "stream=codec_name,width,height,avg_frame_rate,r_frame_rate",
         "-of", "json", f"{srv.url}{base}/index.m3u8"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    stream = json.loads(out.stdout)["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 640, 480)
    rate = float(Fraction(stream["avg_frame_rate"]) or Fraction(stream["r_frame_rate"]))
    assert 25 <= rate <= 32, stream  # the demo source's 30 FPS
    assert _error(viewer.get(f"{base}/seg-999999.ts"), 404, "NOT_FOUND")
    video = admin.get("/api/streams/hls1").json()["video"]
    assert video["hls"]["running"] and video["encoder"]["frames_encoded"] > 0
    assert admin.delete("/api/streams/hls1").status_code == 204


def test_hls_is_started_and_stopped_by_an_admin(srv: LiveApp) -> None:
    admin, viewer = _client(srv, srv.admin), _client(srv, srv.viewer)
    assert admin.post("/api/streams", json={"id": "plain", "source": "demo:live", "models": ["fake"]}
                      ).status_code == 201
    try:
        err = _error(viewer.get("/api/streams/plain/hls/index.m3u8"), 404, "NOT_FOUND")
        assert "output.hls" in err["message"]
        _error(viewer.post("/api/streams/plain/hls/start"), 403, "FORBIDDEN")
        r = admin.post("/api/streams/plain/hls/start")
        assert r.status_code == 200 and r.json()["output"]["hls"] is True
        assert srv.ctx.store.streams.get("plain").spec["output"]["hls"] is True  # saved
        assert viewer.get("/api/streams/plain/hls/index.m3u8").status_code == 200
        r = admin.post("/api/streams/plain/hls/stop")
        assert r.status_code == 200 and r.json()["video"]["hls"]["running"] is False
        _error(viewer.get("/api/streams/plain/hls/index.m3u8"), 404, "NOT_FOUND")
        _error(admin.post("/api/streams/nope/hls/start"), 404, "NOT_FOUND")
    finally:
        admin.delete("/api/streams/plain")


@pytest.mark.parametrize(("body", "status", "name", "field"), [
    ({"output": {"push": "http://127.0.0.1:9/x"}}, 403, "SOURCE_NOT_ALLOWED", None),
    ({"output": {"push": "file:///etc/passwd"}}, 403, "SOURCE_NOT_ALLOWED", None),
    ({"output": {"push": "rtsp://10.0.0.1/x"}}, 403, "SOURCE_NOT_ALLOWED", None),  # not in source_hosts
    ({"output": {"push": "rtmp://"}}, 400, "VALIDATION_ERROR", "output.push"),
    ({"output": {"hls": "yes"}}, 400, "VALIDATION_ERROR", "output.hls"),
    ({"output": {"hls": True, "color": 1}}, 400, "VALIDATION_ERROR", "output.color"),
    ({"output": {"push": "x" * 3000}}, 400, "VALIDATION_ERROR", "output.push"),
    ({"record": {"types": ["explode"]}}, 400, "VALIDATION_ERROR", "record.types"),
    ({"record": {"pre_seconds": 1000}}, 400, "VALIDATION_ERROR", "record.pre_seconds"),
])
def test_hostile_output_and_record_are_refused(srv: LiveApp, body: dict, status: int, name: str,
                                               field: str | None) -> None:
    admin = _client(srv, srv.admin)
    r = admin.post("/api/streams", json={"id": "bad", "source": "demo:live", "models": ["fake"], **body})
    try:
        err = _error(r, status, name)
        if field:
            assert err["details"].get("field") == field, err
        assert admin.get("/api/streams/bad").status_code == 404  # nothing was created
    finally:
        admin.delete("/api/streams/bad")


def test_a_stream_that_cannot_be_added_leaves_no_video_output(srv: LiveApp) -> None:
    from aisp.api.video_outputs import VideoOutputs

    admin = _client(srv, srv.admin)
    r = admin.post("/api/streams", json={"id": "ghost", "source": "missing.mp4", "models": ["fake"],
                                         "output": {"hls": True}, "record": {}})
    assert r.status_code >= 400, r.text
    assert VideoOutputs.of(srv.ctx).find("ghost") is None  # no encoder thread left behind


def test_push_password_is_hidden_everywhere(srv: LiveApp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = _client(srv, srv.admin)
    port = free_port()  # nothing listens: the push keeps retrying, with backoff
    r = admin.post("/api/streams", json={"id": "pushy", "source": "demo:live", "models": ["fake"],
                                         "output": {"push": f"rtsp://cam:hunter2@127.0.0.1:{port}/live"}})
    try:
        assert r.status_code == 201, r.text
        assert r.json()["output"]["push"] == f"rtsp://cam:***@127.0.0.1:{port}/live"
        wait_until(lambda: admin.get("/api/streams/pushy").json()["video"]["push"]["failures"] >= 1, 30,
                   message="a failed push attempt")
        listed = admin.get("/api/streams").text
        assert "hunter2" not in listed and "hunter2" not in admin.get("/api/streams/pushy").text
        assert "hunter2" not in caplog.text
    finally:
        admin.delete("/api/streams/pushy")


def test_event_clip_route(srv: LiveApp) -> None:
    from aisp.events import Event

    admin, viewer = _client(srv, srv.admin), _client(srv, srv.viewer)
    r = admin.post("/api/streams", json={"id": "rec", "source": "demo:live", "models": ["fake"],
                                         "record": {"labels": ["person"], "pre_seconds": 1,
                                                    "post_seconds": 1}})
    assert r.status_code == 201, r.text
    assert r.json()["record"]["types"] and r.json()["record"]["pre_seconds"] == 1
    try:
        wait_until(lambda: admin.get("/api/streams/rec").json()["video"]["clips"]["ring_seconds"] >= 1.5, 30,
                   message="pre-roll in the ring")
        engine = srv.ctx.engine
        event = Event(type="appeared", stream_id="rec", time=0.0, captured_at=engine.clock(), label="person")
        srv.ctx.runtime.events.publish(event)
        statuses: list[int] = []

        def ready() -> bool:
            statuses.append(viewer.get(f"/api/events/{event.id}/clip").status_code)
            return statuses[-1] == 200

        wait_until(ready, 30, interval=0.2, message="the clip")
        assert set(statuses) <= {404, 409, 200}  # 404 until the bus delivered it, 409 while recording
        clip = viewer.get(f"/api/events/{event.id}/clip")
        assert clip.headers["content-type"] == "video/mp4"
        part = viewer.get(f"/api/events/{event.id}/clip", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100  # seekable in a <video>
        path = Path(srv.ctx.settings.resolved_clip_dir) / "check.mp4"
        path.write_bytes(clip.content)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            n = sum(1 for _ in container.decode(stream))
            duration = float(stream.duration * stream.time_base)
        assert abs(duration - 2.0) <= 0.5 and abs(n - 60) <= 10, (duration, n)
        _error(viewer.get("/api/events/0123456789abcdef01234567ab/clip"), 404, "NOT_FOUND")
        _error(viewer.get("/api/events/..%2F..%2Fetc/clip"), 404, "NOT_FOUND")  # never a path
        _error(viewer.get("/api/events/bad$id*/clip"), 400, "VALIDATION_ERROR")
        _error(_client(srv, None).get(f"/api/events/{event.id}/clip"), 401, "UNAUTHORIZED")
    finally:
        admin.delete("/api/streams/rec")
