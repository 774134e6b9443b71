"""Dynamic batching of ``POST /api/frames/process``: concurrent requests for an ONNX model with a
batch axis run as one batch, and each answer equals what the request gets alone (within 1e-5)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from aisp.api.batcher import FrameBatcher
from aisp.cpu_budget import BatchPolicy
from tests.api.conftest import encode, start_app

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

URL = "/api/frames/process"


def _images(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 255, (30, 40, 3), np.uint8).repeat(8, 0).repeat(8, 1)
    return [np.ascontiguousarray(np.roll(base, 37 * i, axis=1)) for i in range(n)]


def _rows(result: dict) -> np.ndarray:
    dets = result["detections"]
    return np.array([[*d["box"], d["confidence"], d["class_id"]] for d in dets], np.float64).reshape(-1, 6)


@pytest.fixture(scope="module")
def batching_api(tmp_path_factory):
    from aisp.bench.onnx_workload import build_yolo_like

    data_dir = tmp_path_factory.mktemp("batching")
    model_dir = data_dir / "models"
    model_dir.mkdir()
    path = build_yolo_like(model_dir / "yolo.onnx")
    # the longest delay: the batch is flushed by its fourth request, not by the timer
    for harness in start_app(data_dir, batching="on", batch_max_size=4, batch_max_delay_ms=1000.0,
                             inference_threads=2):
        harness.model = f"onnx:{path}"  # type: ignore[attr-defined]
        yield harness


def test_concurrent_requests_form_one_batch_with_the_unbatched_answers(batching_api) -> None:
    from aisp.models.onnx import OnnxModel

    api = batching_api
    name = api.model
    images = _images(4)
    bodies = [encode(img[:, :, ::-1].copy()) for img in images]  # cv2 writes BGR
    answers: list = [None] * 4
    go = threading.Barrier(4)

    def post(i: int) -> None:
        go.wait()
        params = {"models": name, "reduced_decode": "false"}
        answers[i] = api.client.post(URL, params=params, content=bodies[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(a is not None and a.status_code == 200 for a in answers), [a and a.text for a in answers]
    stats = api.ctx.batcher.stats()
    # one batch of 4, unless the machine held a request back for over a second
    assert stats["enabled"] and stats["frames"] == 4 and stats["batches"] < 4
    import cv2

    alone_model = OnnxModel(Path(name[5:]), name=name)
    for body, answer in zip(bodies, answers, strict=True):
        rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        alone = alone_model.infer(rgb)
        got = answer.json()["models"][name]
        assert len(alone.detections) >= 1
        # the same figures (boxes, scores, classes) as the request alone, as the API rounds them
        expected = {k: v for k, v in alone.to_dict().items() if k != "inference_ms"}
        assert {k: v for k, v in got.items() if k != "inference_ms"} == expected
        np.testing.assert_allclose(_rows(got)[:, :4], alone.detections.xyxy, rtol=0, atol=0.006)
    alone_model.close()


def test_annotated_and_plain_models_still_answer(batching_api) -> None:
    api = batching_api
    body = encode(_images(1)[0])
    r = api.client.post(URL, params={"models": f"{api.model},fake", "annotate": "true"}, content=body)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    r = api.client.post(URL, params={"models": "fake"}, content=body)  # not batched: no wait
    assert r.status_code == 200 and "fake" in r.json()["models"]


def test_cpu_plan_in_status(batching_api) -> None:
    plan = batching_api.client.get("/api/status").json()["cpu_plan"]
    expected = {"enabled": True, "max_size": 4, "max_delay_ms": 1000.0}
    assert plan["batching"] == plan["api_batching"] == expected
    assert plan["api_threads"] == 2 and plan["workers"] >= 1 and "batching" in plan["overrides"]


class _Pool:
    """A pool that runs jobs inline and can be made to fail."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.jobs = 0

    def thread_index(self) -> int:
        return 0

    async def run(self, fn, *args):
        self.jobs += 1
        if self.error is not None:
            raise self.error
        return fn(*args)


class _Registry:
    def __init__(self, model) -> None:
        self.model = model

    def load(self, name, instance=None):
        return self.model


def test_the_timer_flushes_a_partial_batch_and_errors_reach_every_request() -> None:
    from aisp.errors import OverloadedError
    from aisp.models.fake import FakeModel

    model = FakeModel("fake")
    frames = _images(3)

    registry = _Registry(model)

    async def scenario(pool, policy):
        batcher = FrameBatcher(policy)
        return batcher, await asyncio.gather(*(batcher.infer(pool, registry, "fake", f) for f in frames),
                                             return_exceptions=True)

    pool = _Pool()
    batcher, results = asyncio.run(scenario(pool, BatchPolicy(True, 8, 20.0)))  # 3 < 8: the timer fires
    assert pool.jobs == 1 and batcher.stats()["mean_batch"] == 3.0
    assert [r.num_detections for r in results] == [model.infer(f).num_detections for f in frames]
    failing = _Pool(OverloadedError("saturated", retry_after=1))
    _, results = asyncio.run(scenario(failing, BatchPolicy(True, 2, 20.0)))  # batches of 2, then 1
    assert failing.jobs == 2 and all(isinstance(r, OverloadedError) for r in results)
    assert not FrameBatcher(BatchPolicy(False)).enabled
    assert not FrameBatcher(BatchPolicy(True, 1)).enabled
    assert not FrameBatcher(BatchPolicy(True, 8)).batchable(model)  # only ONNX models are batched
