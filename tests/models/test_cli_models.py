"""`aisp models`: statuses, install hints, --load and --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _aisp(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    return subprocess.run(
        [sys.executable, "-m", "aisp", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_json_lists_every_model_and_loaded_ones() -> None:
    out = _aisp("models", "--json", "--load", "fake")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert {
        "face_detection",
        "face_detection_full",
        "face_mesh",
        "selfie_segmentation",
        "pose",
        "hands",
        "motion",
        "fake",
        "onnx:<path>",
    } <= set(rows)
    assert rows["fake"]["status"] == "loaded" and rows["fake"]["load_ms"] is not None
    assert rows["fake"]["size_bytes"] == 1024
    assert rows["face_detection"]["status"] == "available" and rows["face_detection"]["thread_safe"] is False
    assert rows["face_detection"]["size_bytes"] > 100_000  # the wheel's .tflite, before loading


def test_unknown_model_is_one_line_and_exit_2() -> None:
    out = _aisp("models", "--load", "nope")
    assert out.returncode == 2
    assert "unknown model 'nope'" in out.stderr and "Traceback" not in out.stderr


@pytest.fixture
def in_process(monkeypatch, tmp_path, capsys):
    """``aisp <args>`` in this process, through the root command (which loads the settings from a
    clean environment), returning what it printed."""
    from typer.testing import CliRunner

    from aisp.cli.main import app

    for key in [k for k in os.environ if k.startswith("AISP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AISP_DATA_DIR", str(tmp_path / "data"))

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout + capsys.readouterr().out

    return run


def test_table_shows_missing_dependency_hint(in_process, monkeypatch) -> None:
    from aisp.cli import _common

    monkeypatch.setitem(sys.modules, "mediapipe", None)
    monkeypatch.setattr(_common.console, "_width", 200)
    text = in_process("models")
    assert "missing_dependency" in text and "pip install 'aisp[mediapipe]'" in text
    assert "fake" in text and "per worker" in text


def test_json_in_process_after_load(in_process) -> None:
    out = in_process("models", "--json", "--load", "fake")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["fake"]["status"] == "loaded"


@pytest.mark.parametrize("module", ["aisp.cli.models", "aisp.bench.models"])
def test_cli_and_bench_modules_import_light(module: str) -> None:
    code = (
        f"import sys, json; import {module}; "
        "print(json.dumps([m for m in ('numpy', 'cv2', 'mediapipe', 'onnxruntime') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout.strip()) == []
