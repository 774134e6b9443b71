"""The public surface of aisp.models is stated explicitly."""

from __future__ import annotations

import aisp.models as models

EXPECTED = {
    "BUILTIN_NAMES",
    "ONNX_PREFIX",
    "Classification",
    "Detections",
    "FakeModel",
    "Landmarks",
    "Mask",
    "Model",
    "ModelInfo",
    "ModelResult",
    "ModelSpec",
    "annotate",
    "cache_key",
    "get_spec",
    "install_cache_resolver",
    "list_models",
    "load_model",
    "model_names",
    "register_model",
    "replace_background",
    "resolve_loader",
    "segment_and_replace",
    "unregister_model",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(models.__all__) == EXPECTED
    for name in models.__all__:
        assert getattr(models, name) is not None, name


def test_lazy_top_level_names() -> None:
    import aisp

    assert aisp.load_model is models.load_model and aisp.list_models is models.list_models


def test_cache_resolver_is_installed_on_import() -> None:
    """A fresh process: importing aisp.models makes the cache resolve names through the registry
    (checked in a subprocess, since other tests swap the process-wide resolver)."""
    import subprocess
    import sys

    code = (
        "import aisp.models, aisp.cache; "
        "assert aisp.cache.get_name_resolver() is aisp.models.resolve_loader; "
        "print(aisp.cache.resolve_loader('fake')().name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "fake"


def test_install_cache_resolver() -> None:
    from aisp.cache import get_name_resolver, set_name_resolver

    before = get_name_resolver()
    try:
        set_name_resolver(None)
        assert models.install_cache_resolver() is True
        assert get_name_resolver() is models.resolve_loader
    finally:
        set_name_resolver(before)


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
