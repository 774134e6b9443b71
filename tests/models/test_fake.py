"""FakeModel: a real Model whose cost and detections are set by the test."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from aisp.errors import ModelLoadError, ValidationError
from aisp.models import FakeModel, ModelResult


def test_default_detection_is_derived_from_the_frame() -> None:
    model = FakeModel()
    dark = model.infer(np.zeros((100, 200, 3), np.uint8))
    bright = model.infer(np.full((100, 200, 3), 255, np.uint8))
    assert isinstance(dark, ModelResult) and dark.model == "fake"
    assert dark.detections.xyxy.tolist() == [[50, 25, 150, 75]]
    assert dark.detections.confidence[0] == pytest.approx(0.5)
    assert bright.detections.confidence[0] == pytest.approx(1.0)
    again = model.infer(np.zeros((100, 200, 3), np.uint8))
    assert again.detections.confidence.tolist() == dark.detections.confidence.tolist()
    assert model.calls == 3 and model.last_shape == (100, 200, 3)


def test_cost_is_spent_through_the_injected_sleep_and_timed() -> None:
    waited: list[float] = []
    now = [0.0]

    def fake_sleep(seconds: float) -> None:
        waited.append(seconds)
        now[0] += seconds

    model = FakeModel(cost_ms=25.0, sleep=fake_sleep)
    model.timer = lambda: now[0]
    result = model.infer(np.zeros((8, 8, 3), np.uint8))
    assert waited == [0.025]
    assert result.inference_ms == pytest.approx(25.0)


def test_busy_cost_really_runs() -> None:
    model = FakeModel(cost_ms=2.0, busy=True, sleep=lambda s: pytest.fail("busy mode must not sleep"))
    assert model.infer(np.zeros((8, 8, 3), np.uint8)).inference_ms >= 2.0


def test_fixed_boxes_callable_and_error() -> None:
    model = FakeModel(boxes=[[1, 2, 3, 4], [5, 6, 7, 8]], label="car")
    dets = model.infer(np.zeros((10, 10, 3), np.uint8)).detections
    assert dets.xyxy.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]] and dets.labels == ("car", "car")
    boom = FakeModel(error=RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        boom.infer(np.zeros((4, 4, 3), np.uint8))
    boom.error = None
    assert boom.infer(np.zeros((4, 4, 3), np.uint8)).num_detections == 1
    with pytest.raises(ValidationError, match="cost_ms: expected >= 0, got -1"):
        FakeModel(cost_ms=-1)


def test_infer_batch_in_order() -> None:
    model = FakeModel()
    frames = [np.full((4, 4, 3), v, np.uint8) for v in (0, 255)]
    results = model.infer_batch(frames)
    assert [r.detections.confidence[0] for r in results] == pytest.approx([0.5, 1.0])
    assert model.infer_batch([]) == []


def test_not_thread_safe_instances_serialise_calls() -> None:
    """Two threads call one non-thread-safe instance; the second waits for the first's lock."""
    inside = threading.Event()
    release = threading.Event()
    concurrent = []
    active = [0]

    def gate(frame: np.ndarray):
        active[0] += 1
        concurrent.append(active[0])
        inside.set()
        release.wait(5)
        active[0] -= 1
        return FakeModel().infer(frame).detections

    model = FakeModel(thread_safe=False, boxes=gate)
    frame = np.zeros((4, 4, 3), np.uint8)
    t1 = threading.Thread(target=model.infer, args=(frame,))
    t1.start()
    assert inside.wait(5)
    second_done = threading.Event()
    t2 = threading.Thread(target=lambda: (model.infer(frame), second_done.set()))
    t2.start()
    assert not second_done.wait(0.05)  # blocked on the instance lock while t1 is inside
    release.set()
    t1.join(5)
    t2.join(5)
    assert second_done.is_set() and concurrent == [1, 1]


def test_close_is_idempotent_and_final() -> None:
    model = FakeModel()
    with model:
        pass
    model.close()
    assert model.closed
    with pytest.raises(ModelLoadError, match="model 'fake' is closed"):
        model.infer(np.zeros((4, 4, 3), np.uint8))
