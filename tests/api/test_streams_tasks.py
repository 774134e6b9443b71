"""Streams (CRUD, start/stop, WebSocket, persistence) and tasks (run, cancel, resume, downloads)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Harness, assert_error, start_app


def make_video(path: Path, frames: int = 30, size: tuple[int, int] = (96, 64)) -> Path:
    import cv2
    import numpy as np

    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    assert writer.isOpened()
    for i in range(frames):
        img = np.full((h, w, 3), (i * 8) % 255, np.uint8)
        cv2.putText(img, str(i), (5, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
        writer.write(img)
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "clip.mp4")


class _Gate:
    def __init__(self, at_call: int) -> None:
        self.at_call = at_call
        self.calls = 0
        self.lock = threading.Lock()
        self.reached = threading.Event()
        self.release = threading.Event()


def _register_gated(name: str, gate: _Gate) -> None:
    from aisp.models import FakeModel, register_model

    class Gated(FakeModel):
        def _predict(self, frame: Any) -> dict[str, Any]:
            with gate.lock:
                gate.calls += 1
                block = gate.calls == gate.at_call
            if block:
                gate.reached.set()
                assert gate.release.wait(30)
            return super()._predict(frame)

    register_model(name, lambda: Gated(name), backend="fake")


# --- streams ------------------------------------------------------------------------------
def test_stream_lifecycle_and_websocket(api: Harness) -> None:
    c = api.client
    r = c.post("/api/streams", json={"id": "cam1", "source": "demo:live", "models": ["fake"], "max_fps": 30})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "cam1" and r.json()["models"] == ["fake"]
    assert_error(
        c.post("/api/streams", json={"id": "cam1", "source": "demo:live", "models": ["fake"]}),
        409,
        "CONFLICT",
    )
    with c.websocket_connect("/ws/streams/cam1", headers=api.h(api.viewer)) as ws:
        first = json.loads(ws.receive_text())
        second = json.loads(ws.receive_text())
    assert first["type"] == "result" and first["stream"] == "cam1" and "fake" in first["results"]
    assert second["seq"] > first["seq"] and second["index"] > first["index"]
    assert any(s["id"] == "cam1" for s in c.get("/api/streams", headers=api.h(api.viewer)).json()["streams"])
    assert c.get("/api/streams/cam1").json()["stats"]["frames_in"] > 0
    # persisted with its desired state
    assert api.ctx.store.streams.get("cam1").desired_state == "running"
    r = c.post("/api/streams/cam1/stop")
    assert r.json()["state"] == "stopped"
    assert api.ctx.store.streams.get("cam1").desired_state == "stopped"
    r = c.post("/api/streams/cam1/start")
    assert r.status_code == 200 and r.json()["state"] in ("starting", "running")
    with c.websocket_connect("/ws/streams/cam1", headers={"X-API-Key": api.admin}) as ws:
        assert json.loads(ws.receive_text())["type"] == "result"  # the rebuilt stream delivers again
    metrics = c.get("/metrics").text
    assert 'aisp_stream_processed_fps{stream="cam1"}' in metrics
    assert 'aisp_inference_seconds_count{model="fake",origin="stream"}' in metrics
    assert c.delete("/api/streams/cam1").status_code == 204
    assert_error(c.get("/api/streams/cam1"), 404, "NOT_FOUND")
    assert_error(c.post("/api/streams/cam1/start"), 404, "NOT_FOUND")
    from aisp.errors import NotFoundError

    with pytest.raises(NotFoundError):
        api.ctx.store.streams.get("cam1")


def test_stream_bad_input(api: Harness) -> None:
    c = api.client
    assert_error(c.post("/api/streams", json={"source": "demo:live", "models": ["nope"]}), 404, "NOT_FOUND")
    assert_error(c.post("/api/streams", json={"source": "demo", "models": []}), 400, "VALIDATION_ERROR")
    missing = str(api.settings.data_dir.parent / "no-such-file.mp4")  # inside the media dir
    r = c.post("/api/streams", json={"source": missing, "models": ["fake"]})
    err = assert_error(r, 422, "SOURCE_ERROR")
    assert "no-such" not in err["message"] and "not found" not in err["message"]  # one text for all
    assert_error(
        c.post("/api/streams", json={"source": "/no/such/file.mp4", "models": ["fake"]}),
        403,
        "SOURCE_NOT_ALLOWED",
    )
    assert_error(
        c.post("/api/streams", json={"id": "bad id!", "source": "demo", "models": ["fake"]}),
        400,
        "VALIDATION_ERROR",
    )
    assert_error(c.delete("/api/streams/ghost"), 404, "NOT_FOUND")
    assert_error(
        c.post("/api/streams", json={"source": "demo", "models": ["fake"]}, headers=api.h(api.viewer)),
        403,
        "FORBIDDEN",
    )


def test_websocket_errors(api: Harness) -> None:
    from starlette.websockets import WebSocketDisconnect

    for url, key, code in (
        ("/ws/streams/ghost", api.admin, 4404),
        ("/ws/streams/ghost", "", 4401),
        ("/ws/streams/ghost", "wrong", 4401),
        ("/ws/streams/ghost?key=" + api.admin, "", 4401),  # keys are never read from URLs
    ):
        with api.client.websocket_connect(url, headers={"X-API-Key": key}) as ws:
            body = json.loads(ws.receive_text())
            assert body["status"] == "error" and body["error"]["code"] == code - 4000
            with pytest.raises(WebSocketDisconnect) as exc:
                ws.receive_text()
            assert exc.value.code == code


def test_mjpeg_errors(api: Harness) -> None:
    assert_error(api.client.get("/api/streams/ghost/mjpeg"), 404, "NOT_FOUND")
    assert_error(api.client.get("/api/streams/ghost/mjpeg", headers={"X-API-Key": ""}), 401, "UNAUTHORIZED")


def test_streams_are_restored_after_restart(tmp_path: Path) -> None:
    for harness in start_app(tmp_path, auth="off"):
        r = harness.client.post(
            "/api/streams", json={"id": "keep", "source": "demo:live", "models": ["fake"], "start": False}
        )
        assert r.status_code == 201 and r.json()["state"] in ("starting", "stopped")
        harness.client.post("/api/streams", json={"id": "run", "source": "demo:live", "models": ["fake"]})
    for harness in start_app(tmp_path, auth="off"):
        streams = {s["id"]: s for s in harness.client.get("/api/streams").json()["streams"]}
        assert set(streams) == {"keep", "run"}
        assert streams["run"]["state"] in ("starting", "running")
        assert streams["keep"]["state"] in ("starting", "stopped")
        assert harness.ctx.engine.get_stream("keep").threads == []  # not started


# --- tasks --------------------------------------------------------------------------------
def _events(api: Harness, task_id: str) -> list[dict[str, Any]]:
    r = api.client.get(f"/api/tasks/{task_id}/events")
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def test_task_runs_to_completion_with_downloads(api: Harness, video: Path) -> None:
    r = api.client.post("/api/tasks", json={"source": str(video), "models": ["fake"]})
    assert r.status_code == 201, r.text
    task_id = r.json()["id"]
    assert r.json()["state"] in ("queued", "running")
    assert api.ctx.tasks.wait_idle(60)
    body = api.client.get(f"/api/tasks/{task_id}", headers=api.h(api.viewer)).json()
    assert body["state"] == "completed", body
    assert body["progress"] == 100.0 and body["frames_done"] == 30 and body["frames_total"] == 30
    assert body["result"]["frames"] == 30 and body["result"]["detections"] == 30
    assert body["downloads"] == {
        "events": f"/api/tasks/{task_id}/events",
        "video": f"/api/tasks/{task_id}/video",
    }
    assert [e["index"] for e in _events(api, task_id)] == list(range(30))
    r = api.client.get(f"/api/tasks/{task_id}/video")
    assert r.headers["content-type"] == "video/mp4" and len(r.content) > 1000
    assert any(t["id"] == task_id for t in api.client.get("/api/tasks?state=completed").json()["tasks"])
    assert_error(api.client.post(f"/api/tasks/{task_id}/cancel"), 409, "CONFLICT")
    assert_error(api.client.post(f"/api/tasks/{task_id}/retry"), 409, "CONFLICT")


@pytest.mark.parametrize("every", [1, 3])
def test_task_cancel_then_retry_resumes_without_duplicates(api: Harness, tmp_path: Path, every: int) -> None:
    from aisp.models import unregister_model

    frames = 200 * every  # far longer than what the bounded queues hold: a cancel stops it mid-way
    video = make_video(tmp_path / "long.mp4", frames=frames)
    expected = list(range(0, frames, every))
    n = len(expected)
    gate = _Gate(at_call=5)
    _register_gated("gated", gate)
    try:
        task_id = api.client.post(
            "/api/tasks", json={"source": str(video), "models": ["gated"], "every": every}
        ).json()["id"]
        assert gate.reached.wait(60)
        r = api.client.post(f"/api/tasks/{task_id}/cancel")
        assert r.status_code == 200
        gate.release.set()
        assert api.ctx.tasks.wait_idle(60)
        body = api.client.get(f"/api/tasks/{task_id}").json()
        assert body["state"] == "cancelled", body
        done = body["frames_done"]
        assert 0 < done < n
        r = api.client.post(f"/api/tasks/{task_id}/retry")
        assert r.status_code == 200 and r.json()["state"] in ("queued", "running", "completed")
        assert api.ctx.tasks.wait_idle(60)
        body = api.client.get(f"/api/tasks/{task_id}").json()
        assert body["state"] == "completed" and body["frames_done"] == n and body["attempts"] == 2
        assert body["result"]["frames"] == n - done
        assert [e["index"] for e in _events(api, task_id)] == expected
        # the two attempts' videos are joined: every frame once, in order
        r = api.client.get(f"/api/tasks/{task_id}/video")
        assert r.status_code == 200
        path = tmp_path / "joined.mp4"
        path.write_bytes(r.content)
        import av

        with av.open(str(path)) as container:
            pts = [f.pts for f in container.decode(video=0)]
        assert len(pts) == n and pts == sorted(pts)
        assert not list(api.ctx.tasks.task_dir(task_id).glob("annotated.part-*"))
    finally:
        gate.release.set()
        unregister_model("gated")
        for key in api.ctx.cache.keys():  # the app (and its cache) outlive this test
            if key.name == "gated":
                api.ctx.cache.invalidate(key)


def test_interrupted_task_resumes_from_saved_progress(api: Harness, video: Path) -> None:
    """What a restart after a crash leaves: a task `interrupted` with progress 12 in the store,
    events up to frame 14 on disk and half a line."""
    store = api.ctx.store
    rec = store.tasks.create(source=str(video), models=["fake"], params={"video": False})
    store.tasks.start(rec.id)
    store.tasks.set_progress(rec.id, 12, 30, 10.0, force=True)
    store.tasks.update(rec.id, state="interrupted", error="the process stopped")
    task_dir = api.ctx.tasks.task_dir(rec.id)
    task_dir.mkdir(parents=True)
    # the crashed attempt had written frames 0..14 (3 beyond the saved progress) and half a line
    lines = [json.dumps({"index": i}) for i in range(15)]
    (task_dir / "events.part-000000000.jsonl").write_text("\n".join(lines) + '\n{"index": 15, "resu')
    r = api.client.post(f"/api/tasks/{rec.id}/retry")
    assert r.status_code == 200, r.text
    assert api.ctx.tasks.wait_idle(60)
    body = api.client.get(f"/api/tasks/{rec.id}").json()
    assert body["state"] == "completed" and body["frames_done"] == 30
    # resumed after the last event on disk (frame 14), not at the store's throttled progress (12)
    assert body["result"]["frames"] == 15
    assert [e["index"] for e in _events(api, rec.id)] == list(range(30))


def test_task_bad_input(api: Harness, tmp_path: Path) -> None:
    c = api.client
    assert_error(c.post("/api/tasks", json={"source": "x.mp4", "models": ["nope"]}), 404, "NOT_FOUND")
    assert_error(c.post("/api/tasks", json={"source": "", "models": ["fake"]}), 400, "VALIDATION_ERROR")
    assert_error(
        c.post("/api/tasks", json={"source": "x", "models": ["fake"], "bogus": 1}), 400, "VALIDATION_ERROR"
    )
    assert_error(c.get("/api/tasks/ghost"), 404, "NOT_FOUND")
    assert_error(c.post("/api/tasks/ghost/cancel"), 404, "NOT_FOUND")
    assert_error(c.get("/api/tasks/ghost/events"), 404, "NOT_FOUND")
    assert_error(c.get("/api/tasks?state=weird"), 400, "VALIDATION_ERROR")
    # a missing file in the media dir is accepted as a task and fails with the one generic text
    task_id = c.post("/api/tasks", json={"source": str(tmp_path / "missing.mp4"), "models": ["fake"]}).json()[
        "id"
    ]
    assert api.ctx.tasks.wait_idle(60)
    body = c.get(f"/api/tasks/{task_id}").json()
    assert body["state"] == "failed" and body["error"].startswith("cannot open the source"), body
    assert "missing.mp4" not in body["error"]
