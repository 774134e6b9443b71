"""The benchmark's building blocks, on a short video and the fake model (the figures are for `aisp bench`)."""

from __future__ import annotations

from aisp.bench.pipeline import engine_run, machine_load, make_video, naive_loop
from aisp.models.fake import FakeModel
from aisp.runtime import build


def test_bench_helpers_process_every_frame_in_order(settings, tmp_path) -> None:
    path = make_video(tmp_path / "b.mp4", 12)
    naive = naive_loop(path, FakeModel("fake"))
    assert naive["frames"] == 12 and naive["detections"] == 12 and naive["fps"] > 0
    with build(settings, store=False) as runtime:
        engine = engine_run(runtime, path, 2, model="fake")
    assert engine["frames"] == 12 and engine["in_order"] and engine["error"] is None and engine["drops"] == 0
    load = machine_load()
    assert load["cpus"] >= 1 and load["loadavg_1m"] >= 0
