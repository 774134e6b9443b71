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
        "ModelKey",
        "CacheConfig",
        "CacheStats",
        "ModelStats",
        "CacheReport",
        "PrewarmReport",
        "PrewarmHandle",
        "PrewarmState",
        "CacheCollector",
    } <= set(aisp.cache.__all__)


def test_process_wide_entry_points_are_gone() -> None:
    """The process-wide cache and name resolver moved to ``aisp.runtime``; the cache package has none."""
    for name in (
        "get_model_cache",
        "reset_model_cache",
        "prewarm_from_settings",
        "set_name_resolver",
        "get_name_resolver",
        "resolve_loader",
    ):
        assert not hasattr(aisp.cache, name), name
        assert name not in aisp.cache.__all__


def test_import_is_light() -> None:
    code = (
        "import sys, aisp.cache; "
        "heavy = [m for m in ('numpy', 'cv2', 'mediapipe', 'onnxruntime', 'av', 'fastapi', 'sqlalchemy', "
        "'prometheus_client') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
