"""`aisp bench models --quick` runs and reports medians and the overhead comparison."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_quick_benchmark_reports_every_model(settings) -> None:
    from aisp.bench.models import MEDIAPIPE_MODELS, OTHER_MODELS, run

    out = run(quick=True)
    assert out["frame"] == {"width": 640, "height": 480, "source": "skimage astronaut"}
    for name in (*MEDIAPIPE_MODELS, *OTHER_MODELS):
        row = out["models"][name]
        assert row["ms_per_frame_median"] > 0 and row["frames"] == out["frames_per_model"], (name, row)
    for name in MEDIAPIPE_MODELS:
        over = out["models"][name]["overhead"]
        assert over["raw_mediapipe_ms_median"] > 0 and over["aisp_ms_median"] > 0
        assert 0 < over["aisp_own_ms_median"] < over["raw_mediapipe_ms_median"]
    assert out["models"]["face_detection"]["detections"] == 1
    assert isinstance(out["overhead_goal_met"], bool)
