"""``FramesQuery``: the one declaration of ``POST /api/frames/process``'s query, read by the route
(through FastAPI) and by the fast path (``FramesQuery.parse``) with the same rules and errors."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from starlette.datastructures import QueryParams

from aisp.api.schemas import MAX_MODELS_LEN, FramesQuery
from aisp.errors import ValidationError
from tests.api.conftest import Harness, assert_error, encode, test_image

URL = "/api/frames/process"
BOOL = "Input should be a valid boolean, unable to interpret input"
TOO_LONG = f"String should have at most {MAX_MODELS_LEN} characters"


def parse(query: str) -> FramesQuery:
    return FramesQuery.parse(QueryParams(query))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("models=fake", ("fake", False, None)),  # the defaults
        ("models=a,b&annotate=true&reduced_decode=false", ("a,b", True, False)),
        ("models=fake&unknown=1&ANNOTATE=true", ("fake", False, None)),  # unknown names ignored
        ("models=nope&models=fake", ("fake", False, None)),  # given twice: the last counts
        ("models=fake&annotate=maybe&annotate=1", ("fake", True, None)),
        ("models=" + "a" * MAX_MODELS_LEN, ("a" * MAX_MODELS_LEN, False, None)),
        ("models=" + "%C3%A9" * MAX_MODELS_LEN, ("\u00e9" * MAX_MODELS_LEN, False, None)),  # characters
        ("models=", ("", False, None)),  # valid here; names() refuses it
    ],
)
def test_parse(query: str, expected: tuple[str, bool, bool | None]) -> None:
    q = parse(query)
    assert (q.models, q.annotate, q.reduced_decode) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(v, True) for v in ("true", "1", "yes", "on", "t", "y", "TRUE", "Yes", "oN")],
        *[(v, False) for v in ("false", "0", "no", "off", "f", "n", "FALSE", "No")],
    ],
)
def test_booleans(value: str, expected: bool) -> None:
    assert parse(f"models=fake&annotate={value}").annotate is expected
    assert parse(f"models=fake&reduced_decode={value}").reduced_decode is expected


@pytest.mark.parametrize(
    ("query", "message", "field", "types"),
    [
        ("", "query.models: Field required", "models", ["missing"]),
        ("annotate=true", "query.models: Field required", "models", ["missing"]),
        ("models=fake&annotate=maybe", f"query.annotate: {BOOL}", "annotate", ["bool_parsing"]),
        ("models=fake&annotate=", f"query.annotate: {BOOL}", "annotate", ["bool_parsing"]),
        ("models=fake&annotate=%20true", f"query.annotate: {BOOL}", "annotate", ["bool_parsing"]),
        ("models=fake&annotate=2", f"query.annotate: {BOOL}", "annotate", ["bool_parsing"]),
        ("models=fake&annotate=1&annotate=maybe", f"query.annotate: {BOOL}", "annotate", ["bool_parsing"]),
        ("models=fake&reduced_decode=x", f"query.reduced_decode: {BOOL}", "reduced_decode", ["bool_parsing"]),
        ("models=" + "a" * (MAX_MODELS_LEN + 1), f"query.models: {TOO_LONG}", "models", ["string_too_long"]),
        (
            "annotate=maybe&reduced_decode=x",
            f"query.models: Field required; query.annotate: {BOOL}; query.reduced_decode: {BOOL}",
            "models",
            ["missing", "bool_parsing", "bool_parsing"],
        ),
    ],
)
def test_bad_queries(query: str, message: str, field: str, types: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(query)
    err = caught.value
    assert err.message == f"invalid request: {message}"
    assert err.details["field"] == field
    assert [e["type"] for e in err.details["errors"]] == types
    assert all(e["loc"][0] == "query" for e in err.details["errors"])


@pytest.mark.parametrize(
    ("models", "names"),
    [("fake", ["fake"]), (" a , b,a,, ", ["a", "b"]), ("onnx:/m/x.onnx,fake", ["onnx:/m/x.onnx", "fake"])],
)
def test_names(models: str, names: list[str]) -> None:
    assert FramesQuery(models=models).names() == names


@pytest.mark.parametrize("models", ["", ",", " , "])
def test_no_names_is_400(models: str) -> None:
    with pytest.raises(ValidationError, match="missing models") as caught:
        FramesQuery(models=models).names()
    assert caught.value.details["field"] == "models"


def test_frozen() -> None:
    q = parse("models=fake")
    with pytest.raises(pydantic.ValidationError):
        q.annotate = True  # type: ignore[misc]


def _without_time(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body["error"].items() if k not in ("timestamp", "path", "method")}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "models=fake&annotate=maybe",
        "annotate=maybe&reduced_decode=x",
        "models=" + "a" * (MAX_MODELS_LEN + 1),
        "models=fake&annotate=1&annotate=maybe",
    ],
)
def test_route_and_parse_give_the_same_error(api: Harness, query: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(query)
    r = api.client.post(f"{URL}?{query}", content=encode(test_image()))
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert err["path"] == URL and err["method"] == "POST"
    assert _without_time(r.json()) == _without_time(caught.value.to_body())


def test_fast_path_takes_every_boolean_the_route_takes(api: Harness) -> None:
    data = encode(test_image())
    api.client.post(f"{URL}?models=fake", content=data)  # the key is verified now
    fast_path = api.ctx.fast_path
    handled, passed = fast_path.handled, fast_path.passed
    for value in ("yes", "off", "T", "n"):
        r = api.client.post(f"{URL}?models=fake&annotate=n&reduced_decode={value}", content=data)
        assert r.status_code == 200, r.text
    r = api.client.post(f"{URL}?models=fake&annotate=on", content=data)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert (fast_path.handled, fast_path.passed) == (handled + 5, passed)
