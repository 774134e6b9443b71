"""Batch jobs (run_job, Pipeline) and the `aisp run` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import pytest

from aisp.errors import NotFoundError, SourceError
from aisp.pipeline import ListSink, MemorySource, Pipeline, run_job
from aisp.pipeline.demo import DemoSource
from tests.pipeline.helpers import make_images, write_video


def test_run_job_writes_events_and_video(settings, tmp_path, loader) -> None:
    video = write_video(tmp_path / "in.mp4", n=24, size=(64, 48))
    progress: list[tuple[int, int | None]] = []
    summary = run_job(str(video), "fake", out_video=tmp_path / "out.mp4", events_path=tmp_path / "ev.jsonl",
                      workers=2, loader=loader, settings=settings,
                      on_progress=lambda done, total, fps: progress.append((done, total)))
    assert summary.ok and summary.state == "stopped"
    assert summary.frames == 24 and summary.frames_total == 24 and summary.drops == 0
    assert summary.detections == 24 and summary.fps > 0
    assert progress[-1] == (24, 24) and [d for d, _ in progress] == list(range(1, 25))
    rows = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(24))
    assert rows[5]["pts"] == pytest.approx(5 / 30, abs=1e-3)
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 24
    cap.release()
    d = summary.to_dict()
    assert d["outputs"] == {"events": str(tmp_path / "ev.jsonl"), "video": str(tmp_path / "out.mp4")}


def test_run_job_every_and_cancel_keep_what_was_written(settings, tmp_path, loader) -> None:
    cancel = threading.Event()

    def on_progress(done, total, fps):
        if done == 10:
            cancel.set()

    summary = run_job(MemorySource(make_images(5000)), ["fake"], events_path=tmp_path / "ev.jsonl",
                      cancel=cancel, on_progress=on_progress, loader=loader, settings=settings, every=2)
    assert summary.cancelled and summary.state == "stopped" and summary.error is None
    assert 10 <= summary.frames < 2500
    lines = (tmp_path / "ev.jsonl").read_text().splitlines()
    assert len(lines) == summary.frames  # everything processed was flushed
    assert [json.loads(x)["index"] for x in lines[:3]] == [0, 2, 4]


def test_run_job_missing_file_and_unknown_model(settings, tmp_path) -> None:
    with pytest.raises(SourceError) as info:
        run_job(str(tmp_path / "missing.mp4"), "fake", settings=settings)
    assert info.value.details["phase"] == "open" and "missing.mp4" in info.value.message
    with pytest.raises(NotFoundError, match="unknown model"):
        run_job(MemorySource(make_images(2)), "no_such_model", settings=settings)


def test_run_job_truncated_video_processes_what_it_can(settings, tmp_path, loader) -> None:
    path = write_video(tmp_path / "v.mp4", n=60, faststart=True)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    sink = ListSink()
    summary = run_job(str(path), "fake", sinks=[sink], loader=loader, settings=settings)
    assert summary.state == "failed" and "truncated or corrupt" in summary.error
    assert 0 < summary.frames < 60 and len(sink.results) == summary.frames and sink.closed


def test_pipeline_facade_with_the_demo_source(settings, loader) -> None:
    sink = ListSink()
    stream = Pipeline(DemoSource(frames=12), "fake", sinks=[sink], loader=loader, settings=settings).run(30)
    assert stream.state == "stopped"
    assert [r.frame.index for r in sink.results] == list(range(12))
    assert stream.latest.get().frame.index == 11
    assert stream.mjpeg.latest_jpeg().startswith(b"\xff\xd8")


def test_pipeline_without_a_loader_builds_private_models_and_releases_them(settings) -> None:
    sink = ListSink()
    pipe = Pipeline(MemorySource(make_images(5)), "fake", sinks=[sink], settings=settings)
    model = pipe.engine.pool.loader("fake", "w0")  # from the pipeline's own registry and cache
    assert pipe.engine.pool.loader("fake", "w0") is model  # cached
    stream = pipe.run(30)
    assert stream.state == "stopped" and [r.frame.index for r in sink.results] == list(range(5))
    assert model.closed  # the private cache was closed with the pipeline
    other = Pipeline(MemorySource(make_images(1)), "fake", settings=settings)
    assert other.engine.pool.loader("fake", "w0") is not model  # nothing shared between pipelines
    other.stop(30)


def test_run_job_reads_the_settings_from_the_environment_when_none_are_given(loader, monkeypatch,
                                                                            tmp_path) -> None:
    monkeypatch.setenv("AISP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AISP_WORKERS", "1")
    summary = run_job(MemorySource(make_images(3)), "fake", loader=loader)
    assert summary.ok and summary.frames == 3


def _aisp(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    env["AISP_DATA_DIR"] = str(cwd / "data")
    return subprocess.run([sys.executable, "-m", "aisp", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def test_cli_run_on_a_video(tmp_path) -> None:
    video = write_video(tmp_path / "in.mp4", n=15)
    out = _aisp("run", str(video), "--model", "fake,motion", "--events", "ev.jsonl", "--out", "out.mp4",
                "--workers", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "frames" in out.stdout and "15 of 15" in out.stdout and "drops" in out.stdout
    rows = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert len(rows) == 15 and set(rows[0]["results"]) == {"fake", "motion"}
    assert (tmp_path / "out.mp4").stat().st_size > 0


@pytest.mark.parametrize(("args", "code", "message"), [
    (["missing.mp4", "--model", "fake"], 2, "source not found: missing.mp4"),
    (["demo", "--model", "nope"], 2, "unknown model 'nope'"),
    (["demo", "--model", "fake", "--every", "0"], 2, "--every"),
])
def test_cli_run_bad_input_exits_2(tmp_path, args, code, message) -> None:
    out = _aisp("run", *args, cwd=tmp_path)
    assert out.returncode == code
    assert message in out.stderr and "Traceback" not in out.stderr


def test_cli_run_truncated_video_exits_1(tmp_path) -> None:
    path = write_video(tmp_path / "v.mp4", n=60, faststart=True)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    out = _aisp("run", str(path), "--model", "fake", "--events", "ev.jsonl", cwd=tmp_path)
    assert out.returncode == 1
    assert "truncated or corrupt" in out.stderr and "Traceback" not in out.stderr
    lines = (tmp_path / "ev.jsonl").read_text().splitlines()
    assert 0 < len(lines) < 60


def test_cli_run_ctrl_c_stops_cleanly_and_keeps_outputs(tmp_path) -> None:
    import signal

    env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    env["AISP_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aisp", "run", "demo:live", "--model", "fake", "--events", "ev.jsonl",
         "--out", "out.mp4"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # wait (without sleeping) until frames are being written, then press Ctrl-C
        for line in iter(proc.stderr.readline, ""):
            if "starting -> running" in line:
                break
        events = tmp_path / "ev.jsonl"
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "state" in stdout
    lines = events.read_text().splitlines()
    # the job is a stream of the runtime's engine, "job:<n>" (several jobs may share the engine)
    assert {json.loads(x)["stream_id"] for x in lines} <= {"job:1"}
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))  # a complete mp4: the trailer was written
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert frames == len(lines)


def test_cli_run_verbose_prints_the_cpu_plan_and_start_frame_seeks(tmp_path) -> None:
    video = write_video(tmp_path / "in.mp4", n=15)
    out = _aisp("run", str(video), "--model", "fake", "--events", "ev.jsonl", "--verbose",
                "--start-frame", "5", "--workers", "1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "CPU plan:" in out.stderr and "1 workers" in out.stderr and "overrides: workers" in out.stderr
    rows = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(5, 15))
    assert "10 of 10" in out.stdout
