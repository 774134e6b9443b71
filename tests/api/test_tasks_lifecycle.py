"""Tasks and streams that end, and their limits (issue 13 items 5, 10, 12, 18).

Real HTTP servers on loopback stand for cameras that misbehave: one that accepts and then drops
every connection, one that stops sending, one that serves a web page. The app allows loopback
through ``source_hosts`` for these tests. Waits are on the runner's own condition or on polled
state with a deadline; servers block on events, nothing sleeps.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.conftest import Harness, assert_error, start_app
from tests.pipeline.helpers import write_video

DEADLINE = 60.0


class Camera:
    """An MJPEG-over-HTTP server on 127.0.0.1 with a chosen misbehaviour.

    ``mode``: ``drop`` sends ``frames`` frames then closes each connection; ``stall`` sends
    ``frames`` frames then waits (no byte) until :meth:`release`; ``html`` serves a web page;
    ``file`` serves ``path`` as a plain download.
    """

    def __init__(self, mode: str, *, frames: int = 2, path: Path | None = None) -> None:
        import cv2

        ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
        assert ok
        self.jpeg = buf.tobytes()
        self.mode, self.frames, self.path = mode, frames, path
        self.connections = 0
        self.released = threading.Event()
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                camera.connections += 1
                camera.serve(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def serve(self, h: http.server.BaseHTTPRequestHandler) -> None:
        if self.mode == "html":
            body = b"<html><body>not a video</body></html>" * 50
            h.send_response(200)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if self.mode == "file":
            assert self.path is not None
            body = self.path.read_bytes()
            h.send_response(200)
            h.send_header("Content-Type", "video/mp4")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        part = (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(self.jpeg)).encode()
                + b"\r\n\r\n" + self.jpeg + b"\r\n")
        h.send_response(200)
        h.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        if self.mode == "drop":  # the connection ends cleanly after the frames: no premature EOF
            h.send_header("Content-Length", str(len(part) * self.frames))
        h.end_headers()
        try:
            for _ in range(self.frames):
                h.wfile.write(part)
                h.wfile.flush()
            if self.mode == "stall":
                self.released.wait(DEADLINE)
        except OSError:  # the client gave up
            pass

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from start_app(
        tmp_path_factory.mktemp("lifecycle"),
        source_hosts=["127.0.0.1"],
        reconnect_initial_delay_seconds=0.01,
        reconnect_max_delay_seconds=0.02,
        reconnect_max_attempts=3,
        stall_timeout_seconds=30.0,
        task_stall_timeout_seconds=2.0,
        task_concurrency=2,
        max_streams=3,
    )


@pytest.fixture
def cameras() -> Iterator[list[Camera]]:
    made: list[Camera] = []
    yield made
    for cam in made:
        cam.close()


def _submit(app: Harness, source: str, **extra: Any) -> str:
    r = app.client.post("/api/tasks", json={"source": source, "models": ["fake"], **extra})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _until(condition: Any, what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling a server thread's counter, with a deadline


def _wait_task(app: Harness, task_id: str, *states: str) -> dict[str, Any]:
    end = time.monotonic() + DEADLINE
    while True:
        body = app.client.get(f"/api/tasks/{task_id}").json()
        if body["state"] in (states or ("completed", "failed", "cancelled")):
            return body
        assert time.monotonic() < end, body
        time.sleep(0.02)  # polling the app's state, with a deadline


# --- item 5 -----------------------------------------------------------------------------------
def test_a_url_that_opens_then_drops_spends_the_reconnect_budget(app: Harness, cameras) -> None:
    cam = Camera("drop", frames=2)
    cameras.append(cam)
    body = _wait_task(app, _submit(app, cam.url, video=False))
    assert body["state"] == "failed" and "gave up after 3 reconnect attempts" in body["error"], body
    assert cam.connections == 4  # the first open and three reconnects, each of which opened
    assert body["frames_done"] >= 2


def test_a_server_that_stops_sending_fails_the_task_as_stalled(app: Harness, cameras) -> None:
    cam = Camera("stall", frames=10)
    cameras.append(cam)
    body = _wait_task(app, _submit(app, cam.url, video=False))
    assert body["state"] == "failed", body
    assert body["error"].startswith("stalled: no new frame for"), body
    assert "task_stall_timeout_seconds=2" in body["error"]


def test_finite_media_over_http_ends_with_every_frame(app: Harness, cameras, tmp_path: Path) -> None:
    cam = Camera("file", path=write_video(tmp_path / "clip.mp4", n=25, faststart=True))
    cameras.append(cam)
    body = _wait_task(app, _submit(app, cam.url))
    assert body["state"] == "completed" and body["frames_done"] == 25, body
    assert cam.connections == 1


def test_one_stuck_task_does_not_hold_the_others(tmp_path: Path, cameras) -> None:
    cam = Camera("stall", frames=10)
    page = Camera("html")
    cameras.extend([cam, page])
    video = write_video(tmp_path / "media.mp4", n=10)
    for harness in start_app(tmp_path / "data", source_hosts=["127.0.0.1"], task_concurrency=2,
                             task_stall_timeout_seconds=600.0, media_dirs=[str(tmp_path)]):
        stuck = _submit(harness, cam.url, video=False)
        _wait_task(harness, stuck, "running")
        _until(lambda: cam.connections == 1, "the stuck task to connect")
        quick = _wait_task(harness, _submit(harness, str(video)))
        assert quick["state"] == "completed" and quick["frames_done"] == 10
        web = _wait_task(harness, _submit(harness, page.url))
        assert web["state"] == "failed" and web["error"].startswith("cannot open the source")
        assert harness.client.get(f"/api/tasks/{stuck}").json()["state"] == "running"
        # deleting the stuck task cancels it, then removes it
        assert harness.client.post(f"/api/tasks/{stuck}/cancel").status_code == 200
        cam.release()
        assert harness.client.delete(f"/api/tasks/{stuck}").status_code == 204
        assert_error(harness.client.get(f"/api/tasks/{stuck}"), 404, "NOT_FOUND")
        assert not harness.ctx.tasks.task_dir(stuck).exists()


# --- item 10 ----------------------------------------------------------------------------------
def test_streams_beyond_max_streams_are_refused_stopped_ones_count(app: Harness) -> None:
    c = app.client
    for i in range(3):
        body = {"id": f"lim{i}", "source": "demo", "models": ["fake"], "start": False}
        r = c.post("/api/streams", json=body)
        assert r.status_code == 201, r.text
    err = assert_error(c.post("/api/streams", json={"id": "lim3", "source": "demo", "models": ["fake"]}),
                       409, "CONFLICT")
    assert "AISP_MAX_STREAMS" in err["message"] and err["details"]["limit"] == 3
    assert c.delete("/api/streams/lim0").status_code == 204
    r = c.post("/api/streams", json={"id": "lim3", "source": "demo", "models": ["fake"], "start": False})
    assert r.status_code == 201, r.text
    for i in (1, 2, 3):
        assert c.delete(f"/api/streams/lim{i}").status_code == 204


# --- item 18 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["..", ".", ".hidden", "a/b", "../x", "x\ny", "x\x00", "-x", "a" * 65, ""])
def test_stream_ids_that_are_not_plain_names_are_refused(app: Harness, bad: str) -> None:
    body = {"id": bad, "source": "demo", "models": ["fake"], "start": False}
    r = app.client.post("/api/streams", json=body)
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert err["details"]["field"] == "id", err


def test_delete_a_task_removes_its_outputs_and_record(app: Harness, tmp_path: Path) -> None:
    c = app.client
    task_id = _submit(app, str(write_video(tmp_path / "v.mp4", n=6)))
    assert _wait_task(app, task_id)["state"] == "completed"
    task_dir = app.ctx.tasks.task_dir(task_id)
    assert (task_dir / "events.jsonl").is_file() and (task_dir / "annotated.mp4").is_file()
    assert_error(c.delete(f"/api/tasks/{task_id}", headers=app.h(app.viewer)), 403, "FORBIDDEN")
    assert c.delete(f"/api/tasks/{task_id}").status_code == 204
    assert not task_dir.exists()
    assert_error(c.get(f"/api/tasks/{task_id}"), 404, "NOT_FOUND")
    assert_error(c.delete(f"/api/tasks/{task_id}"), 404, "NOT_FOUND")
    assert_error(c.delete("/api/tasks/..%2F..%2Fetc"), 404, "NOT_FOUND")


def test_retention_removes_finished_tasks_older_than_task_retention_days(app: Harness, tmp_path: Path
                                                                        ) -> None:
    runner, store = app.ctx.tasks, app.ctx.store
    old = _submit(app, str(write_video(tmp_path / "old.mp4", n=3)))
    assert _wait_task(app, old)["state"] == "completed"
    kept = store.tasks.create(source="x.mp4", models=["fake"], params={})
    store.tasks.update(kept.id, state="interrupted")  # resumable: kept whatever its age
    assert store.retention is not None and "tasks" in store.retention._jobs  # swept with the events
    now = time.time()
    assert runner.sweep(now) == 0  # nothing is 30 days old yet
    finished = [t.id for t in store.tasks.list(limit=1000) if t.state in ("completed", "failed", "cancelled")]
    assert old in finished and kept.id not in finished
    assert runner.sweep(now + 31 * 86400.0) == len(finished)
    assert store.tasks.find(old) is None and not runner.task_dir(old).exists()
    assert store.tasks.find(kept.id) is not None


# --- item 12 ----------------------------------------------------------------------------------
def test_a_folder_of_mixed_size_images_makes_one_video_of_the_first_size(app: Harness, tmp_path: Path
                                                                         ) -> None:
    import av
    import cv2

    folder = tmp_path / "mixed"
    folder.mkdir()
    sizes = [(64, 48), (100, 30), (31, 77), (64, 48), (640, 480)]
    for i, (w, h) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{i:02d}.png"), np.full((h, w, 3), 40 * i, np.uint8))
    task_id = _submit(app, str(folder), video=True)
    body = _wait_task(app, task_id)
    assert body["state"] == "completed" and body["frames_done"] == len(sizes), body
    events = app.client.get(f"/api/tasks/{task_id}/events").text.splitlines()
    import json

    assert [(json.loads(e)["width"], json.loads(e)["height"]) for e in events] == sizes  # events: own size
    with av.open(str(app.ctx.tasks.task_dir(task_id) / "annotated.mp4")) as container:
        shapes = {(f.width, f.height) for f in container.decode(video=0)}
        assert shapes == {(64, 48)}
