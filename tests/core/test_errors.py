from __future__ import annotations

import pytest

from aisp import errors
from aisp.errors import AISPError, MissingDependencyError, NotFoundError, ValidationError


def test_unified_body_shape() -> None:
    body = ValidationError("bad frame", field="frame", expected="uint8").to_body(
        path="/api/frames/process", method="POST"
    )
    assert body["status"] == "error"
    err = body["error"]
    assert err["code"] == 400 and err["name"] == "VALIDATION_ERROR"
    assert err["message"] == "bad frame"
    assert err["details"] == {"field": "frame", "expected": "uint8"}
    assert err["path"] == "/api/frames/process" and err["method"] == "POST"
    assert err["timestamp"].endswith("Z")


def test_every_error_is_an_aisp_error_with_stable_name() -> None:
    names = set()
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, AISPError)
            assert 400 <= obj.status_code < 600
            names.add(obj.name)
    assert len(names) == len([n for n in errors.__all__ if n[0].isupper()])  # names are unique


def test_tree_is_drawn_in_the_docstring() -> None:
    for name in errors.__all__:
        if name[0].isupper():
            assert name in (errors.__doc__ or ""), name


def test_context_attributes() -> None:
    err = NotFoundError("no model 'x'", kind="model", key="x")
    assert (err.kind, err.key, err.status_code) == ("model", "x", 404)
    assert isinstance(err, LookupError)
    dep = MissingDependencyError("mediapipe", "mediapipe", model_name="pose")
    assert "pip install 'aisp[mediapipe]'" in dep.message
    assert dep.details["extra"] == "mediapipe" and isinstance(dep, ImportError)


def test_long_values_are_shortened() -> None:
    err = ValidationError("x", value="a" * 1000)
    assert len(err.details["value"]) <= 120


@pytest.mark.parametrize("cls", [errors.SourceError, errors.ModelLoadError, errors.OverloadedError])
def test_repr(cls: type[AISPError]) -> None:
    assert cls.__name__ in repr(cls("boom"))
