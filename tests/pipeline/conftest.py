"""Fixtures for the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline.helpers import FakeLoader, write_video


@pytest.fixture
def loader() -> FakeLoader:
    return FakeLoader()


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", n=30)
