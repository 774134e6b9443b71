"""Fixtures for the cache tests: a fake clock and small fake models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aisp.cache import ModelCache
from tests.cache.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_cache(clock: FakeClock) -> Iterator:
    """Factory for caches on the fake clock, without the background sweeper; closed afterwards."""
    caches: list[ModelCache] = []

    def make(**kwargs) -> ModelCache:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("background_sweep", False)
        cache = ModelCache(**kwargs)
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        cache.close()
