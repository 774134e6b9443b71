"""Batch tasks split over the nodes of a real 3-node Ray cluster: the same events, in the same
order, and a video with the same frames, as a single-machine run (``aisp run``'s code path), also
when a node is removed mid-task; and through the API (PostgreSQL, ``/api/cluster``).

Every frame of the test video carries its own index in its pixels (a 16-cell counter) and a
brightness that changes with it, so the ``fake`` model's confidence differs per frame and the
merged video's frame order can be read back from its pixels.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import NODE_ARGS

av = pytest.importorskip("av")

FRAMES = 180
GOP = 10
SLOW = "slow_fake"
#: per-frame cost of the slow model on the nodes (sleeping, so the 2 shared cores stay free)
SLOW_MS = 25.0


def _register_slow(cost_ms: float) -> None:
    from aisp.models import FakeModel, register_model, unregister_model

    unregister_model(SLOW)  # a no-op when absent; a worker's process may be reused
    register_model(SLOW, functools.partial(FakeModel, SLOW, cost_ms=cost_ms, label="fake"), backend="fake")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aisp.bench.cluster_tasks import make_task_video

    d = tmp_path_factory.mktemp("media")
    make_task_video(d / "clip.mp4", FRAMES, gop=GOP, size=(320, 240), demo=False)
    return d


@pytest.fixture(scope="module")
def settings(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from aisp.settings import load_settings

    return load_settings(environ={}, data_dir=tmp_path_factory.mktemp("data"), media_dirs=[str(media)],
                         drain_timeout_seconds=5.0)


@pytest.fixture(scope="module")
def tasks(ray_cluster: Any, settings: Any) -> Any:
    from aisp.cluster.tasks import ClusterTasks

    runner = ClusterTasks(settings, setup=functools.partial(_register_slow, SLOW_MS))
    runner.start()
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture(scope="module")
def reference(media: Path, settings: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The single-machine run (``aisp run``: ``build(settings).run_job``) of each model."""
    from aisp.models import unregister_model
    from aisp.runtime import build

    _register_slow(0.0)  # the same results as on the nodes, without the cost
    out = tmp_path_factory.mktemp("reference")
    refs = {}
    try:
        with build(settings, store=False) as runtime:
            for model in ("fake", SLOW):
                summary = runtime.run_job(str(media / "clip.mp4"), [model],
                                          events_path=out / f"{model}.jsonl", out_video=out / f"{model}.mp4")
                assert summary.error is None and summary.frames == FRAMES
                refs[model] = _events(out / f"{model}.jsonl")
    finally:
        unregister_model(SLOW)
    refs["video"] = out / "fake.mp4"
    return refs


def _events(path: Path) -> list[dict[str, Any]]:
    """The events of a JSONL file without what differs between any two runs (the job's stream
    id, the engine clock, the time a model took)."""
    out = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        event.pop("stream_id")
        event.pop("captured_at")
        for result in event["results"].values():
            result.pop("inference_ms")
        out.append(event)
    return out


