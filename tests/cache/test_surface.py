"""The public surface of aisp.cache, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import aisp.cache


def test_all_names_resolve() -> None:
    for name in aisp.cache.__all__:
        assert getattr(aisp.cache, name) is not None, name
    assert {
        "ModelCache",
        "get_model_cache",
        "reset_model_cache",
        "set_name_resolver",
        "PrewarmReport",
        "PrewarmHandle",
        "CacheCollector",
    } <= set(aisp.cache.__all__)


def test_import_is_light() -> None:
    code = (
        "import sys, aisp.cache; "
        "heavy = [m for m in ('numpy', 'cv2', 'mediapipe', 'onnxruntime', 'av', 'fastapi', 'sqlalchemy', "
        "'prometheus_client') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
