"""API clients may load `onnx:<path>` models only from the model directory (AISP_MODEL_DIR)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import Harness, assert_error, encode, test_image

URL = "/api/frames/process"


@pytest.mark.parametrize("path", ["/etc/hosts", "../outside.onnx", "models/../../x.onnx"])
def test_paths_outside_the_model_dir_are_forbidden(api: Harness, path: str) -> None:
    r = api.client.post(URL, params={"models": f"onnx:{path}"}, content=encode(test_image()))
    err = assert_error(r, 403, "FORBIDDEN")
    assert "model directory" in err["message"] and err["details"]["field"] == "models"
    # the server keeps serving
    assert api.client.get("/health").status_code == 200


def test_tasks_and_prewarm_apply_the_same_rule(api: Harness) -> None:
    r = api.client.post("/api/tasks", json={"source": "demo", "models": ["onnx:/etc/passwd"]})
    assert_error(r, 403, "FORBIDDEN")
    r = api.client.post("/api/models/prewarm", json={"models": ["onnx:/etc/passwd"]})
    assert_error(r, 403, "FORBIDDEN")


def test_a_model_inside_the_model_dir_runs(api: Harness) -> None:
    from tests.models._onnx_builders import build_detector

    model_dir: Path = api.settings.resolved_model_dir
    model_dir.mkdir(parents=True, exist_ok=True)
    path = build_detector(model_dir / "det.onnx")
    r = api.client.post(URL, params={"models": f"onnx:{path}"}, content=encode(test_image()))
    assert r.status_code == 200, r.text
    result = r.json()["models"][f"onnx:{path}"]
    assert result["num_detections"] == len(result["detections"]) >= 1
