"""Registry: names, cache keys, loading through the model cache, status listing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from aisp.errors import MissingDependencyError, ModelLoadError, NotFoundError, ValidationError
from aisp.models import (
    BUILTIN_NAMES,
    FakeModel,
    Model,
    list_models,
    load_model,
    model_names,
    register_model,
    unregister_model,
)


@pytest.fixture
def custom_model():
    made: list[FakeModel] = []

    def factory() -> FakeModel:
        made.append(FakeModel("unit_custom", thread_safe=False, size_bytes=4096))
        return made[-1]

    register_model("unit_custom", factory, backend="fake", thread_safe=False, description="test")
    yield made
    unregister_model("unit_custom")


def test_builtins_are_registered() -> None:
    assert set(BUILTIN_NAMES) <= set(model_names())
    model = load_model("fake", cache=False)
    assert isinstance(model, Model) and model.name == "fake" and model.thread_safe


def test_unknown_and_bad_names() -> None:
    with pytest.raises(NotFoundError) as info:
        load_model("nope", cache=False)
    assert "unknown model 'nope'" in info.value.message and "face_detection" in info.value.message
    assert info.value.status_code == 404
    with pytest.raises(ValidationError, match="expected a non-empty string, got 3"):
        load_model(3, cache=False)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="expected 'onnx:<path to .onnx file>'"):
        load_model("onnx:", cache=False)
    with pytest.raises(ValidationError, match="without '#'"):
        register_model("a#b", FakeModel)
    with pytest.raises(ValidationError, match="expected a callable"):
        register_model("x", 3)  # type: ignore[arg-type]


def test_cached_loads_share_and_instances_separate(settings, custom_model) -> None:
    from aisp.cache import get_model_cache

    a = load_model("unit_custom")
    assert load_model("unit_custom") is a
    w1 = load_model("unit_custom", instance="w1")
    w2 = load_model("unit_custom", instance="w2")
    assert len({id(a), id(w1), id(w2)}) == 3 and load_model("unit_custom", instance="w1") is w1
    assert {"unit_custom", "unit_custom#w1", "unit_custom#w2"} <= set(get_model_cache().names())
    # thread-safe models ignore the instance: one shared object under the plain name
    assert load_model("fake", instance="w1") is load_model("fake")
    with pytest.raises(ValidationError, match="instance: expected a non-empty string"):
        load_model("unit_custom", instance="")
    assert len(custom_model) == 3


@pytest.fixture
def registry_resolver():
    """The registry as the cache's resolver (what importing aisp.models does), restored after."""
    from aisp.cache import get_name_resolver, set_name_resolver
    from aisp.models import install_cache_resolver

    before = get_name_resolver()
    install_cache_resolver()
    yield
    set_name_resolver(before)


def test_prewarm_through_the_cache_resolver(settings, custom_model, registry_resolver) -> None:
    from aisp.cache import get_model_cache

    cache = get_model_cache()
    report = cache.prewarm(["unit_custom", "unit_custom#w9"])
    assert report.ok and report.loaded == ["unit_custom", "unit_custom#w9"], report.to_dict()
    assert {"unit_custom", "unit_custom#w9"} <= set(cache.names())
    assert load_model("unit_custom", instance="w9") is custom_model[1]


def test_list_models_statuses(settings, custom_model) -> None:
    infos = {i.name: i for i in list_models()}
    assert infos["unit_custom"].status == "available" and infos["unit_custom"].load_ms is None
    assert infos["onnx:<path>"].backend == "onnx"
    load_model("unit_custom", instance="w1")
    info = {i.name: i for i in list_models()}["unit_custom"]
    assert info.status == "loaded" and info.size_bytes == 4096 and info.load_ms is not None
    assert info.instances == 1 and info.to_dict()["install_hint"] is None


def test_missing_dependency_is_reported(settings, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    infos = {i.name: i for i in list_models()}
    fd = infos["face_detection"]
    assert fd.status == "missing_dependency" and fd.extra == "mediapipe"
    assert fd.install_hint == "pip install 'aisp[mediapipe]'"
    with pytest.raises(MissingDependencyError) as info:
        load_model("face_detection", cache=False)
    assert info.value.extra == "mediapipe" and "pip install 'aisp[mediapipe]'" in info.value.message
    assert info.value.status_code == 501


def test_factory_failures_become_model_load_errors(settings) -> None:
    def broken() -> Model:
        raise RuntimeError("weights missing")

    register_model("unit_broken", broken)
    try:
        with pytest.raises(
            ModelLoadError, match="cannot load model 'unit_broken': RuntimeError: weights missing"
        ):
            load_model("unit_broken")
    finally:
        unregister_model("unit_broken")


def test_registered_model_runs(settings) -> None:
    register_model("unit_boxes", lambda: FakeModel("unit_boxes", boxes=[[0, 0, 2, 2]]))
    try:
        r = load_model("unit_boxes").infer(np.zeros((4, 4, 3), np.uint8))
        assert r.model == "unit_boxes" and r.detections.xyxy.tolist() == [[0, 0, 2, 2]]
    finally:
        unregister_model("unit_boxes")
