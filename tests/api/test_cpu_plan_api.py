"""The API and the CPU plan: the app has one plan object, the runtime's, which its inference pool,
its batcher and ``/api/status`` follow; tasks and streams started through the API decode with the
codec threads the runtime's engine gives them."""

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


def test_the_app_has_one_plan_the_runtimes(api: Harness) -> None:
    ctx = api.ctx
    runtime = ctx.runtime
    assert runtime is not None and runtime.cpu is not None
    plan = runtime.cpu
    assert ctx.cpu_plan is plan and runtime.engine.plan is plan  # one object, not an equal copy
    assert plan.cores == 2 and "api_threads" in plan.overrides  # the harness sets inference_threads=2
    assert ctx.inference.threads == plan.api_threads == 2
    assert ctx.batcher.policy is plan.api_batching
    body = api.client.get("/api/status").json()
    assert body["cpu_plan"] == plan.to_dict()


def test_a_context_given_a_runtime_follows_the_runtimes_plan(tmp_path: Path) -> None:
    """The runtime's plan wins over the settings' (a context handed a runtime built elsewhere)."""
    from aisp.api.context import AppContext
    from aisp.cpu_budget import plan_cpu
    from aisp.runtime import build
    from aisp.settings import load_settings

    settings = load_settings(environ={}, data_dir=tmp_path / "d", cpu_cores=4)  # its own plan: 4 API threads
    own = plan_cpu(1, batching="off")  # 2 API threads, no API batching
    with build(settings, store=False, plan=own) as runtime:
        assert runtime.cpu is own and runtime.engine.plan is own
        ctx = AppContext(settings, runtime=runtime)
        try:
            assert ctx.cpu_plan is own
            assert ctx.inference.threads == 2 and ctx.batcher.policy is own.api_batching
            assert not ctx.batcher.policy.enabled
        finally:
            ctx.inference.shutdown()


def test_before_the_runtime_the_context_has_the_plan_it_will_be_built_with(tmp_path: Path) -> None:
    from aisp.api.context import AppContext
    from aisp.runtime import build
    from aisp.settings import load_settings

    settings = load_settings(environ={}, data_dir=tmp_path / "d", cpu_cores=3)
    ctx = AppContext(settings)
    try:
        plan = ctx.cpu_plan
        assert plan.cores == 3 and ctx.inference.threads == plan.api_threads == 4
        with build(settings, store=False, plan=plan) as runtime:  # what the lifespan does
            ctx.runtime = runtime
            assert ctx.cpu_plan is plan is runtime.cpu
    finally:
        ctx.inference.shutdown()
