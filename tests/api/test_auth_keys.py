"""Reading the API key (one function for every way in) and the role check (one function too)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext

import pytest
from starlette.datastructures import Headers, QueryParams
from starlette.websockets import WebSocketDisconnect

from aisp.api.auth import Principal, check_role, extract_api_key
from aisp.errors import ForbiddenError
from tests.api.conftest import Harness, assert_error


@pytest.mark.parametrize(
    ("headers", "query", "allow_query", "expected"),
    [
        # the X-API-Key header, any case of its name
        ({"X-API-Key": "hk"}, "", False, "hk"),
        ({"x-api-key": "hk"}, "", True, "hk"),
        # a bearer token: scheme in any case, spaces around the token dropped
        ({"Authorization": "Bearer bk"}, "", False, "bk"),
        ({"Authorization": "bearer bk"}, "", False, "bk"),
        ({"Authorization": "BEARER   bk  "}, "", False, "bk"),
        # the header wins over the bearer token, the bearer token over ?key=
        ({"X-API-Key": "hk", "Authorization": "Bearer bk"}, "key=qk", True, "hk"),
        ({"Authorization": "Bearer bk"}, "key=qk", True, "bk"),
        # an empty header counts as absent
        ({"X-API-Key": "", "Authorization": "Bearer bk"}, "", False, "bk"),
        ({"X-API-Key": ""}, "key=qk", True, "qk"),
        # ?key= only where the route allows it
        ({}, "key=qk", True, "qk"),
        ({}, "key=qk", False, None),
        ({}, "key=a&key=b", True, "b"),  # the last one, as everywhere in Starlette
        ({}, "key=", True, None),
        ({}, "other=qk", True, None),
        # missing
        ({}, "", False, None),
        ({}, "", True, None),
        # malformed Authorization headers carry no key
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "", False, None),
        ({"Authorization": "Bearer"}, "", False, None),
        ({"Authorization": "Bearer    "}, "", False, None),
        ({"Authorization": "bk"}, "", False, None),
        ({"Authorization": "Token bk"}, "key=qk", True, "qk"),
    ],
)
def test_extract_api_key(
    headers: dict[str, str], query: str, allow_query: bool, expected: str | None
) -> None:
    got = extract_api_key(Headers(headers=headers), QueryParams(query), allow_query=allow_query)
    assert got == expected


@pytest.mark.parametrize(
    ("role", "method", "admin_only", "raises"),
    [
        ("admin", "POST", False, None),
        ("admin", "DELETE", True, None),
        ("admin", "GET", True, None),
        ("viewer", "GET", False, None),
        ("viewer", "HEAD", False, None),
        ("viewer", "OPTIONS", False, None),
        ("viewer", "get", False, None),
        ("viewer", "POST", False, "the 'viewer' role may only read; POST needs an admin key"),
        ("viewer", "DELETE", False, "the 'viewer' role may only read; DELETE needs an admin key"),
        ("viewer", "GET", True, "this route needs an admin key"),
        ("guest", "PUT", False, "the 'guest' role may only read; PUT needs an admin key"),
    ],
)
def test_check_role(role: str, method: str, admin_only: bool, raises: str | None) -> None:
    principal = Principal(role=role, key_id="k1", name="n")
    expectation: AbstractContextManager[object] = (
        nullcontext() if raises is None else pytest.raises(ForbiddenError, match=raises)
    )
    with expectation as caught:
        assert check_role(principal, method, admin_only=admin_only) is principal
    if raises is not None:
        assert caught.value.details["role"] == role  # type: ignore[union-attr]


def test_query_key_is_refused_on_ordinary_routes(api: Harness) -> None:
    no_header = {"X-API-Key": ""}
    r = api.client.get(f"/api/auth/whoami?key={api.admin}", headers=no_header)
    assert "missing API key" in assert_error(r, 401, "UNAUTHORIZED")["message"]
    r = api.client.get("/api/auth/whoami", headers={"X-API-Key": "", "Authorization": f"bearer {api.admin}"})
    assert r.status_code == 200 and r.json()["role"] == "admin"


def test_query_key_and_bearer_on_the_watch_routes(api: Harness) -> None:
    no_header = {"X-API-Key": ""}
    # MJPEG: past auth, the stream is unknown (404), with ?key= or a bearer token, viewer too
    assert_error(
        api.client.get(f"/api/streams/ghost/mjpeg?key={api.viewer}", headers=no_header), 404, "NOT_FOUND"
    )
    bearer = {"X-API-Key": "", "Authorization": f"Bearer {api.viewer}"}
    assert_error(api.client.get("/api/streams/ghost/mjpeg", headers=bearer), 404, "NOT_FOUND")
    assert_error(api.client.get("/api/streams/ghost/mjpeg?key=wrong", headers=no_header), 401, "UNAUTHORIZED")
    # the stream WebSocket: the same key sources (4404 = authorized, then an unknown stream)
    for url, headers, code in (
        (f"/ws/streams/ghost?key={api.viewer}", no_header, 4404),
        ("/ws/streams/ghost", bearer, 4404),
        ("/ws/streams/ghost", {"X-API-Key": "", "Authorization": "Basic abc"}, 4401),
    ):
        with api.client.websocket_connect(url, headers=headers) as ws:
            assert json.loads(ws.receive_text())["error"]["code"] == code - 4000
            with pytest.raises(WebSocketDisconnect) as exc:
                ws.receive_text()
            assert exc.value.code == code, url


class _Summary:
    """Stands in for the dashboard's shared summary: this test is about the key, not the summary."""

    def get(self) -> dict[str, str]:
        return {"type": "summary"}


def test_live_feed_reads_the_key_the_same_way(api: Harness) -> None:
    state = api.app.state
    old = getattr(state, "dashboard_summary", None)
    state.dashboard_summary = _Summary()
    try:
        for url, headers in (
            ("/ws/live", {"X-API-Key": "", "Authorization": f"Bearer {api.viewer}"}),
            (f"/ws/live?key={api.viewer}", {"X-API-Key": ""}),
            ("/ws/live", {"X-API-Key": api.viewer}),
        ):
            with api.client.websocket_connect(url, headers=headers) as ws:
                assert ws.receive_json() == {"type": "summary"}, url
        for url, headers in (
            ("/ws/live", {"X-API-Key": ""}),
            ("/ws/live", {"X-API-Key": "", "Authorization": "Basic abc"}),
            ("/ws/live?key=wrong", {"X-API-Key": ""}),
        ):
            with api.client.websocket_connect(url, headers=headers) as ws:
                with pytest.raises(WebSocketDisconnect) as exc:
                    ws.receive_json()
                assert exc.value.code == 4401, url
    finally:
        state.dashboard_summary = old
