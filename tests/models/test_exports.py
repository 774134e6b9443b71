"""The public surface of aisp.models is stated explicitly, and the package holds no process-wide
services (no load_model/list_models, no cache resolver, no settings reads)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aisp.models as models

EXPECTED = {
    "BUILTIN_NAMES",
    "ONNX_PREFIX",
    "Classification",
    "Detections",
    "FakeModel",
    "Landmarks",
    "LoadRecord",
    "Mask",
    "Model",
    "ModelConfig",
    "ModelInfo",
    "ModelRegistry",
    "ModelResult",
    "ModelSpec",
    "annotate",
    "get_spec",
    "model_names",
    "register_model",
    "replace_background",
    "segment_and_replace",
    "unregister_model",
}

PACKAGE = Path(models.__file__).parent


def test_all_is_exactly_the_public_surface() -> None:
    assert set(models.__all__) == EXPECTED
    for name in models.__all__:
        assert getattr(models, name) is not None, name


@pytest.mark.parametrize(
    "name", ["load_model", "list_models", "cache_key", "resolve_loader", "install_cache_resolver"]
)
def test_process_wide_entry_points_are_gone(name: str) -> None:
    """They live on a runtime now (``aisp.runtime.load_model`` uses the default runtime)."""
    assert not hasattr(models, name)


def test_lazy_top_level_names() -> None:
    import aisp
    import aisp.runtime

    assert aisp.load_model is aisp.runtime.load_model and aisp.list_models is aisp.runtime.list_models


def _calls_and_imports(path: Path) -> tuple[set[str], set[str]]:
    calls, imported = set(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            calls.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    return calls, imported


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_process_globals_in_models(path: Path) -> None:
    calls, imported = _calls_and_imports(path)
    assert not calls & {"get_settings", "set_settings", "get_model_cache", "load_model"}, path.name
    assert not {m for m in imported if m.startswith(("aisp.runtime", "aisp.pipeline", "aisp.api"))}


def test_results_and_yolo_postprocess_do_not_import_each_other_both_ways() -> None:
    _, imported = _calls_and_imports(PACKAGE / "_yolo_postprocess.py")
    assert "aisp.models.results" not in imported


def test_import_imports_no_backend() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import sys, json; import aisp.models; print(json.dumps([m for m in "
        "('cv2', 'mediapipe', 'onnxruntime', 'onnx', 'skimage') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout.strip()) == []
