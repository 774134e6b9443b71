from __future__ import annotations

import sys
import threading

import pytest

from aisp._lazy import LazyRegistry, require
from aisp.errors import MissingDependencyError


def test_resolves_once_and_caches() -> None:
    reg = LazyRegistry()
    reg.register("join", "os.path:join")
    import os.path

    assert reg.get("join") is os.path.join
    assert reg.is_resolved("join")


def test_thread_safe_single_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = LazyRegistry()
    reg.register("dumps", "json:dumps")
    barrier = threading.Barrier(8)
    seen: list[object] = []

    def worker() -> None:
        barrier.wait()
        seen.append(reg.get("dumps"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    import json

    assert seen == [json.dumps] * 8


def test_unknown_name_is_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nope"):
        LazyRegistry().get("nope")


def test_bad_target_rejected() -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        LazyRegistry().register("x", "no_colon")


def test_missing_optional_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(MissingDependencyError) as info:
        require("mediapipe")
    assert "aisp[mediapipe]" in str(info.value)
    assert info.value.extra == "mediapipe"


def test_registry_maps_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    reg = LazyRegistry()
    reg.register("ort", "onnxruntime:InferenceSession")
    with pytest.raises(MissingDependencyError, match=r"aisp\[onnx\]"):
        reg.get("ort")


def test_package_getattr_unknown() -> None:
    import aisp

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        aisp.Nope  # noqa: B018
