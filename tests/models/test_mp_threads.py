"""One executor thread per MediaPipe graph (aisp.models._mp_threads): applied where asked,
nowhere else, and with the same outputs."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

mp = pytest.importorskip("mediapipe")

from aisp.models._mp_threads import graph_threads, limit_executor_threads  # noqa: E402
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
@pytest.mark.parametrize(("threads", "expected"), [(1, 1), (3, 3), (0, None)])
def test_graph_gets_the_threads_asked_for(threads: int, expected: int | None) -> None:
    before = graph_threads_now()
    model = FaceDetectionModel("face_detection", graph_threads=threads)
    try:
        added = new_graph_threads(before)
        if expected is None:  # MediaPipe's default: one per core
            assert added == (os.cpu_count() or 1) and model.graph_threads == 0
        else:
            assert added == expected and model.graph_threads == threads
    finally:
        model.close()


@linux_only
def test_default_is_the_setting(settings) -> None:
    before = graph_threads_now()
    model = FaceDetectionModel("face_detection")
    try:
        assert model.graph_threads == settings.mediapipe_graph_threads == 1
        assert new_graph_threads(before) == 1
    finally:
        model.close()


@linux_only
def test_graphs_built_outside_the_block_keep_the_default() -> None:
    with graph_threads(1) as active:
        assert active
    before = graph_threads_now()
    solution = mp.solutions.face_detection.FaceDetection(model_selection=0)
    try:
        solution.process(np.full((96, 128, 3), 127, np.uint8))  # the pool may start threads lazily
        assert new_graph_threads(before) == (os.cpu_count() or 1)
    finally:
        solution.close()


def test_same_outputs_with_one_thread_or_the_default(photos) -> None:
    one = FaceDetectionModel("face_detection", graph_threads=1)
    default = FaceDetectionModel("face_detection", graph_threads=0)
    try:
        for name in ("astronaut", "camera"):
            a, b = one.infer(photos[name]), default.infer(photos[name])
            assert len(a.detections) >= 1
            np.testing.assert_array_equal(a.detections.xyxy, b.detections.xyxy)
            np.testing.assert_array_equal(a.detections.confidence, b.detections.confidence)
    finally:
        one.close()
        default.close()


def _config(text: str):
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2

    return text_format.Parse(text, calculator_pb2.CalculatorGraphConfig())


def _pool_threads(config) -> int:
    from mediapipe.framework import thread_pool_executor_pb2 as tpe

    return config.executor[0].options.Extensions[tpe.ThreadPoolExecutorOptions.ext].num_threads


def test_limit_sets_the_default_executor() -> None:
    config = _config("executor {}")
    assert limit_executor_threads(config, 1) and _pool_threads(config) == 1
    bare = _config("")
    assert limit_executor_threads(bare, 2) and bare.num_threads == 2


def test_limit_leaves_a_graphs_own_choice() -> None:
    chosen = _config("num_threads: 4")
    assert not limit_executor_threads(chosen, 1) and chosen.num_threads == 4
    other = _config('executor { type: "ApplicationThreadExecutor" }')
    assert not limit_executor_threads(other, 1)
    set_already = _config("executor {}")
    limit_executor_threads(set_already, 3)
    assert not limit_executor_threads(set_already, 1) and _pool_threads(set_already) == 3
