"""The API and the CPU plan: tasks and streams started through the API decode with the codec
threads the runtime's engine gives them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Harness, start_app

pytest.importorskip("av")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from start_app(tmp_path_factory.mktemp("api"), cpu_cores=2)


@pytest.fixture
def decoders(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """(target, threads, FFmpeg's thread_count) of every PyAV decoder opened during the test."""
    from aisp.pipeline.decode import PyAVDecoder

    opened: list[tuple[str, int, int]] = []
    real_open = PyAVDecoder.open

    def spy(self: PyAVDecoder) -> None:
        real_open(self)
        opened.append((self.target, self.threads, self._container.streams.video[0].thread_count))

    monkeypatch.setattr(PyAVDecoder, "open", spy)
    return opened


def test_a_task_decodes_with_the_codec_threads_of_the_plan(api: Harness, tmp_path: Path,
                                                           decoders: list[tuple[str, int, int]]) -> None:
    """The task runner opens its source before the job starts (to tell finite URLs from live ones):
    the engine's threads are set on it before that, not FFmpeg's own choice."""
    from tests.pipeline.helpers import write_video

    video = write_video(tmp_path / "clip.mp4", n=8)
    r = api.client.post("/api/tasks", json={"source": str(video), "models": ["fake"]})
    assert r.status_code == 201, r.text
    assert api.ctx.tasks.wait_idle(60)
    body = api.client.get(f"/api/tasks/{r.json()['id']}").json()
    assert body["state"] == "completed" and body["frames_done"] == 8, body
    # 2 cores, no other reader running: (2 + 1) // 1 = 3 codec threads
    assert decoders == [(str(video.resolve()), 3, 3)]


def test_a_task_beside_a_running_stream_gets_its_share(api: Harness, tmp_path: Path,
                                                       decoders: list[tuple[str, int, int]]) -> None:
    """A live stream runs: a task that starts then is the second reader, (2 + 1) // 2 = 1 thread."""
    from tests.pipeline.helpers import write_video

    c = api.client
    r = c.post("/api/streams", json={"id": "cam", "source": "demo:live", "models": ["fake"]})
    assert r.status_code == 201, r.text
    try:
        video = write_video(tmp_path / "clip.mp4", n=5)
        r = c.post("/api/tasks", json={"source": str(video), "models": ["fake"]})
        assert r.status_code == 201, r.text
        assert api.ctx.tasks.wait_idle(60)
        assert c.get(f"/api/tasks/{r.json()['id']}").json()["state"] == "completed"
        assert decoders == [(str(video.resolve()), 1, 1)]
    finally:
        assert c.delete("/api/streams/cam").status_code == 204
