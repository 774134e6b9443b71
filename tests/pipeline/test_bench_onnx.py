"""The ONNX workload of ``aisp bench pipeline`` on a short video: AISP and the naive loop see every
frame, in order, with identical results; the peer is reported as missing when it cannot run."""

from __future__ import annotations

import sys

import pytest

from aisp.bench.pipeline_onnx import compare_results, peer_run, run_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def test_short_onnx_workload(settings) -> None:
    result = run_onnx(settings, rounds=1, frames=40, whole_process=True)
    assert result["all_frames_in_order"] and result["results_identical"], result
    assert result["results_max_abs_diff"] == 0.0 or result["results_max_abs_diff"] <= 1e-5
    assert result["naive_fps_median"] > 0 and result["aisp_fps_median"] > 0
    assert result["cpu_plan"]["workers"] >= 1 and result["cpu_plan"]["ort_intra_op_threads"] >= 1
    whole = result["whole_process"]
    assert whole["naive"]["fps"] and whole["aisp"]["fps"], whole
    assert result["peer_roboflow"]["available"] is False
    resume = result["resume"]
    assert resume["start_frame"] == 26 and resume["first_frame_is_the_target"], resume


def test_peer_not_importable_is_a_clear_note(tmp_path) -> None:
    video, model = tmp_path / "v.mp4", tmp_path / "m.onnx"
    none = peer_run(None, video, model, 10)
    assert none == {"available": False, "note": "no --peer-python given: Roboflow InferencePipeline not run"}
    missing = peer_run(str(tmp_path / "nope"), video, model, 10)
    assert not missing["available"] and "not an executable file" in missing["note"]
    import importlib.util

    if importlib.util.find_spec("inference") is not None:
        pytest.skip("Roboflow inference is installed here; the not-importable path needs an env without it")
    here = peer_run(sys.executable, video, model, 10)
    assert not here["available"] and "'import inference' fails" in here["note"], here


def test_compare_results() -> None:
    import numpy as np

    a = [np.zeros((2, 6)), np.ones((1, 6))]
    assert compare_results(a, [x.copy() for x in a]) == 0.0
    assert compare_results(a, [a[0], a[1] + 1e-3]) == pytest.approx(1e-3)
    assert compare_results(a, a[:1]) is None
    assert compare_results(a, [a[0], np.ones((2, 6))]) is None
