"""``SystemView``: one definition of CPU, memory and the warm state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aisp.cache import ModelCache
from aisp.runtime import SystemView
from aisp.settings import load_settings


@pytest.fixture
def cache() -> Iterator[ModelCache]:
    c = ModelCache(background_sweep=False)
    yield c
    c.close()


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _view(tmp_path: Path, cache: ModelCache, clock: Clock, prewarm: str = "") -> SystemView:
    settings = load_settings(environ={"AISP_PREWARM": prewarm} if prewarm else {}, data_dir=tmp_path)
    return SystemView(settings, cache, clock=clock, min_interval=0.5)


def test_cpu_needs_a_window_and_is_shared_by_close_readers(tmp_path: Path, cache: ModelCache) -> None:
    clock = Clock()
    view = _view(tmp_path, cache, clock)
    first = view.process()
    assert first.cpu_percent is None and first.rss_mb > 1 and first.threads >= 1  # at the start
    clock.t += 0.1
    assert view.process().cpu_percent is None  # still within min_interval of the start
    sum(range(200_000))  # some CPU in this process
    clock.t += 1.0
    second = view.process().cpu_percent
    assert second is not None and second >= 0.0
    clock.t += 0.1
    assert view.process().cpu_percent == second  # a close reader gets the same figure
    assert 0.0 <= first.system_memory_percent <= 100.0


def test_warm_with_nothing_to_prewarm(tmp_path: Path, cache: ModelCache) -> None:
    state = _view(tmp_path, cache, Clock()).warm()
    assert state.warm and state.warmed_models == ()


def test_warm_once_every_prewarm_model_is_held(tmp_path: Path, cache: ModelCache) -> None:
    view = _view(tmp_path, cache, Clock(), prewarm="a,b")
    assert not view.warm().warm
    cache.prewarm({"a": object}, background=False)
    assert not view.warm().warm  # b is missing
    cache.put("b#w0", object())  # any instance of b counts
    state = view.warm()
    assert state.warm and state.warmed_models == ("a",)
