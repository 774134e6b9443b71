"""Fixtures for the models tests: real photos shipped with scikit-image, loaded once, and a
model registry of its own per test (no process-wide cache or settings)."""

from __future__ import annotations

import numpy as np
import pytest


def _rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photos from scikit-image (bundled with the package, no download)."""
    data = pytest.importorskip("skimage.data")
    names = ["astronaut", "camera", "coffee", "chelsea", "rocket", "horse", "cat"]
    return {name: _rgb(getattr(data, name)()) for name in names}


@pytest.fixture
def registry():
    """A registry of its own for one test: a fresh ModelCache and the default ModelConfig."""
    from aisp.cache import ModelCache
    from aisp.models import ModelConfig, ModelRegistry

    cache = ModelCache(background_sweep=False)
    yield ModelRegistry(cache, ModelConfig())
    cache.close()
