"""``aisp.client`` against a real ``aisp serve`` on loopback with auth on (see ``conftest.py``):
frames with every image type and results equal to the library's, the errors, streams and watch,
tasks, and the ``aisp remote`` CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from aisp import errors as E
from aisp.client import AsyncClient, Client
from tests.client.conftest import Remote, astronaut


@pytest.fixture(scope="module")
def client(remote: Remote):
    with Client(remote.url, remote.admin) as c:
        yield c


@pytest.fixture(scope="module")
def library_faces():
    """The library's own face detector, on this process (no cache)."""
    from aisp.models import ModelConfig, ModelRegistry

    model = ModelRegistry(None, ModelConfig()).load("face_detection", cache=False)
    try:
        yield model.infer
    finally:
        model.close()


def _same(a, b) -> None:
    da, db = a.detections, b.detections
    assert len(da) == len(db) >= 1
    assert np.allclose(da.xyxy, db.xyxy, atol=0.006)
    assert np.allclose(da.confidence, db.confidence, atol=1e-4)
    assert np.allclose(da.keypoints, db.keypoints, atol=0.006)
    assert da.labels == db.labels and da.class_id.tolist() == db.class_id.tolist()


def test_process_each_image_type_equals_the_library(
    client: Client, library_faces, tmp_path: Path
) -> None:
    from PIL import Image

    rgb = astronaut()
    png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    path = tmp_path / "astronaut.png"
    path.write_bytes(png)
    expected = library_faces(rgb)  # PNG is lossless: the server decodes these very pixels
    for image in (rgb, Image.fromarray(rgb), png, path, str(path)):
        frame = client.process(image, ["face_detection"], format="png", reduced_decode=False)
        assert (frame.width, frame.height, frame.format) == (512, 512, "png")
        _same(frame["face_detection"], expected)
    # JPEG: the library on the same decoded JPEG gives the same boxes
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    frame = client.process(jpeg, "face_detection", reduced_decode=False)
    _same(frame["face_detection"], library_faces(decoded))
    assert frame.decode_scale == 1


def test_process_two_models_and_annotate(client: Client) -> None:
    frame = client.process(astronaut(), ["face_detection", "fake"])
    assert list(frame.results) == ["face_detection", "fake"] and frame.num_detections >= 2
    assert frame.inference_ms.keys() == {"face_detection", "fake"}
    ann = client.process(astronaut(), ["face_detection"], annotate=True)
    assert ann.results == {} and ann.annotated[:3] == b"\xff\xd8\xff"
    img = ann.annotated_image()
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    assert not np.array_equal(img, astronaut())  # boxes were drawn


def test_errors_map_to_the_library_classes(remote: Remote, client: Client) -> None:
    with pytest.raises(E.NotFoundError) as info:
        client.process(astronaut(), ["no_such_model"])
    assert info.value.kind == "model" and info.value.key == "no_such_model"
    assert "unknown model 'no_such_model'" in info.value.message and info.value.request_id
    with pytest.raises(E.NotFoundError):  # the same class the library raises
        from aisp.models import get_spec

        get_spec("no_such_model")
    with pytest.raises(E.NotFoundError, match="stream"):
        client.streams.get("nope")
    with pytest.raises(E.ValidationError) as bad:
        client.streams.create("demo", ["fake"], id="bad id!")
    assert bad.value.status_code == 400
    with Client(remote.url, "aisp_000000000000_wrong") as wrong:
        with pytest.raises(E.UnauthorizedError):
            wrong.models.list()
    with Client(remote.url, remote.viewer) as viewer:
        assert viewer.whoami()["role"] == "viewer"
        assert viewer.streams.list() is not None
        with pytest.raises(E.ForbiddenError) as forbidden:
            viewer.streams.create("demo", ["fake"])
        assert forbidden.value.role == "viewer"


def test_one_connection_is_reused(remote: Remote) -> None:
    with Client(remote.url, remote.admin, timeout=10, connect_timeout=2) as c:
        for _ in range(5):
            c.health()
            c.models.list()
        pool = c._http._transport._pool  # httpcore's pool behind the httpx client
        assert len(pool.connections) == 1
    assert c._http.is_closed


def test_models_and_cache(client: Client) -> None:
    infos = {m.name: m for m in client.models.list()}
    assert {"face_detection", "fake"} <= infos.keys() and infos["fake"].backend
    loaded = client.models.load("fake")
    assert loaded["loaded"] is True
    stats = client.cache.stats()
    assert stats.basic.loads >= 1 and stats.basic.cache_size >= 1
    assert any(s.key.name == "fake" for s in stats.models.values())
    assert "fake" in client.models.unload("fake")
    with pytest.raises(E.NotFoundError):
        client.models.load("no_such_model")


def test_stream_lifecycle_and_watch(client: Client, remote: Remote) -> None:
    s = client.streams.create("demo:live", ["fake"], id="cl1", max_fps=20)
    assert s.id == "cl1" and s.models == ["fake"]
    assert "cl1" in [x.id for x in client.streams.list()]
    with Client(remote.url, remote.viewer) as viewer:
        seqs = []
        for result in viewer.streams.watch("cl1"):
            assert result.stream == "cl1" and len(result.results["fake"].detections) == 1
            seqs.append(result.seq)
            if len(seqs) == 3:
                break
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert viewer._ticket_route is True  # the server offers tickets: the handshake used one
    assert client.streams.stop("cl1").state in ("stopped", "stopping", "completed")
    assert client.streams.start("cl1").id == "cl1"
    watch = client.streams.watch("cl1")
    assert next(watch).stream == "cl1"
    client.streams.delete("cl1")
    assert list(watch) is not None  # the server sends "end": the iterator finishes
    with pytest.raises(E.NotFoundError):
        client.streams.get("cl1")
    with pytest.raises(E.NotFoundError):
        next(client.streams.watch("cl1"))


