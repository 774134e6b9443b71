"""Prewarm: parallel loads, per-model results, failures isolated, keys via a resolver, background."""

from __future__ import annotations

import threading

import pytest

from aisp.cache import ModelKey, PrewarmHandle, PrewarmReport
from aisp.errors import NotFoundError, ValidationError
from tests.cache.helpers import Plain


def test_prewarm_mapping_loads_all_and_reports(make_cache, clock) -> None:
    cache = make_cache()

    def loader(cost):
        def load():
            clock.advance(cost)
            return Plain()

        return load

    report = cache.prewarm({"a": loader(0.2), "b": loader(0.1)}, max_workers=1)
    assert isinstance(report, PrewarmReport) and report.ok and report.finished
    assert report.loaded == ["a", "b"]
    assert report.results["a"].load_ms == pytest.approx(200.0)
    assert set(cache.names()) == {"a", "b"}
    assert cache.is_warmed_up() and cache.get_warmed_models() == ["a", "b"]


def test_one_failure_does_not_stop_the_others(make_cache) -> None:
    cache = make_cache()

    def broken():
        raise OSError("weights missing")

    report = cache.prewarm({"good": Plain, "bad": broken, "also_good": Plain}, max_workers=2)
    assert not report.ok
    assert report.results["bad"].status == "failed"
    assert "weights missing" in report.failed["bad"]
    assert sorted(report.loaded) == ["also_good", "good"]
    assert not cache.is_warmed_up()
    assert cache.get_warmed_models() == ["good", "also_good"]
    detailed = cache.get_detailed_stats().prewarm.to_dict()
    assert detailed["pending"] == ["bad"] and detailed["last_report"]["failed"]["bad"]
    state = cache.prewarm_state()
    assert state.pending == (ModelKey("bad"),) and state.warmed == (ModelKey("good"), ModelKey("also_good"))
    assert state.last_report is report and not state.is_warmed_up
    cache.get_or_load("bad", Plain)  # loaded later by anyone: now warmed up
    assert cache.is_warmed_up()


def test_prewarm_runs_in_parallel(make_cache) -> None:
    cache = make_cache()
    barrier = threading.Barrier(3)

    def loader():
        barrier.wait(10)  # only passes if three loads run at the same time
        return Plain()

    report = cache.prewarm({"a": loader, "b": loader, "c": loader}, max_workers=3)
    assert report.ok


def test_names_resolve_through_the_resolver_and_unknown_names_fail(make_cache) -> None:
    cache = make_cache()
    asked = []

    def resolver(key: ModelKey):
        asked.append(key)
        if key.name == "face_detection":
            return Plain
        raise NotFoundError(f"unknown model {key.name!r}", kind="model", key=str(key))

    report = cache.prewarm(["face_detection", "nope", "face_detection"], resolver=resolver)
    assert sorted(asked) == [ModelKey("face_detection"), ModelKey("nope")]  # keys, not text
    assert report.requested == ["face_detection", "nope"]  # duplicates dropped
    assert report.results["face_detection"].status == "ok"
    assert report.results["nope"].status == "failed"
    assert "unknown model 'nope'" in report.results["nope"].error
    assert cache.contains("face_detection")


def test_single_name_string_is_one_model(make_cache) -> None:
    cache = make_cache()
    report = cache.prewarm("solo", resolver=lambda name: Plain)
    assert report.requested == ["solo"] and report.ok


def test_names_without_a_resolver_are_refused_with_the_reason(make_cache) -> None:
    cache = make_cache()
    with pytest.raises(ValidationError, match="without a resolver") as exc:
        cache.prewarm(["x", "y#w1"])
    assert exc.value.field == "resolver" and "'y#w1'" in str(exc.value)
    assert cache.is_warmed_up()  # nothing was requested
    assert cache.prewarm({"x": Plain}).ok  # a mapping needs no resolver


def test_keys_with_instances_and_mixed_key_forms(make_cache) -> None:
    cache = make_cache()
    report = cache.prewarm(
        [ModelKey("pose"), "pose#w1", ModelKey("pose", "w1"), "pose"],
        resolver=lambda key: (lambda: Plain(size_bytes=len(str(key)))),
    )
    assert report.requested == ["pose", "pose#w1"]  # one job per key, whatever its form
    assert cache.keys() == [ModelKey("pose"), ModelKey("pose", "w1")] or set(cache.keys()) == {
        ModelKey("pose"),
        ModelKey("pose", "w1"),
    }
    assert cache.info(ModelKey("pose", "w1")).size_bytes == len("pose#w1")
    assert cache.get_warmed_models() == ["pose", "pose#w1"]
    state = cache.get_detailed_stats().prewarm
    assert state.requested == (ModelKey("pose"), ModelKey("pose", "w1")) and state.is_warmed_up


def test_mapping_keys_may_be_model_keys(make_cache) -> None:
    cache = make_cache()
    report = cache.prewarm({ModelKey("a", "t1"): Plain, "b": Plain})
    assert report.ok and report.loaded == ["a#t1", "b"]
    assert cache.contains(ModelKey("a", "t1")) and cache.contains("a#t1") and not cache.contains("a")


def test_resolver_returning_a_non_callable_fails_that_model(make_cache) -> None:
    cache = make_cache()
    report = cache.prewarm(["x"], resolver=lambda name: 42)
    assert report.results["x"].status == "failed" and "expected a loader" in report.results["x"].error


def test_background_returns_a_handle_at_once(make_cache) -> None:
    cache = make_cache()
    release = threading.Event()
    completed = []
    progress = []

    def loader():
        assert release.wait(10)
        return Plain()

    handle = cache.prewarm(
        {"a": loader, "b": Plain},
        background=True,
        on_progress=lambda result, done, total: progress.append((result.name, done, total)),
        on_complete=completed.append,
    )
    assert isinstance(handle, PrewarmHandle)
    assert not handle.done() and not cache.is_warmed_up()
    with pytest.raises(TimeoutError):
        handle.result(timeout=0.01)
    release.set()
    report = handle.result(timeout=10)
    assert handle.done() and report.ok and completed == [report]
    assert len(progress) == 2
    assert {p[0] for p in progress} == {"a", "b"} and {p[1] for p in progress} == {1, 2}
    assert cache.is_warmed_up()


def test_timeout_reports_unfinished_models(make_cache) -> None:
    cache = make_cache()
    release = threading.Event()

    def stuck():
        assert release.wait(10)
        return Plain()

    try:
        report = cache.prewarm({"fast": Plain, "stuck": stuck}, max_workers=2, timeout_seconds=0.2)
        assert report.results["fast"].status == "ok"
        assert report.results["stuck"].status == "timeout"
        assert not report.ok and not cache.is_warmed_up()
    finally:
        release.set()


def test_prewarm_complete_event(make_cache) -> None:
    cache = make_cache()
    done = threading.Event()
    got = []

    def on_event(e):
        if e.type == "prewarm_complete":
            got.append(e)
            done.set()

    cache.add_listener(on_event)
    cache.prewarm({"a": Plain})
    assert done.wait(10) and got[0].data["loaded"] == ["a"]


def test_empty_prewarm_is_warmed_up(make_cache) -> None:
    cache = make_cache()
    report = cache.prewarm([])  # no keys: no resolver needed
    assert report.ok and report.requested == [] and cache.is_warmed_up()


def test_callback_errors_are_logged(make_cache, caplog) -> None:
    cache = make_cache()

    def bad(*args):
        raise RuntimeError("callback bug")

    report = cache.prewarm({"a": Plain}, on_progress=bad, on_complete=bad)
    assert report.ok and "prewarm callback" in caplog.text
