"""Registry: names, cache keys, loading through the registry's own cache, status listing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from aisp.cache import ModelCache
from aisp.cache.keys import ModelKey
from aisp.errors import MissingDependencyError, ModelLoadError, NotFoundError, ValidationError
from aisp.models import (
    BUILTIN_NAMES,
    FakeModel,
    Model,
    ModelConfig,
    ModelRegistry,
    get_spec,
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


@pytest.fixture
def configured_model():
    """A spec that takes the config, as the built-ins do: it records every config it gets."""
    seen: list[ModelConfig] = []

    def factory(config: ModelConfig) -> FakeModel:
        seen.append(config)
        return FakeModel("unit_configured", size_bytes=int(config.min_detection_confidence * 1000))

    register_model("unit_configured", factory, backend="fake", takes_config=True)
    yield seen
    unregister_model("unit_configured")


@pytest.fixture
def second_registry():
    cache = ModelCache(background_sweep=False)
    yield ModelRegistry(cache, ModelConfig(min_detection_confidence=0.9))
    cache.close()


def test_builtins_are_registered(registry) -> None:
    assert set(BUILTIN_NAMES) <= set(model_names())
    model = registry.load("fake", cache=False)
    assert isinstance(model, Model) and model.name == "fake" and model.thread_safe
    assert all(get_spec(name).takes_config for name in BUILTIN_NAMES)


def test_unknown_and_bad_names(registry) -> None:
    with pytest.raises(NotFoundError) as info:
        registry.load("nope", cache=False)
    assert "unknown model 'nope'" in info.value.message and "face_detection" in info.value.message
    assert info.value.status_code == 404
    with pytest.raises(ValidationError, match="expected a non-empty string, got 3"):
        registry.load(3, cache=False)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="expected 'onnx:<path to .onnx file>'"):
        registry.load("onnx:", cache=False)
    with pytest.raises(ValidationError, match="without '#'"):
        register_model("a#b", FakeModel)
    with pytest.raises(ValidationError, match="expected a callable"):
        register_model("x", 3)  # type: ignore[arg-type]


def test_cached_loads_share_and_instances_separate(registry, custom_model) -> None:
    a = registry.load("unit_custom")
    assert registry.load("unit_custom") is a
    w1 = registry.load("unit_custom", instance="w1")
    w2 = registry.load("unit_custom", instance="w2")
    assert len({id(a), id(w1), id(w2)}) == 3 and registry.load("unit_custom", instance="w1") is w1
    assert {"unit_custom", "unit_custom#w1", "unit_custom#w2"} <= {str(k) for k in registry.cache.keys()}
    # thread-safe models ignore the instance: one shared object under the plain name
    assert registry.load("fake", instance="w1") is registry.load("fake")
    with pytest.raises(ValidationError, match="instance: expected a non-empty string"):
        registry.load("unit_custom", instance="")
    assert len(custom_model) == 3


@pytest.mark.parametrize(
    ("name", "instance", "expected", "text"),
    [
        ("face_detection", None, ModelKey("face_detection"), "face_detection"),
        ("face_detection", "w1", ModelKey("face_detection", "w1"), "face_detection#w1"),
        ("motion", "cam1", ModelKey("motion", "cam1"), "motion#cam1"),
        ("fake", "w1", ModelKey("fake"), "fake"),  # thread-safe: the instance is dropped
        ("onnx:/m/yolo.onnx", "w1", ModelKey("onnx:/m/yolo.onnx"), "onnx:/m/yolo.onnx"),
    ],
)
def test_key_forms(registry, name: str, instance: str | None, expected: ModelKey, text: str) -> None:
    key = registry.key(name, instance)
    assert key == expected and isinstance(key, ModelKey) and str(key) == text
    assert ModelKey.parse(text) == key


@pytest.mark.parametrize(
    ("name", "instance", "error", "match"),
    [
        ("face_detection", "", ValidationError, "instance: expected a non-empty string without '#'"),
        ("face_detection", "a#b", ValidationError, "without '#', got 'a#b'"),
        ("face_detection", 3, ValidationError, "got 3"),
        ("nope", None, NotFoundError, "unknown model 'nope'"),
        ("", None, ValidationError, "expected a non-empty string"),
    ],
)
def test_bad_keys(registry, name, instance, error, match: str) -> None:
    with pytest.raises(error, match=match):
        registry.key(name, instance)


def test_loader_takes_keys_and_their_text(registry, custom_model) -> None:
    by_text = registry.loader("unit_custom#w3")()
    by_key = registry.loader(ModelKey("unit_custom", "w3"))()
    assert by_text is not by_key and by_text.name == by_key.name == "unit_custom"
    assert registry.last_load(ModelKey("unit_custom", "w3")) is not None
    assert registry.loader("fake#w1")().name == "fake"
    with pytest.raises(NotFoundError):
        registry.loader("nope#w1")


def test_prewarm_through_the_registry_loader(registry, custom_model) -> None:
    cache = registry.cache
    report = cache.prewarm(["unit_custom", "unit_custom#w9"], resolver=registry.loader)
    loaded = [str(k) for k in report.loaded]
    assert report.ok and loaded == ["unit_custom", "unit_custom#w9"], report.to_dict()
    assert {"unit_custom", "unit_custom#w9"} <= {str(k) for k in cache.keys()}
    assert registry.load("unit_custom", instance="w9") is custom_model[1]


def test_list_models_statuses(registry, custom_model) -> None:
    infos = {i.name: i for i in registry.list()}
    assert infos["unit_custom"].status == "available" and infos["unit_custom"].load_ms is None
    assert infos["onnx:<path>"].backend == "onnx"
    registry.load("unit_custom", instance="w1")
    info = {i.name: i for i in registry.list()}["unit_custom"]
    assert info.status == "loaded" and info.size_bytes == 4096 and info.load_ms is not None
    assert info.instances == 1 and info.to_dict()["install_hint"] is None


def test_load_time_comes_from_the_registry_timer(custom_model) -> None:
    ticks = iter([10.0, 10.25])
    registry = ModelRegistry(ModelCache(background_sweep=False), timer=lambda: next(ticks))
    try:
        model = registry.load("unit_custom")
        assert model.load_ms == pytest.approx(250.0)
        assert {i.name: i for i in registry.list()}["unit_custom"].load_ms == 250.0
    finally:
        registry.cache.close()


def test_missing_dependency_is_reported(registry, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    infos = {i.name: i for i in registry.list()}
    fd = infos["face_detection"]
    assert fd.status == "missing_dependency" and fd.extra == "mediapipe"
    assert fd.install_hint == "pip install 'aisp[mediapipe]'"
    with pytest.raises(MissingDependencyError) as info:
        registry.load("face_detection", cache=False)
    assert info.value.extra == "mediapipe" and "pip install 'aisp[mediapipe]'" in info.value.message
    assert info.value.status_code == 501


def test_factory_failures_become_model_load_errors(registry) -> None:
    def broken() -> Model:
        raise RuntimeError("weights missing")

    register_model("unit_broken", broken)
    try:
        with pytest.raises(
            ModelLoadError, match="cannot load model 'unit_broken': RuntimeError: weights missing"
        ):
            registry.load("unit_broken")
    finally:
        unregister_model("unit_broken")


def test_registered_model_runs(registry) -> None:
    register_model("unit_boxes", lambda: FakeModel("unit_boxes", boxes=[[0, 0, 2, 2]]))
    try:
        r = registry.load("unit_boxes").infer(np.zeros((4, 4, 3), np.uint8))
        assert r.model == "unit_boxes" and r.detections.xyxy.tolist() == [[0, 0, 2, 2]]
    finally:
        unregister_model("unit_boxes")


# --- configs and isolation --------------------------------------------------------------------
def test_spec_create_passes_the_config_only_when_asked(configured_model, custom_model) -> None:
    config = ModelConfig(min_detection_confidence=0.7)
    model = get_spec("unit_configured").create(config)
    assert configured_model == [config] and model.size_bytes == 700
    plain = get_spec("unit_custom").create(config)  # a zero-argument factory: called with nothing
    assert plain is custom_model[0]


def test_registry_hands_its_config_to_the_factory(registry, second_registry, configured_model) -> None:
    a = registry.load("unit_configured")
    b = second_registry.load("unit_configured")
    assert configured_model == [registry.config, second_registry.config]
    assert (a.size_bytes, b.size_bytes) == (500, 900)


def test_two_registries_see_neither_models_nor_load_figures_of_the_other(
    registry, second_registry, custom_model
) -> None:
    a = registry.load("unit_custom", instance="w1")
    assert second_registry.cache.keys() == []
    mine = {i.name: i for i in registry.list()}["unit_custom"]
    theirs = {i.name: i for i in second_registry.list()}["unit_custom"]
    assert mine.status == "loaded" and mine.instances == 1 and mine.load_ms is not None
    assert theirs.status == "available" and theirs.instances == 0 and theirs.load_ms is None
    assert second_registry.last_load(ModelKey("unit_custom", "w1")) is None
    b = second_registry.load("unit_custom", instance="w1")
    assert a is not b and registry.load("unit_custom", instance="w1") is a
    registry.cache.invalidate(ModelKey("unit_custom", "w1"))
    assert {i.name: i for i in second_registry.list()}["unit_custom"].status == "loaded"
    assert {i.name: i for i in registry.list()}["unit_custom"].status == "available"


def test_a_registry_without_a_cache_builds_every_time(custom_model) -> None:
    registry = ModelRegistry()
    assert registry.cache is None and registry.config == ModelConfig()
    assert registry.load("unit_custom") is not registry.load("unit_custom")
    assert {i.name: i for i in registry.list()}["unit_custom"].status == "available"
    assert "ModelRegistry(cache=None" in repr(registry)


def test_builtin_mediapipe_models_get_the_config() -> None:
    pytest.importorskip("mediapipe")
    config = ModelConfig(min_detection_confidence=0.7, mediapipe_graph_threads=1)
    model = get_spec("face_detection").create(config)
    try:
        assert model.options["min_detection_confidence"] == 0.7 and model.graph_threads == 1
    finally:
        model.close()