def _video_counters(path: Path) -> list[int]:
    """The index each frame of the video carries in its pixels, in the video's order."""
    from aisp.bench.onnx_workload import read_counter

    with av.open(str(path)) as container:
        return [read_counter(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def _finish(task_dir: Path) -> None:
    """What the API's task runner does after an attempt: fold the events, join the video."""
    from aisp.api.task_outputs import fold_events, join_video

    fold_events(task_dir)
    assert join_video(task_dir) == []


def _run_in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["summary"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


# --- planning (no Ray) ------------------------------------------------------------------------
def test_keyframes_are_read_from_packets_and_ranges_start_at_them(media: Path) -> None:
    from aisp.cluster.task_plan import plan_ranges, scan_video

    index = scan_video(str(media / "clip.mp4"))
    assert index.frames == FRAMES and index.keyframes == tuple(range(0, FRAMES, GOP))
    ranges = plan_ranges(index, 3)
    assert len(ranges) == 9 and ranges[0].start == 0 and ranges[-1].end is None
    assert all(r.start in index.keyframes for r in ranges)
    assert all(a.end == b.start for a, b in zip(ranges, ranges[1:], strict=False))  # no gap, no overlap
    # every=4 from a resume point off the keyframes: each range's first frame stays on the grid
    grid = plan_ranges(index, 3, start=6, every=4)
    assert grid[0].start == 6 and all((r.first - 6) % 4 == 0 and r.first >= r.start for r in grid)
    assert plan_ranges(index, 3, start=FRAMES) == []


# --- on the cluster ---------------------------------------------------------------------------
def test_split_over_three_nodes_matches_a_single_machine_run(tasks: Any, reference: dict[str, Any],
                                                             media: Path, tmp_path: Path) -> None:
    progress: list[int] = []
    summary = tasks.run_task("split", str(media / "clip.mp4"), ["fake"], task_dir=tmp_path,
                             on_progress=lambda done, total, fps: progress.append(done))
    _finish(tmp_path)
    assert summary.error is None and summary.frames == FRAMES and summary.frames_total == FRAMES
    assert len(summary.cluster["nodes"]) == 3, summary.cluster  # every node ran ranges
    assert summary.cluster["ranges"] == 9 and summary.cluster["redone"] == 0
    assert _events(tmp_path / "events.jsonl") == reference["fake"]
    # progress: 0, then each range's frames once, up to the whole task
    assert progress[0] == 0 and progress[-1] == FRAMES and len(progress) == 1 + 9
    assert progress == sorted(progress)
    # one video, every frame once, in order, like the single-machine one
    assert _video_counters(tmp_path / "annotated.mp4") == list(range(FRAMES))
    assert _video_counters(reference["video"]) == list(range(FRAMES))
    assert not list(tmp_path.glob("*.part-*")) and not (tmp_path / ".ranges").exists()


@pytest.mark.parametrize(("models", "options", "ranges"), [
    (["fake"], {"every": 3}, 9),  # split; each range keeps the first run's every-3 grid
    (["motion"], {}, 1),  # stateful (each result depends on every earlier frame): one range
    (["fake"], {"max_fps": 12.0}, 1),  # which frames max_fps keeps depends on those kept before
])
def test_what_is_split_and_what_runs_whole_matches_a_single_machine_run(
        tasks: Any, settings: Any, media: Path, tmp_path: Path, models: list[str], options: dict[str, Any],
        ranges: int) -> None:
    from aisp.runtime import build

    ref = tmp_path / "ref.jsonl"
    # one worker thread, as on a 1-CPU node: a stateful model on two workers sees frames in the
    # order the workers reach its lock, which varies from run to run on one machine too
    with build(settings.model_copy(update={"workers": 1}), store=False) as runtime:
        runtime.run_job(str(media / "clip.mp4"), models, events_path=ref, **options)
    out = tmp_path / "task"
    summary = tasks.run_task("variant", str(media / "clip.mp4"), models, task_dir=out, video=False, **options)
    _finish(out)
    assert summary.error is None and summary.cluster["ranges"] == ranges
    assert _events(out / "events.jsonl") == _events(ref) and summary.frames == len(_events(ref))
    assert not (out / "annotated.mp4").exists()


def test_cancel_keeps_a_prefix_and_the_retry_completes_it(tasks: Any, reference: dict[str, Any],
                                                          media: Path, tmp_path: Path) -> None:
    from aisp.api.task_outputs import prepare_video, resume_point

    cancel = threading.Event()
    tasks.on_range = lambda result: cancel.set() if result.index == 0 else None  # a prefix is done
    try:
        first = tasks.run_task("cancelled", str(media / "clip.mp4"), [SLOW], task_dir=tmp_path, cancel=cancel)
    finally:
        tasks.on_range = None
    _finish(tmp_path)
    assert first.cancelled and 0 < first.frames < FRAMES
    start, kept = resume_point(tmp_path)
    assert kept == first.frames and start == kept  # the prefix on disk is what the attempt reports
    prepare_video(tmp_path, kept)
    second = tasks.run_task("cancelled", str(media / "clip.mp4"), [SLOW], task_dir=tmp_path, start=start)
    _finish(tmp_path)
    assert second.error is None and second.frames == FRAMES - kept
    assert _events(tmp_path / "events.jsonl") == reference[SLOW]
    assert _video_counters(tmp_path / "annotated.mp4") == list(range(FRAMES))


def test_bad_sources_fail_clearly(tasks: Any, settings: Any, tmp_path: Path) -> None:
    from aisp.errors import SourceError, SourceNotAllowedError

    assert not tasks.accepts("/etc/passwd") and not tasks.accepts("demo") and not tasks.accepts("nope.mp4")
    junk = Path(settings.media_dirs[0]) / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    try:
        assert tasks.accepts(str(junk))
        with pytest.raises(SourceError) as info:
            tasks.run_task("junk", str(junk), ["fake"], task_dir=tmp_path)
        assert str(junk) not in info.value.message  # no path in what the task shows
    finally:
        junk.unlink()
    with pytest.raises(SourceNotAllowedError):
        tasks.run_task("outside", "/etc/passwd", ["fake"], task_dir=tmp_path)


# --- through the API --------------------------------------------------------------------------
def test_api_task_runs_split_with_the_same_json_progress_and_downloads(
        ray_cluster: Any, pg_url: str, media: Path, reference: dict[str, Any], tmp_path: Path) -> None:
    from aisp.api import create_app
    from aisp.cluster import ClusterService
    from aisp.settings import load_settings, set_settings
    from tests.api.conftest import local_client

    settings = load_settings(environ={}, data_dir=tmp_path / "data", media_dirs=[str(media)],
                             database_url=pg_url, ray_address=ray_cluster.address,
                             drain_timeout_seconds=5.0, snapshot_interval_seconds=3600.0)
    set_settings(settings)
    _register_slow(0.0)  # the API checks the model names on this machine before queueing
    cluster = ClusterService(settings, task_setup=functools.partial(_register_slow, SLOW_MS))
    app = create_app(settings, cluster=cluster)
    try:
        with local_client(app, raise_server_exceptions=False) as client:
            assert app.state.lifecycle.wait_started(120), app.state.ctx.errors
            ctx = app.state.ctx
            _, admin = ctx.store.keys.create("admin", "test-admin")
            client.headers["X-API-Key"] = admin
            r = client.post("/api/tasks", json={"source": str(media / "clip.mp4"), "models": [SLOW]})
            assert r.status_code == 201, r.text
            task_id = r.json()["id"]
            seen_on: set[str] = set()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the cluster lists the task on the nodes running it
                nodes = cluster.describe()["nodes"]  # the body of GET /api/cluster
                seen_on |= {n["node_id"] for n in nodes if task_id in n["tasks"]}
                if ctx.tasks.wait_idle(0.05):  # the task ended (waits on the runner's condition)
                    break
            assert ctx.tasks.wait_idle(60)
            body = client.get(f"/api/tasks/{task_id}").json()
            assert body["state"] == "completed", body
            assert body["progress"] == 100.0
            assert body["frames_done"] == FRAMES and body["frames_total"] == FRAMES
            assert body["result"]["frames"] == FRAMES and body["result"]["cluster"]["ranges"] == 9
            assert body["downloads"] == {"events": f"/api/tasks/{task_id}/events",
                                         "video": f"/api/tasks/{task_id}/video"}
            assert seen_on, "no node listed the task while it ran"
            alive = {n["node_id"] for n in cluster.describe()["nodes"] if n["alive"]}
            assert seen_on <= alive | set(body["result"]["cluster"]["nodes"])
            events = tmp_path / "events.jsonl"
            events.write_bytes(client.get(f"/api/tasks/{task_id}/events").content)
            assert _events(events) == reference[SLOW]
            video = tmp_path / "video.mp4"
            video.write_bytes(client.get(f"/api/tasks/{task_id}/video").content)
            assert _video_counters(video) == list(range(FRAMES))
            # bad input still gets the unified error body
            r = client.post("/api/tasks", json={"source": "/etc/passwd", "models": ["fake"]})
            assert r.status_code == 403 and r.json()["error"]["name"] == "SOURCE_NOT_ALLOWED"
    finally:
        set_settings(None)
        from aisp.models import unregister_model

        unregister_model(SLOW)


# --- last: a node is removed (the cluster ends after this module) --------------------------
def test_a_node_removed_mid_task_loses_and_doubles_nothing(ray_cluster: Any, tasks: Any,
                                                           reference: dict[str, Any], media: Path,
                                                           tmp_path: Path) -> None:
    some_done = threading.Event()
    tasks.on_range = lambda result: some_done.set()
    head = ray_cluster.head_node.node_id
    progress: list[int] = []
    try:
        thread, box = _run_in_thread(lambda: tasks.run_task(
            "lossy", str(media / "clip.mp4"), [SLOW], task_dir=tmp_path,
            on_progress=lambda done, total, fps: progress.append(done)))
        assert some_done.wait(60), box
        victim = None
        deadline = time.monotonic() + 30
        while victim is None and time.monotonic() < deadline:  # a non-head node that runs a range now
            running = {node for node, ids in tasks.by_node().items() if "lossy" in ids}
            victim = next((n for n in ray_cluster.worker_nodes if n.node_id in running and n.node_id != head),
                          None)
        assert victim is not None, "no non-head node was running a range"
        ray_cluster.remove_node(victim, allow_graceful=False)  # a crash: no goodbye to the GCS
        thread.join(120)
        assert not thread.is_alive() and "error" not in box, box
    finally:
        tasks.on_range = None
        # a replacement (not waiting for Ray to mark the victim dead, ~10 s of health checks: this
        # test is the module's last, the cluster ends after it)
        replacement = ray_cluster.add_node(**NODE_ARGS)
    assert replacement.node_id in {w.node_id for w in tasks.pool.sync(force=True)}  # it gets a worker
    summary = box["summary"]
    _finish(tmp_path)
    assert summary.error is None and summary.frames == FRAMES, summary
    assert summary.cluster["redone"] >= 1, summary.cluster
    ranges = summary.cluster["ranges"]
    assert sum(summary.cluster["nodes"].values()) == ranges  # each range accepted once, wherever it ran
    assert _events(tmp_path / "events.jsonl") == reference[SLOW]
    assert progress[-1] == FRAMES and progress == sorted(progress) and len(progress) == 1 + ranges
    assert _video_counters(tmp_path / "annotated.mp4") == list(range(FRAMES))
