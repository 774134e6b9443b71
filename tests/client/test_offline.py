"""The client without a server: configuration, encoding, error mapping, retries and paging
(httpx ``MockTransport``; an injected ``sleep`` records the waits instead of waiting)."""

from __future__ import annotations

import json
import logging
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from aisp import errors as E
from aisp.client import AsyncClient, Client, RemoteUnavailableError, RetryPolicy
from aisp.client._encode import encode_image
from aisp.client._errors import error_from_response

KEY = "aisp_0123456789ab_secretsecret"


def _err(
    code: int, name: str, message: str = "m", details: dict | None = None, **headers: str
) -> httpx.Response:
    body = E.error_body(code=code, name=name, message=message, details=details)
    return httpx.Response(code, json=body, headers=headers)


class Recorder:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _client(handler: Any, **kw: Any) -> tuple[Client, list[float]]:
    waits: list[float] = []
    c = Client("http://aisp.test", KEY, transport=httpx.MockTransport(handler), sleep=waits.append, **kw)
    return c, waits


# --- configuration ----------------------------------------------------------------------
def test_url_and_key_from_the_environment_and_never_shown() -> None:
    env = {"AISP_URL": "http://10.0.0.5:9000/", "AISP_API_KEY": KEY}
    rec = Recorder(httpx.Response(200, json={"status": "ok", "uptime_s": 1}))
    with Client(environ=env, transport=httpx.MockTransport(rec)) as c:
        assert c.config.base_url == "http://10.0.0.5:9000"
        c.health()
        assert KEY not in repr(c) and KEY not in repr(c.config) and KEY not in str(c.config)
    req = rec.requests[0]
    assert req.headers["x-api-key"] == KEY and KEY not in str(req.url)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://host", "http:// or https://"),
        ("http://user:pw@host", "credentials in the URL"),
        ("http://host/?key=x", "without query"),
        ("localhost:8000", "http:// or https://"),
    ],
)
def test_bad_urls_are_config_errors(url: str, match: str) -> None:
    with pytest.raises(E.ConfigError, match=match) as info:
        Client(url, environ={})
    assert "pw" not in str(info.value)


@pytest.mark.parametrize("key", ["a\r\nX-Evil: 1", "k\x00", "clé"])
def test_keys_that_could_split_a_header_are_refused(key: str) -> None:
    with pytest.raises(E.ConfigError, match="printable ASCII") as info:
        Client("http://127.0.0.1:1", key, environ={})
    assert key not in str(info.value)


# --- encoding ---------------------------------------------------------------------------
def _rgb() -> np.ndarray:
    img = np.zeros((32, 48, 3), np.uint8)
    img[:, :16] = (255, 0, 0)  # red, in RGB
    img[:, 16:32] = (0, 255, 0)
    img[:, 32:] = (0, 0, 255)
    return img


def test_numpy_rgb_is_encoded_as_rgb() -> None:
    body, ctype = encode_image(_rgb(), format="png")
    assert ctype == "image/png"
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, _rgb())
    body, ctype = encode_image(_rgb())
    assert ctype == "image/jpeg" and body[:3] == b"\xff\xd8\xff"
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert back[16, 5, 0] > 200 and back[16, 5, 2] < 60  # red stayed red


