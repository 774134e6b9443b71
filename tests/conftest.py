"""Shared fixtures for the whole suite.

Services (PostgreSQL, ffmpeg, Chromium) are optional locally: a test that needs a missing one
skips with the reason. In CI ``AISP_TEST_REQUIRE_SERVICES=1`` turns those skips into failures,
because ``.ci/run`` installs and starts them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def require_service(available: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a service a test needs is missing."""
    if available:
        return
    if os.environ.get("AISP_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def settings(tmp_path: Path):
    """Settings with a temporary data dir and no environment influence; installed process-wide."""
    from aisp.settings import load_settings, set_settings

    s = load_settings(environ={}, data_dir=tmp_path / "data")
    set_settings(s)
    yield s
    set_settings(None)


@pytest.fixture(autouse=True)
def _isolate_process_globals() -> Iterator[None]:
    """Reset process-wide singletons (settings, model cache) after each test."""
    yield
    from aisp import settings as settings_mod

    settings_mod.set_settings(None)
    import sys

    cache_mod = sys.modules.get("aisp.cache")
    reset = getattr(cache_mod, "reset_model_cache", None) if cache_mod else None
    if reset is not None:
        reset()
