"""Reading the API key (one function for every way in) and the role check (one function too)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext

import pytest
from starlette.datastructures import Headers
from starlette.websockets import WebSocketDisconnect

from aisp.api.auth import Principal, check_role, extract_api_key
from aisp.errors import ForbiddenError
from tests.api.conftest import Harness, assert_error


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # the X-API-Key header, any case of its name
        ({"X-API-Key": "hk"}, "hk"),
        ({"x-api-key": "hk"}, "hk"),
        # a bearer token: scheme in any case, spaces around the token dropped
        ({"Authorization": "Bearer bk"}, "bk"),
        ({"Authorization": "bearer bk"}, "bk"),
        ({"Authorization": "BEARER   bk  "}, "bk"),
        # the header wins over the bearer token
        ({"X-API-Key": "hk", "Authorization": "Bearer bk"}, "hk"),
        # an empty header counts as absent
        ({"X-API-Key": "", "Authorization": "Bearer bk"}, "bk"),
        ({"X-API-Key": ""}, None),
        # missing
        ({}, None),
        # malformed Authorization headers carry no key
        ({"Authorization": "Basic dXNlcjpwYXNz"}, None),
        ({"Authorization": "Bearer"}, None),
        ({"Authorization": "Bearer    "}, None),
        ({"Authorization": "bk"}, None),
        ({"Authorization": "Token bk"}, None),
    ],
)
def test_extract_api_key(headers: dict[str, str], expected: str | None) -> None:
    assert extract_api_key(Headers(headers=headers)) == expected


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


def test_query_key_is_refused_everywhere(api: Harness) -> None:
    no_header = {"X-API-Key": ""}
    for url in (
        f"/api/auth/whoami?key={api.admin}",
        f"/api/streams/ghost/mjpeg?key={api.viewer}",
    ):
        r = api.client.get(url, headers=no_header)
        assert "not accepted in URLs" in assert_error(r, 401, "UNAUTHORIZED")["message"], url
    r = api.client.get("/api/auth/whoami", headers={"X-API-Key": "", "Authorization": f"bearer {api.admin}"})
    assert r.status_code == 200 and r.json()["role"] == "admin"


def _ticket(api: Harness, path: str, key: str) -> str:
    r = api.client.post("/api/auth/ticket", json={"path": path}, headers={"X-API-Key": key})
    assert r.status_code == 201, r.text
    return r.json()["ticket"]


def test_tickets_and_bearer_on_the_watch_routes(api: Harness) -> None:
    no_header = {"X-API-Key": ""}
    # MJPEG: past auth, the stream is unknown (404), with a ticket or a bearer token, viewer too
    ticket = _ticket(api, "/api/streams/ghost/mjpeg", api.viewer)
    url = f"/api/streams/ghost/mjpeg?ticket={ticket}"
    assert_error(api.client.get(url, headers=no_header), 404, "NOT_FOUND")
    assert_error(api.client.get(url, headers=no_header), 401, "UNAUTHORIZED")  # single use
    bearer = {"X-API-Key": "", "Authorization": f"Bearer {api.viewer}"}
    assert_error(api.client.get("/api/streams/ghost/mjpeg", headers=bearer), 404, "NOT_FOUND")
    assert_error(
        api.client.get("/api/streams/ghost/mjpeg?ticket=wrong", headers=no_header), 401, "UNAUTHORIZED"
    )
    # the stream WebSocket: the same ways in (4404 = authorized, then an unknown stream)
    for url, headers, code in (
        (f"/ws/streams/ghost?ticket={_ticket(api, '/ws/streams/ghost', api.viewer)}", no_header, 4404),
        ("/ws/streams/ghost", bearer, 4404),
        (f"/ws/streams/ghost?key={api.viewer}", no_header, 4401),
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
            (f"/ws/live?ticket={_ticket(api, '/ws/live', api.viewer)}", {"X-API-Key": ""}),
            ("/ws/live", {"X-API-Key": api.viewer}),
        ):
            with api.client.websocket_connect(url, headers=headers) as ws:
                assert ws.receive_json() == {"type": "summary"}, url
        for url, headers in (
            ("/ws/live", {"X-API-Key": ""}),
            ("/ws/live", {"X-API-Key": "", "Authorization": "Basic abc"}),
            ("/ws/live?key=wrong", {"X-API-Key": ""}),
            (f"/ws/live?key={api.viewer}", {"X-API-Key": ""}),
            ("/ws/live?ticket=tkt_wrong", {"X-API-Key": ""}),
        ):
            with api.client.websocket_connect(url, headers=headers) as ws:
                assert ws.receive_json()["error"]["code"] == 401, url  # the unified body, then the close
                with pytest.raises(WebSocketDisconnect) as exc:
                    ws.receive_json()
                assert exc.value.code == 4401, url
    finally:
        state.dashboard_summary = old