def test_pil_path_and_bytes(tmp_path) -> None:
    from PIL import Image

    body, ctype = encode_image(Image.fromarray(_rgb()), format="png")
    assert ctype == "image/png"
    assert np.array_equal(np.asarray(Image.open(__import__("io").BytesIO(body))), _rgb())
    rgba, _ = encode_image(Image.fromarray(np.dstack([_rgb(), np.full((32, 48), 9, np.uint8)])))
    assert rgba[:3] == b"\xff\xd8\xff"
    png, _ = encode_image(_rgb(), format="png")
    path = tmp_path / "x.png"
    path.write_bytes(png)
    assert encode_image(path) == (png, "image/png")  # sent as it is
    assert encode_image(str(path))[0] == png
    assert encode_image(png) == (png, "image/png")


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (b"GIF89a....", E.UnsupportedMediaError, "not a JPEG, PNG or WebP"),
        (np.zeros((4, 4, 3), np.float32), E.ValidationError, "uint8"),
        (np.zeros((4, 4, 5), np.uint8), E.ValidationError, r"\(H, W, 3\)"),
        (np.zeros((0, 4, 3), np.uint8), E.ValidationError, "empty"),
        (12, E.ValidationError, "expected a path, bytes"),
        ("/nonexistent/x.jpg", E.ValidationError, "cannot read"),
    ],
)
def test_bad_images(image: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        encode_image(image)


# --- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "name", "details", "cls", "attrs"),
    [
        (404, "NOT_FOUND", {"kind": "model", "key": "nope"}, E.NotFoundError,
         {"kind": "model", "key": "nope"}),
        (400, "VALIDATION_ERROR", {"field": "models"}, E.ValidationError, {"field": "models"}),
        (401, "UNAUTHORIZED", {}, E.UnauthorizedError, {}),
        (403, "SOURCE_NOT_ALLOWED", {"setting": "AISP_MEDIA_DIRS"}, E.SourceNotAllowedError,
         {"setting": "AISP_MEDIA_DIRS"}),
        (413, "PAYLOAD_TOO_LARGE", {"limit": 10, "actual": 20}, E.PayloadTooLargeError, {"limit": 10}),
        (501, "MISSING_DEPENDENCY", {"module": "onnxruntime", "extra": "onnx"}, E.MissingDependencyError,
         {"module": "onnxruntime", "extra": "onnx"}),
        (503, "OVERLOADED", {"retry_after": 2}, E.OverloadedError, {"retry_after": 2}),
        (405, "METHOD_NOT_ALLOWED", {}, E.AISPError, {"name": "METHOD_NOT_ALLOWED", "status_code": 405}),
        (409, "SOMETHING_NEW", {}, E.ConflictError, {"name": "SOMETHING_NEW"}),
        (422, "SOURCE_ERROR", {"source": "rtsp://cam"}, E.SourceError, {"source": "rtsp://cam"}),
    ],
)
def test_error_bodies_map_to_the_library_tree(code, name, details, cls, attrs) -> None:
    body = json.dumps(E.error_body(code=code, name=name, message="said the server", details=details)).encode()
    exc = error_from_response(code, body, {"x-request-id": "r1"})
    assert type(exc) is cls and exc.message == "said the server" and exc.details == details
    assert exc.request_id == "r1"
    for attr, value in attrs.items():
        assert getattr(exc, attr) == value


def test_a_non_json_error_keeps_the_status() -> None:
    exc = error_from_response(502, b"<html>bad gateway</html>", {}, method="GET", url="/api/x")
    assert type(exc) is E.AISPError and exc.status_code == 502 and "HTTP 502 for GET /api/x" in exc.message


# --- retries ----------------------------------------------------------------------------
def test_get_retries_503_with_retry_after_then_succeeds() -> None:
    rec = Recorder(_err(503, "OVERLOADED", **{"Retry-After": "2"}), _err(503, "STORE_ERROR"),
                   httpx.Response(200, json={"streams": []}))
    c, waits = _client(rec)
    assert c.streams.list() == []
    assert len(rec.requests) == 3 and waits == [2.0, 0.5]  # Retry-After, then the backoff


def test_retries_stop_after_the_policy_attempts() -> None:
    rec = Recorder(_err(503, "OVERLOADED", **{"Retry-After": "100"}))
    c, waits = _client(rec, retry=RetryPolicy(attempts=3, max_retry_after=5))
    with pytest.raises(E.OverloadedError):
        c.models.list()
    assert len(rec.requests) == 3 and waits == [5.0, 5.0]  # Retry-After capped


def test_writes_are_not_retried_on_503_or_a_broken_connection() -> None:
    rec = Recorder(_err(503, "OVERLOADED"))
    c, waits = _client(rec)
    with pytest.raises(E.OverloadedError):
        c.streams.create("demo", ["fake"])
    assert len(rec.requests) == 1 and waits == []
    rec = Recorder(httpx.ReadError("reset"))
    c, waits = _client(rec)
    with pytest.raises(RemoteUnavailableError, match="ReadError"):
        c.streams.delete("s1")
    assert len(rec.requests) == 1


def test_connect_errors_are_retried_for_every_call() -> None:
    ok = httpx.Response(201, json={"id": "s", "source": "demo", "models": ["fake"], "state": "running"})
    rec = Recorder(httpx.ConnectError("refused"), ok)
    c, waits = _client(rec)
    assert c.streams.create("demo", "fake").id == "s"
    assert waits == [0.25]


