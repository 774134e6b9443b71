"""Dynamic batching in the pipeline: batched results equal unbatched ones (element-wise within
1e-5), batches really form, and the scheduler's max queue delay behaves."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from aisp.bench.onnx_workload import build_yolo_like, make_counter_video
from aisp.cpu_budget import plan_cpu
from aisp.pipeline import CallbackSink, Engine, StreamSpec
from aisp.pipeline.scheduler import Scheduler

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    from aisp.models.onnx import OnnxModel

    path = build_yolo_like(tmp_path_factory.mktemp("bm") / "yolo.onnx")
    model = OnnxModel(path, name="onnx:yolo", intra_op_num_threads=1, allow_spinning=False)
    yield model
    model.close()


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (60, 80, 3), np.uint8).repeat(8, 0).repeat(8, 1)
    return [np.ascontiguousarray(np.roll(base, 7 * i, axis=1)) for i in range(6)]


def _sig(result) -> np.ndarray:
    d = result.detections
    return np.column_stack([d.xyxy, d.confidence, d.class_id]).astype(np.float64)


def test_the_benchmark_model_takes_batches_and_finds_objects(onnx_model, frames) -> None:
    assert onnx_model.supports_batch and onnx_model.input_size == (320, 320)
    assert onnx_model.session_threads == {"intra_op": 1, "inter_op": 0, "spinning": False}
    assert all(len(onnx_model.infer(f).detections) >= 1 for f in frames)  # something to compare


def test_batched_outputs_equal_single_ones(onnx_model, frames) -> None:
    x = np.stack([onnx_model._prepare(f)[0] for f in frames])
    batched = onnx_model._run(x)
    single = np.concatenate([onnx_model._run(x[i : i + 1]) for i in range(len(frames))])
    assert batched.shape == single.shape == (len(frames), 6, 1600)
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-5)
    together = onnx_model.infer_batch(frames)
    for frame, res in zip(frames, together, strict=True):
        alone = _sig(onnx_model.infer(frame))
        assert _sig(res).shape == alone.shape
        np.testing.assert_allclose(_sig(res), alone, rtol=0, atol=1e-5)


def _engine_results(settings, model, video: Path, plan) -> tuple[dict[int, np.ndarray], list[int]]:
    sizes: list[int] = []  # frames per call: batches through infer_batch, 1 for a lone infer
    real, real_one = model.infer_batch, model.infer

    def spy(images):
        sizes.append(len(images))
        return real(images)

    def spy_one(image):
        sizes.append(1)
        return real_one(image)

    spied = SimpleNamespace(supports_batch=model.supports_batch, infer=spy_one, infer_batch=spy)
    out: dict[int, np.ndarray] = {}
    engine = Engine(settings, lambda name, inst: spied, plan=plan, monitor_interval=None)
    try:
        sink = CallbackSink(lambda r: out.__setitem__(r.frame.index, _sig(r.results["yolo"])))
        stream = engine.add_stream(StreamSpec("s", str(video), ["yolo"]), [sink], start=True)
        assert stream.wait(60)
        assert stream.state == "stopped", stream.last_error
    finally:
        engine.shutdown(10)
    return out, sizes


def test_engine_batches_give_the_unbatched_results(settings, onnx_model, tmp_path) -> None:
    video = make_counter_video(tmp_path / "v.mp4", 24)
    off = plan_cpu(2, batching="off")
    on = plan_cpu(2, batching="on", batch_max_size=4, batch_max_delay_ms=200.0)
    alone, sizes_off = _engine_results(settings, onnx_model, video, off)
    together, sizes_on = _engine_results(settings, onnx_model, video, on)
    assert sorted(alone) == sorted(together) == list(range(24))
    assert sizes_off == [1] * 24  # batching off: one frame per call
    # on: every frame in exactly one call, some calls batched (a worker whose wait ran out, or the
    # file's last frame, may still run one frame alone)
    assert sum(sizes_on) == 24 and max(sizes_on) > 1 and max(sizes_on) <= 4
    for i in range(24):
        assert alone[i].shape == together[i].shape
        np.testing.assert_allclose(together[i], alone[i], rtol=0, atol=1e-5)


def test_engine_takes_the_plans_batch_policy(settings) -> None:
    plan = plan_cpu(2, batching="on", batch_max_size=6, batch_max_delay_ms=3.0)
    engine = Engine(settings, lambda n, i: None, plan=plan, monitor_interval=None)
    assert (engine.max_batch, engine.batch_delay) == (6, 0.003)
    plain = Engine(settings, lambda n, i: None, plan=plan_cpu(2), monitor_interval=None)
    assert (plain.max_batch, plain.batch_delay, plain.pool.size) == (1, 0.0, 2)
    explicit = Engine(settings, lambda n, i: None, plan=plan_cpu(2), max_batch=4, workers=3,
                      monitor_interval=None)
    assert (explicit.max_batch, explicit.batch_delay, explicit.pool.size) == (4, 0.0, 3)
    for e in (engine, plain, explicit):
        e.shutdown(1)


def _queue(s: Scheduler, **kw):
    args = {"priority": 0, "capacity": 8, "live": False, "drop_policy": "drop_oldest", "max_inflight": 100,
            "max_batch": 4, "on_drained": None, "batch_delay": 30.0}
    args.update(kw)
    return s.add("a", **args)


def _item(i: int):
    return SimpleNamespace(index=i, seq=-1)


def test_a_worker_waits_for_the_batch_to_fill() -> None:
    s = Scheduler()
    q = _queue(s)
    s.put(q, _item(0))
    got: list = []
    taken = threading.Event()

    def worker() -> None:
        got.append(s.get())
        taken.set()

    t = threading.Thread(target=worker)
    t.start()
    for i in range(1, 4):
        assert not taken.is_set()  # still one short of max_batch: the worker keeps waiting
        s.put(q, _item(i))
    assert taken.wait(10)  # full: taken at once, long before the 30 s delay
    t.join(10)
    assert [f.index for f in got[0][1]] == [0, 1, 2, 3]


def test_the_delay_bounds_the_wait_and_a_closed_queue_does_not_wait() -> None:
    s = Scheduler()
    q = _queue(s, batch_delay=0.05)
    s.put(q, _item(0))
    got = s.get(timeout=5)
    assert got is not None and [f.index for f in got[1]] == [0]  # partial batch after the delay
    s2 = Scheduler()
    q2 = _queue(s2)  # a 30 s delay, but the source has ended: no frame can come
    s2.put(q2, _item(0))
    s2.close(q2)
    got = s2.get(timeout=5)
    assert got is not None and [f.index for f in got[1]] == [0]


def test_capacity_smaller_than_the_batch_does_not_wait() -> None:
    s = Scheduler()
    q = _queue(s, capacity=2)
    s.put(q, _item(0))
    s.put(q, _item(1))
    got = s.get(timeout=5)  # the queue is full: no more can come before one is taken
    assert got is not None and len(got[1]) == 2
