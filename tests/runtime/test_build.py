"""The composition root: ``build(settings)`` gives a runtime whose services share nothing with
another runtime's."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from aisp.cache import ModelKey
from aisp.errors import NotFoundError
from aisp.pipeline import CallbackSink, MemorySource, StreamSpec
from aisp.runtime import Runtime, build
from aisp.settings import load_settings


def _settings(tmp_path: Path, name: str, **env: str):
    return load_settings(environ=dict(env), data_dir=tmp_path / name)


@pytest.fixture
def two(tmp_path: Path):
    a = build(_settings(tmp_path, "a", AISP_CACHE_MAX_SIZE="2", AISP_MIN_DETECTION_CONFIDENCE="0.3"),
              store=False)
    b = build(_settings(tmp_path, "b", AISP_CACHE_MAX_SIZE="5", AISP_MIN_DETECTION_CONFIDENCE="0.8"),
              store=False)
    yield a, b
    a.close()
    b.close()


def test_each_runtime_is_built_from_its_own_settings(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    assert (a.cache.max_size, b.cache.max_size) == (2, 5)
    assert (a.models.config.min_detection_confidence, b.models.config.min_detection_confidence) == (0.3, 0.8)
    assert a.models.cache is a.cache and b.models.cache is b.cache
    assert a.engine is not b.engine and a.system is not b.system


def test_two_runtimes_do_not_see_each_others_models_or_stats(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    model = a.models.load("fake")
    assert a.models.load("fake") is model
    assert a.cache.keys() == [ModelKey("fake")] and b.cache.keys() == []
    assert (a.cache.get_stats().loads, a.cache.get_stats().hits) == (1, 1)
    assert (b.cache.get_stats().loads, b.cache.get_stats().requests) == (0, 0)
    status = {info.name: info.status for info in a.models.list()}
    assert status["fake"] == "loaded"
    assert {info.name: info.status for info in b.models.list()}["fake"] == "available"
    assert b.models.load("fake") is not model


def test_two_runtimes_do_not_see_each_others_streams(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    frames = [np.zeros((8, 8, 3), np.uint8)] * 3
    done = threading.Event()
    seen: list[int] = []

    def on_result(result) -> None:
        seen.append(result.frame.index)
        if len(seen) == 3:
            done.set()

    a.engine.add_stream(StreamSpec("cam", MemorySource(frames), ["fake"]), [CallbackSink(on_result)],
                        start=True)
    assert done.wait(30)
    assert [v.id for v in a.streams()] == ["cam"] and b.streams() == []
    assert a.streams()[0].stats.frames_out == 3
    with pytest.raises(NotFoundError):
        b.engine.get_stream("cam")
    # the same id is free in the other runtime
    b.engine.add_stream(StreamSpec("cam", MemorySource(frames), ["fake"]))
    assert [v.id for v in b.streams()] == ["cam"] and b.streams()[0].stats.frames_out == 0
    assert a.streams()[0].stats.frames_out == 3


def test_sample_reads_this_runtimes_streams_cache_and_process(two: tuple[Runtime, Runtime]) -> None:
    a, _ = two
    empty = a.sample()
    assert empty["fps"] == 0.0 and empty["latency_p99"] is None and empty["hit_rate"] is None
    a.models.load("fake")
    a.models.load("fake")
    m = a.sample()
    assert m["hit_rate"] == 0.5 and m["rss"] > 1


def test_store_is_built_closed_and_optional(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "s")
    with build(settings) as rt:
        assert rt.store is not None and not rt.store.is_open
        rt.store.open()
        assert rt.store.is_open and rt.store.url == settings.resolved_database_url
    assert not rt.store.is_open  # closed with the runtime
    with build(settings, store=False) as bare:
        assert bare.store is None


def test_store_factory_replaces_the_store(tmp_path: Path) -> None:
    from aisp.store import Store

    settings = _settings(tmp_path, "f")
    urls: list[str] = []

    def factory(url: str) -> Store:
        urls.append(url)
        return Store(url, settings=settings)

    with build(settings, store_factory=factory) as rt:
        assert urls == [settings.resolved_database_url] and isinstance(rt.store, Store)


def test_close_is_idempotent_and_releases_models(tmp_path: Path) -> None:
    rt = build(_settings(tmp_path, "c"), store=False)
    model = rt.models.load("fake")
    rt.close()
    rt.close()
    assert model.closed and rt.cache.keys() == []


def test_prewarm_uses_the_settings_and_this_runtimes_registry(tmp_path: Path) -> None:
    with build(_settings(tmp_path, "p", AISP_PREWARM="fake"), store=False) as rt:
        report = rt.prewarm()
        assert report.ok and rt.cache.keys() == [ModelKey("fake")]
        assert rt.system.warm().warm