def test_frames_are_retried_as_idempotent() -> None:
    fake = {"model": "fake", "inference_ms": 1, "num_detections": 0, "detections": []}
    frame = {"width": 4, "height": 4, "format": "png", "models": {"fake": fake}, "inference_ms": {"fake": 1},
             "decode_ms": 1, "total_ms": 2}
    rec = Recorder(httpx.ReadError("reset"), _err(503, "OVERLOADED", **{"Retry-After": "1"}),
                   httpx.Response(200, json=frame))
    c, waits = _client(rec)
    out = c.process(np.zeros((4, 4, 3), np.uint8), ["fake"], format="png")
    assert len(out["fake"].detections) == 0 and waits == [0.25, 1.0]
    assert rec.requests[-1].url.params["models"] == "fake"
    assert rec.requests[-1].headers["content-type"] == "image/png"


def test_retry_logs_never_show_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c, _ = _client(Recorder(httpx.ConnectError("refused")))
    with pytest.raises(RemoteUnavailableError) as info:
        c.models.list()
    assert "retry" in caplog.text and KEY not in caplog.text and KEY not in str(info.value)


def test_ids_cannot_leave_their_path_segment() -> None:
    rec = Recorder(_err(404, "NOT_FOUND", details={"kind": "stream", "key": "../x"}))
    c, _ = _client(rec)
    with pytest.raises(E.NotFoundError):
        c.streams.get("../models?x=1")
    assert rec.requests[0].url.raw_path == b"/api/streams/..%2Fmodels%3Fx%3D1"


# --- events paging ----------------------------------------------------------------------
def _event(i: int) -> dict:
    return {"id": f"e{i:03d}", "type": "appeared", "stream_id": "cam", "time": 1000.0 + i, "label": "person"}


def test_events_follow_the_cursor_with_the_filters() -> None:
    pages = {None: ([0, 1], "c1"), "c1": ([2, 3], "c2"), "c2": ([4], None)}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/events"
        q = request.url.params
        assert q["stream"] == "cam" and q["label"] == "person" and q["limit"] == "2"
        assert q["since"] == "2026-01-01T00:00:00Z"
        ids, nxt = pages[q.get("cursor")]
        return httpx.Response(200, json={"events": [_event(i) for i in ids], "next_cursor": nxt})

    from datetime import datetime

    c, _ = _client(handler)
    events = list(c.events(stream="cam", label="person", since=datetime(2026, 1, 1), page_size=2))
    assert [e.id for e in events] == ["e000", "e001", "e002", "e003", "e004"]
    assert events[0].label == "person" and events[0].time == 1000.0
    assert [e.id for e in c.events(stream="cam", label="person", since=datetime(2026, 1, 1), page_size=2,
                                   max_events=3)] == ["e000", "e001", "e002"]


def test_events_stop_on_a_repeated_cursor() -> None:
    c, _ = _client(lambda r: httpx.Response(200, json={"events": [_event(1)], "next_cursor": "same"}))
    with pytest.raises(RemoteUnavailableError, match="same cursor"):
        list(c.events())


def test_events_limit_is_checked_before_sending() -> None:
    c, _ = _client(Recorder(httpx.Response(500)))
    with pytest.raises(E.ValidationError, match="limit"):
        c.events.page(limit=0)


# --- WebSocket auth ---------------------------------------------------------------------
def test_ws_auth_uses_a_ticket_when_offered_else_the_header() -> None:
    c, _ = _client(lambda r: httpx.Response(200, json={"ticket": "t/1", "expires_at": 1}))
    url, headers = c._ws_auth("/ws/streams/s")
    assert url == "ws://aisp.test/ws/streams/s?ticket=t%2F1" and headers == {}
    rec = Recorder(_err(404, "NOT_FOUND", "no route for POST /api/auth/ticket"))
    c, _ = _client(rec)
    for _ in range(2):
        url, headers = c._ws_auth("/ws/streams/s")
        assert url == "ws://aisp.test/ws/streams/s" and headers == {"X-API-Key": KEY}
    assert len(rec.requests) == 1  # asked once
    assert KEY not in url


# --- async ------------------------------------------------------------------------------
def test_async_client_retries_and_pages() -> None:
    import anyio

    rec = Recorder(_err(503, "OVERLOADED", **{"Retry-After": "1"}),
                   httpx.Response(200, json={"events": [_event(1)], "next_cursor": None}))
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    async def main() -> list[str]:
        async with AsyncClient("http://aisp.test", KEY, transport=httpx.MockTransport(rec), sleep=sleep) as c:
            assert KEY not in repr(c)
            return [e.id async for e in c.events(type="appeared")]

    assert anyio.run(main) == ["e001"] and waits == [1.0]
    assert rec.requests[-1].headers["x-api-key"] == KEY
