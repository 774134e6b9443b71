"""The frames fast path (aisp.api.fastpath): the same answers as the route, for exactly the
requests it may take; everything else is left to the route."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Harness, assert_error, encode, start_app, test_image

URL = "/api/frames/process"


def counts(api: Harness) -> tuple[int, int]:
    fp = api.ctx.fast_path
    assert fp is not None, "the app did not build its fast path"
    return fp.handled, fp.passed


def astronaut_jpeg() -> bytes:
    import cv2
    import skimage.data

    return encode(cv2.cvtColor(cv2.resize(skimage.data.astronaut(), (640, 480)), cv2.COLOR_RGB2BGR))


def test_same_answer_as_the_route(api: Harness) -> None:
    data = astronaut_jpeg()
    api.client.post(f"{URL}?models=fake", content=encode(test_image()))  # the key is verified now
    h0, p0 = counts(api)
    fast = api.client.post(
        f"{URL}?models=face_detection", content=data, headers={"Content-Type": "image/jpeg"}
    )
    assert counts(api) == (h0 + 1, p0)
    routed = api.client.post(f"{URL}?models=face_detection", files={"file": ("a.jpg", data, "image/jpeg")})
    assert counts(api) == (h0 + 1, p0 + 1)
    assert fast.status_code == routed.status_code == 200, (fast.text, routed.text)
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    a, b = fast.json(), routed.json()
    for body in (a, b):
        body["models"]["face_detection"].pop("inference_ms")  # timings differ; results may not
    for key in ("width", "height", "format", "decode_scale", "models"):
        assert a[key] == b[key], key
    assert a["models"]["face_detection"]["num_detections"] >= 1
    assert fast.headers["x-request-id"] and fast.headers["x-request-id"] != routed.headers["x-request-id"]


def test_a_key_not_verified_yet_is_verified_by_the_gate_then_fast(api: Harness) -> None:
    """The security gate verifies the key (one store lookup) before the fast path runs, so even
    the first request with a new key is answered fast."""
    _, key = api.ctx.store.keys.create("admin", "fast-path-new-key")
    api.ctx.auth.forget()
    h0, p0 = counts(api)
    body = encode(test_image())
    first = api.client.post(f"{URL}?models=fake", content=body, headers={"X-API-Key": key})
    second = api.client.post(f"{URL}?models=fake", content=body, headers={"X-API-Key": key})
    default = api.client.headers.pop("X-API-Key")
    try:  # the bearer token alone
        third = api.client.post(
            f"{URL}?models=fake", content=body, headers={"Authorization": f"Bearer {key}"}
        )
    finally:
        api.client.headers["X-API-Key"] = default
    assert first.status_code == second.status_code == third.status_code == 200
    assert counts(api) == (h0 + 3, p0)


def test_requests_the_route_must_judge_are_passed_on(api: Harness) -> None:
    body = encode(test_image())
    api.client.post(f"{URL}?models=fake", content=body)
    h0, p0 = counts(api)
    cases = [
        (f"{URL}?models=fake&annotate=maybe", {}, 400, "VALIDATION_ERROR"),
        (f"{URL}?models=fake,nope", {}, 404, "NOT_FOUND"),
        (URL, {}, 400, "VALIDATION_ERROR"),
        (f"{URL}?models=fake", {"Content-Type": "text/html"}, 415, "UNSUPPORTED_MEDIA"),
    ]
    for url, headers, status, name in cases:
        err = assert_error(api.client.post(url, content=body, headers=headers), status, name)
        assert err["path"] == URL and err["method"] == "POST"
    # a parameter given twice: the route decides which one counts
    assert api.client.post(f"{URL}?models=nope&models=fake", content=body).status_code in (200, 404)
    assert counts(api) == (h0, p0 + len(cases) + 1)
    # a viewer or a wrong key never gets that far: the gate answers before the body is read
    for headers, status, name in ((api.h(api.viewer), 403, "FORBIDDEN"), ({"X-API-Key": "wrong"}, 401,
                                                                           "UNAUTHORIZED")):
        err = assert_error(api.client.post(f"{URL}?models=fake", content=body, headers=headers), status, name)
        assert err["path"] == URL and err["method"] == "POST"
    assert counts(api) == (h0, p0 + len(cases) + 1)


def test_errors_while_working_are_unified(api: Harness) -> None:
    data = encode(test_image())
    api.client.post(f"{URL}?models=fake", content=data)
    h0, _ = counts(api)
    err = assert_error(
        api.client.post(f"{URL}?models=fake", content=data[: len(data) // 2]), 400, "VALIDATION_ERROR"
    )
    assert "truncated" in err["message"] and err["path"] == URL and err["method"] == "POST"
    assert_error(
        api.client.post(f"{URL}?models=fake", content=b"\x00" * 64, headers={"Content-Type": "image/png"}),
        415,
        "UNSUPPORTED_MEDIA",
    )
    assert counts(api)[0] == h0 + 2
    assert api.client.post(f"{URL}?models=fake", content=data).status_code == 200


def test_annotate_and_flags(api: Harness) -> None:
    data = encode(test_image())
    api.client.post(f"{URL}?models=fake", content=data)
    h0, p0 = counts(api)
    r = api.client.post(f"{URL}?models=fake&annotate=1&reduced_decode=false", content=data)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert float(r.headers["x-inference-ms"]) >= 0 and r.content[:2] == b"\xff\xd8"
    r = api.client.post(f"{URL}?models=fake&annotate=FALSE&unknown=1", content=data)
    assert r.status_code == 200 and r.json()["decode_scale"] == 1
    assert counts(api) == (h0 + 2, p0)


def test_metrics_name_the_route(api: Harness) -> None:
    import re

    def count() -> float:
        text = api.client.get("/metrics").text
        pattern = r'aisp_http_requests_total\{[^}]*route="/api/frames/process"[^}]*status="200"[^}]*\} (\S+)'
        return sum(float(m) for m in re.findall(pattern, text))

    data = encode(test_image())
    api.client.post(f"{URL}?models=fake", content=data)
    before, (h0, _) = count(), counts(api)
    for _ in range(3):
        assert api.client.post(f"{URL}?models=fake", content=data).status_code == 200
    assert counts(api)[0] == h0 + 3
    assert count() == before + 3


def test_client_gone_before_its_body_gets_no_answer(api: Harness) -> None:
    from aisp.api.fastpath import FramesFastPath

    passed_on: list[Any] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        passed_on.append(scope)

    own = api.ctx.fast_path
    fast = FramesFastPath(route, ctx=api.ctx)
    api.ctx.fast_path = own  # the app's own stays the one the other tests count with
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": URL,
        "query_string": b"models=fake",
        "headers": [(b"x-api-key", api.admin.encode())],
    }
    api.ctx.auth.verify(api.admin)  # known, so the fast path takes the request
    asyncio.run(fast(scope, receive, send))
    assert fast.handled == 1 and not sent and not passed_on


@pytest.fixture(scope="module")
def api_no_fast_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from start_app(Path(tmp_path_factory.mktemp("api-nofast")), api_fast_path=False)


def test_turned_off_every_request_takes_the_route(api_no_fast_path: Harness) -> None:
    api = api_no_fast_path
    data = encode(test_image())
    for _ in range(2):
        assert api.client.post(f"{URL}?models=fake", content=data).status_code == 200
    assert counts(api) == (0, 0)
