"""A missing or invalid ``.onnx`` inside the model dir (issue 13, item 13): 404 (missing) or 422
(invalid), naming the path relative to the model dir, never the absolute path, on every route that
loads models: frames (fast path and route), models load and prewarm, streams and tasks creation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Harness, assert_error, encode, test_image

URL = "/api/frames/process"


@pytest.fixture
def model_dir(api: Harness) -> Path:
    path: Path = api.settings.resolved_model_dir
    (path / "sub").mkdir(parents=True, exist_ok=True)
    (path / "sub" / "notes.onnx").write_text("this is not a model\n")
    # starts like a ModelProto (field 1 = ir_version 8) but the rest is garbage: fails in the loader
    (path / "sub" / "broken.onnx").write_bytes(b"\x08\x08" + b"\xff\x13garbage" * 64)
    return path


def _frames_raw(api: Harness, name: str) -> Any:
    return api.client.post(URL, params={"models": name}, content=encode(test_image()))


def _frames_multipart(api: Harness, name: str) -> Any:
    files = {"file": ("a.jpg", encode(test_image()), "image/jpeg")}
    return api.client.post(URL, params={"models": name}, files=files)


def _load(api: Harness, name: str) -> Any:
    from urllib.parse import quote

    return api.client.post(f"/api/models/{quote(name, safe='')}/load")


def _prewarm(api: Harness, name: str) -> Any:
    return api.client.post("/api/models/prewarm", json={"models": [name]})


def _stream(api: Harness, name: str) -> Any:
    return api.client.post("/api/streams", json={"source": "demo", "models": [name], "start": False})


def _task(api: Harness, name: str) -> Any:
    return api.client.post("/api/tasks", json={"source": "demo", "models": [name]})


ROUTES: list[Callable[[Harness, str], Any]] = [
    _frames_raw, _frames_multipart, _load, _prewarm, _stream, _task
]


def _no_absolute_path(response: Any, model_dir: Path) -> None:
    text = response.text
    assert str(model_dir) not in text and str(model_dir.parent) not in text, text


@pytest.mark.parametrize("route", ROUTES, ids=lambda f: f.__name__.strip("_"))
def test_missing_file_is_404_relative_to_the_model_dir(
    api: Harness, model_dir: Path, route: Callable[[Harness, str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(model_dir)  # onnx:<relative> resolves from the working directory
    name = "onnx:sub/missing.onnx" if route is not _load else "onnx:missing.onnx"
    r = route(api, name)
    err = assert_error(r, 404, "NOT_FOUND")
    rel = name.removeprefix("onnx:")
    assert f"'{rel}'" in err["message"] and err["details"]["path"] == rel
    assert err["details"]["field"] == "models"
    _no_absolute_path(r, model_dir)
    # an absolute path inside the model dir is reported relative to it all the same
    if route is not _load:
        r = route(api, f"onnx:{model_dir / 'sub' / 'missing.onnx'}")
        assert assert_error(r, 404, "NOT_FOUND")["details"]["path"] == "sub/missing.onnx"
        _no_absolute_path(r, model_dir)


@pytest.mark.parametrize("route", ROUTES, ids=lambda f: f.__name__.strip("_"))
def test_a_file_that_is_not_onnx_is_422(
    api: Harness, model_dir: Path, route: Callable[[Harness, str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(model_dir / "sub")
    name = "onnx:notes.onnx" if route is _load else f"onnx:{model_dir / 'sub' / 'notes.onnx'}"
    r = route(api, name)
    err = assert_error(r, 422, "INVALID_MODEL")
    assert "'sub/notes.onnx'" in err["message"] and "not an ONNX model" in err["message"]
    assert err["details"]["path"] == "sub/notes.onnx"
    _no_absolute_path(r, model_dir)


LOADING = [_frames_raw, _frames_multipart, _load]


@pytest.mark.parametrize("route", LOADING, ids=lambda f: f.__name__.strip("_"))
def test_a_file_the_loader_refuses_is_422(
    api: Harness, model_dir: Path, route: Callable[[Harness, str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(model_dir / "sub")
    name = "onnx:broken.onnx" if route is _load else f"onnx:{model_dir / 'sub' / 'broken.onnx'}"
    r = route(api, name)
    err = assert_error(r, 422, "INVALID_MODEL")
    assert "'sub/broken.onnx'" in err["message"] and "cannot be used" in err["message"]
    _no_absolute_path(r, model_dir)
    assert api.client.get("/health").status_code == 200


def test_prewarm_reports_a_broken_file_without_its_absolute_path(api: Harness, model_dir: Path) -> None:
    pytest.importorskip("onnxruntime")
    name = f"onnx:{model_dir / 'sub' / 'broken.onnx'}"
    r = api.client.post("/api/models/prewarm", json={"models": ["fake", name]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["loaded"] == ["fake"]
    assert "'sub/broken.onnx'" in body["failed"][name]
    assert str(model_dir) not in body["failed"][name]


def test_outside_the_model_dir_does_not_show_the_model_dir(api: Harness, model_dir: Path) -> None:
    r = _frames_raw(api, "onnx:/etc/hosts")
    err = assert_error(r, 403, "FORBIDDEN")
    assert "AISP_MODEL_DIR" in err["message"]
    _no_absolute_path(r, model_dir)


def test_public_load_error_strips_paths(tmp_path: Path) -> None:
    from aisp.api.modelops import public_load_error
    from aisp.errors import InvalidModelError, MissingDependencyError, ModelLoadError

    model_dir = tmp_path / "models"
    name = f"onnx:{model_dir / 'a' / 'm.onnx'}"
    exc = ModelLoadError(f"cannot load ONNX model '{model_dir / 'a' / 'm.onnx'}': [ONNXRuntimeError] bad")
    out = public_load_error(exc, name, model_dir)
    assert isinstance(out, InvalidModelError) and out.status_code == 422
    assert str(tmp_path) not in out.message and "'a/m.onnx'" in out.message
    assert out.message.endswith("[ONNXRuntimeError] bad")
    # a missing backend stays a 501, and a built-in model's error is left as it is
    missing = MissingDependencyError("onnxruntime", "onnx")
    assert public_load_error(missing, name, model_dir) is missing
    assert public_load_error(exc, "face_detection", model_dir) is exc
