"""The runtime computes the CPU plan once and hands its parts out: the engine's workers, the ONNX
sessions' threads (one session per worker when the plan says so), OpenCV's threads; batch jobs
run on the runtime's one engine, beside its streams."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from aisp.cache import ModelKey
from aisp.pipeline import CallbackSink, MemorySource, StreamSpec
from aisp.runtime import build
from aisp.settings import load_settings


def _settings(tmp_path: Path, **kw):
    return load_settings(environ={}, data_dir=tmp_path / "d", **kw)


def test_the_runtime_carries_its_plan_and_applies_it(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    before = cv2.getNumThreads()
    try:
        with build(_settings(tmp_path, cpu_cores=2, workers=3, opencv_threads=1, batching="on",
                             batch_max_size=5), store=False) as rt:
            assert rt.cpu is not None and rt.cpu.cores == 2 and rt.cpu.workers == 3
            assert rt.engine.plan is rt.cpu and rt.engine.pool.size == 3
            assert rt.engine.max_batch == 5
            assert cv2.getNumThreads() == 1
            config = rt.models.config
            assert (config.ort_intra_op_threads, config.ort_inter_op_threads) == (1, 1)
            assert config.onnx_session_per_worker is True and config.ort_spinning is False
    finally:
        cv2.setNumThreads(before)


def test_onnx_models_get_a_session_per_worker_with_the_plans_threads(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from aisp.bench.onnx_workload import build_yolo_like

    path = build_yolo_like(tmp_path / "m.onnx")
    name = f"onnx:{path}"
    with build(_settings(tmp_path, cpu_cores=2), store=False) as rt:
        w0, w1 = rt.models.load(name, instance="w0"), rt.models.load(name, instance="w1")
        assert w0 is not w1 and rt.models.load(name, instance="w0") is w0
        assert set(rt.cache.keys()) == {ModelKey(name, "w0"), ModelKey(name, "w1")}
        assert w0.session_threads == {"intra_op": 1, "inter_op": 1, "spinning": False}
    with build(_settings(tmp_path, cpu_cores=2, ort_session_per_worker="off", ort_intra_op_threads=2,
                         ort_spinning="on"), store=False) as rt:
        shared = rt.models.load(name, instance="w0")
        assert rt.models.load(name, instance="w1") is shared and rt.cache.keys() == [ModelKey(name)]
        assert shared.session_threads == {"intra_op": 2, "inter_op": 1, "spinning": True}


def test_jobs_run_on_the_runtimes_engine_beside_its_streams(tmp_path: Path) -> None:
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(20)]
    with build(_settings(tmp_path, cpu_cores=2), store=False) as rt:
        started = threading.Event()
        rt.engine.add_stream(StreamSpec("cam", MemorySource(frames, live=True), ["fake"]),
                             [CallbackSink(lambda r: started.set())], start=True)
        assert started.wait(30)
        seen: list[int] = []
        views: list[list[str]] = []

        def on_result(r) -> None:
            seen.append(r.frame.index)
            if len(seen) == 1:
                views.append([s.spec.id for s in rt.engine.streams()])

        summary = rt.run_job(MemorySource(frames), "fake", sinks=[CallbackSink(on_result)])
        assert summary.error is None and seen == list(range(20))
        # the job was a stream of the same engine (the same worker pool) while it ran ...
        assert any(i.startswith("job:") for i in views[0]) and "cam" in views[0]
        # ... hidden from the stream views, and removed when it ended
        assert [v.id for v in rt.streams()] == ["cam"]
        assert [s.spec.id for s in rt.engine.streams()] == ["cam"]
        # two jobs at once share the pool too: no second engine
        results: list = []
        threads = [threading.Thread(target=lambda: results.append(rt.run_job(MemorySource(frames), "fake")))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [r.frames for r in results] == [20, 20] and rt.engine.pool.size == 2


def test_a_job_with_other_workers_gets_its_own_engine(tmp_path: Path) -> None:
    frames = [np.zeros((8, 8, 3), np.uint8)] * 5
    with build(_settings(tmp_path, cpu_cores=2), store=False) as rt:
        seen: list[str] = []
        summary = rt.run_job(MemorySource(frames), "fake", workers=1,
                             sinks=[CallbackSink(lambda r: seen.append(r.frame.stream_id))])
        assert summary.frames == 5 and set(seen) == {"job"} and rt.engine.streams() == []