def test_async_client(remote: Remote) -> None:
    import anyio

    async def main() -> tuple[int, int]:
        async with AsyncClient(remote.url, remote.admin) as c:
            frames = await asyncio.gather(*(c.process(astronaut(), ["fake"]) for _ in range(4)))
            await c.streams.create("demo:live", ["fake"], id="acl", max_fps=20)
            n = 0
            async for result in c.streams.watch("acl"):
                n += 1 if result.results["fake"] else 0
                if n == 2:
                    break
            await c.streams.delete("acl")
            return sum(f.num_detections for f in frames), n

    assert anyio.run(main) == (4, 2)


def _video(path: Path, frames: int = 12) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(frames):
        img = np.full((120, 160, 3), 20 * i % 255, np.uint8)
        writer.write(img)
    writer.release()
    return path


def test_tasks_submit_wait_download(client: Client, remote: Remote, tmp_path: Path) -> None:
    clip = _video(remote.media / "clip.mp4")
    task = client.tasks.submit(str(clip), ["fake"])
    seen = []
    final = client.tasks.wait(task.id, progress=seen.append, timeout=120, poll=0.1)
    assert final.state == "completed" and final.done and final.progress == 100.0
    assert seen and seen[-1].state == "completed"
    results = client.tasks.download_events(task.id)
    assert len(results) == 12 and all(len(r.results["fake"].detections) == 1 for r in results)
    out = client.tasks.download_events(task.id, tmp_path / "ev.jsonl")
    assert len(out.read_text().splitlines()) == 12
    video = client.tasks.download_video(task.id, tmp_path / "out.mp4")
    cap = cv2.VideoCapture(str(video))
    try:
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    finally:
        cap.release()
    with pytest.raises(E.ConflictError):
        client.tasks.cancel(task.id)  # completed: nothing to cancel
    assert task.id in [t.id for t in client.tasks.list()]


# --- the CLI ------------------------------------------------------------------------------
def _cli(
    remote: Remote, *args: str, key: str | None = None, url: str | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    env.update({"AISP_URL": url or remote.url, "AISP_API_KEY": key or remote.admin, "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "aisp", "remote", *args], capture_output=True, text=True,
                          env=env, timeout=180)


def test_cli_process_models_streams(remote: Remote, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(cv2.imencode(".jpg", cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))[1].tobytes())
    r = _cli(remote, "process", str(photo), "--models", "face_detection")
    assert r.returncode == 0, r.stderr
    assert "face_detection" in r.stdout and "face" in r.stdout
    out = tmp_path / "annotated.jpg"
    r = _cli(remote, "process", str(photo), "--models", "face_detection", "--out", str(out))
    assert r.returncode == 0 and out.read_bytes()[:3] == b"\xff\xd8\xff"
    r = _cli(remote, "models")
    assert r.returncode == 0 and "face_detection" in r.stdout
    r = _cli(remote, "streams")
    assert r.returncode == 0
    assert remote.admin not in r.stdout + r.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("process", "{photo}", "--models", "no_such_model"), 2, "unknown model 'no_such_model'"),
        (("models",), 1, "invalid or revoked API key"),
        (("streams",), 1, "cannot reach the AISP server"),
    ],
)
def test_cli_errors_are_one_line(remote: Remote, tmp_path: Path, args, code: int, message: str) -> None:
    photo = tmp_path / "p.png"
    photo.write_bytes(cv2.imencode(".png", astronaut())[1].tobytes())
    args = tuple(a.format(photo=photo) for a in args)
    key = "aisp_000000000000_wrong" if "revoked" in message else None
    url = "http://127.0.0.1:9" if "reach" in message else None
    r = _cli(remote, *args, key=key, url=url)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == [r.stderr.strip().splitlines()[-1]]


def test_cli_tasks_submit_wait(remote: Remote, tmp_path: Path) -> None:
    clip = _video(remote.media / "cli.mp4", frames=8)
    events = tmp_path / "events.jsonl"
    r = _cli(remote, "tasks", "submit", str(clip), "--models", "fake", "--wait", "--events-out", str(events))
    assert r.returncode == 0, r.stderr
    assert "completed, 100.0%" in r.stdout and len(events.read_text().splitlines()) == 8


def test_the_keys_never_reach_the_server_log(remote: Remote) -> None:
    """Every request sent the keys in a header (or a ticket): none is in the server's log."""
    text = remote.server.log_text()
    assert "Uvicorn running" in text
    assert remote.admin not in text and remote.viewer not in text


def test_events_pages_against_the_server(client: Client) -> None:
    """Stream state changes are stored as ``stream`` events: read them back through the pages."""
    import time

    for i in range(3):
        client.streams.create("demo:live", ["fake"], id=f"ev{i}", max_fps=5)
        client.streams.delete(f"ev{i}")
    deadline = time.monotonic() + 30
    events = []
    while time.monotonic() < deadline:  # the store writes events in batches: poll until they land
        events = list(client.events(type="stream", page_size=2))
        if len({e.stream_id for e in events if e.stream_id.startswith("ev")}) == 3:
            break
        time.sleep(0.2)
    ours = [e for e in events if e.stream_id.startswith("ev")]
    assert {e.stream_id for e in ours} == {"ev0", "ev1", "ev2"}
    assert all(e.type == "stream" and e.state for e in ours)
    assert len({e.id for e in events}) == len(events)  # no event twice across the pages
    one = list(client.events(stream="ev1", type="stream", page_size=1))
    assert one and all(e.stream_id == "ev1" for e in one)
    assert len(list(client.events(type="stream", page_size=1, max_events=2))) == 2
