"""Where MediaPipe graphs run (aisp.models._mp_threads): on the calling thread by default, or on
N graph threads; applied where asked, nowhere else, and with the same outputs."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

mp = pytest.importorskip("mediapipe")

from aisp.models._mp_threads import CALLER, graph_threads, set_default_executor  # noqa: E402
from aisp.models.mediapipe import FaceDetectionModel  # noqa: E402


def graph_threads_now() -> set[str]:
    """Ids of the threads MediaPipe's executors run in this process (named ``mediapipe/N``)."""
    ids = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().startswith("mediapipe"):
                    ids.add(tid)
        except OSError:  # the thread ended meanwhile
            pass
    return ids


def new_graph_threads(before: set[str]) -> int:
    return len(graph_threads_now() - before)


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")


@linux_only
@pytest.mark.parametrize("threads", [0, 1, 3])
def test_graph_gets_the_threads_asked_for(threads: int) -> None:
    before = graph_threads_now()
    model = FaceDetectionModel("face_detection", graph_threads=threads)
    try:
        assert model.graph_threads == threads
        assert new_graph_threads(before) == threads  # 0: the calculators run on this thread
    finally:
        model.close()


@linux_only
def test_default_is_the_config_default(tmp_path) -> None:
    from aisp.models import ModelConfig
    from aisp.settings import load_settings

    settings = load_settings(environ={}, data_dir=tmp_path)
    before = graph_threads_now()
    model = FaceDetectionModel("face_detection")
    try:
        assert (
            model.graph_threads
            == ModelConfig().mediapipe_graph_threads
            == settings.mediapipe_graph_threads
            == 0
        )
        assert new_graph_threads(before) == 0
    finally:
        model.close()


@linux_only
def test_graphs_built_outside_the_block_keep_the_default() -> None:
    with graph_threads(0) as active:
        assert active
    before = graph_threads_now()
    solution = mp.solutions.face_detection.FaceDetection(model_selection=0)
    try:
        solution.process(np.full((96, 128, 3), 127, np.uint8))  # the pool may start threads lazily
        assert new_graph_threads(before) == (os.cpu_count() or 1)
    finally:
        solution.close()


def test_same_outputs_on_the_calling_thread_and_on_graph_threads(photos) -> None:
    caller = FaceDetectionModel("face_detection", graph_threads=0)
    pooled = FaceDetectionModel("face_detection", graph_threads=2)
    raw = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
    try:
        for name in ("astronaut", "camera"):
            a, b = caller.infer(photos[name]), pooled.infer(photos[name])
            assert len(a.detections) >= 1
            np.testing.assert_array_equal(a.detections.xyxy, b.detections.xyxy)
            np.testing.assert_array_equal(a.detections.confidence, b.detections.confidence)
            expected = raw.process(photos[name]).detections
            assert [d.score[0] for d in expected] == pytest.approx(list(a.detections.confidence), abs=0)
    finally:
        caller.close()
        pooled.close()
        raw.close()


def test_negative_threads_refused() -> None:
    with pytest.raises(ValueError, match="threads"), graph_threads(-1):
        pass


def _config(text: str):
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2

    return text_format.Parse(text, calculator_pb2.CalculatorGraphConfig())


def _pool_threads(config) -> int:
    from mediapipe.framework import thread_pool_executor_pb2 as tpe

    return config.executor[0].options.Extensions[tpe.ThreadPoolExecutorOptions.ext].num_threads


def test_sets_the_default_executor() -> None:
    config = _config("executor {}")
    assert set_default_executor(config, 1) and _pool_threads(config) == 1
    caller = _config("executor {}")
    assert set_default_executor(caller, 0) and caller.executor[0].type == CALLER
    bare = _config("")
    assert set_default_executor(bare, 2) and bare.num_threads == 2
    bare = _config("")
    assert set_default_executor(bare, 0) and [(e.name, e.type) for e in bare.executor] == [("", CALLER)]


def test_leaves_a_graphs_own_choice() -> None:
    chosen = _config("num_threads: 4")
    assert not set_default_executor(chosen, 0) and chosen.num_threads == 4 and not chosen.executor
    other = _config('executor { type: "ThreadPoolExecutor" }')
    assert not set_default_executor(other, 0) and other.executor[0].type == "ThreadPoolExecutor"
    set_already = _config("executor {}")
    set_default_executor(set_already, 3)
    assert not set_default_executor(set_already, 0) and _pool_threads(set_already) == 3
