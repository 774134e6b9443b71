"""Auth (keys, roles, whoami, key management) and the unified error format."""

from __future__ import annotations

import logging

import pytest

from tests.api.conftest import Harness, assert_error


def test_open_routes_need_no_key(api: Harness) -> None:
    for path in ("/health", "/ready"):
        r = api.client.get(path, headers={"X-API-Key": ""})
        assert r.status_code == 200, (path, r.text)


@pytest.mark.parametrize(
    "path",
    [
        "/api/status",
        "/api/models",
        "/api/cache/stats",
        "/api/streams",
        "/api/tasks",
        "/metrics",
        "/api/auth/whoami",
    ],
)
def test_missing_key_is_401(api: Harness, path: str) -> None:
    r = api.client.get(path, headers={"X-API-Key": ""})
    err = assert_error(r, 401, "UNAUTHORIZED")
    assert "X-API-Key" in err["message"]


def test_wrong_key_is_401(api: Harness) -> None:
    for key in ("nonsense", "aisp_000000000000_wrongsecret", api.admin[:-2] + "xx"):
        r = api.client.get("/api/status", headers={"X-API-Key": key})
        assert_error(r, 401, "UNAUTHORIZED")
    assert api.client.get("/health").status_code == 200  # and the server keeps serving


def test_bearer_header_works(api: Harness) -> None:
    r = api.client.get("/api/auth/whoami", headers={"X-API-Key": "", "Authorization": f"Bearer {api.viewer}"})
    assert r.status_code == 200
    assert r.json()["role"] == "viewer" and r.json()["auth"] == "on"


def test_viewer_reads_but_cannot_write(api: Harness) -> None:
    h = api.h(api.viewer)
    assert api.client.get("/api/models", headers=h).status_code == 200
    err = assert_error(api.client.post("/api/cache/clear", headers=h), 403, "FORBIDDEN")
    assert err["details"]["role"] == "viewer"
    assert_error(api.client.get("/api/auth/keys", headers=h), 403, "FORBIDDEN")


def test_whoami_admin(api: Harness) -> None:
    body = api.client.get("/api/auth/whoami").json()
    assert body["role"] == "admin" and body["name"] == "test-admin"


def test_key_management_and_revocation(api: Harness) -> None:
    r = api.client.post("/api/auth/keys", json={"role": "viewer", "name": "ci"})
    assert r.status_code == 201, r.text
    created = r.json()
    token = created["key"]
    assert api.client.get("/api/status", headers=api.h(token)).status_code == 200
    listed = api.client.get("/api/auth/keys").json()["keys"]
    assert any(k["id"] == created["id"] and "key" not in k for k in listed)
    assert api.client.delete(f"/api/auth/keys/{created['id']}").json()["revoked"] is True
    assert_error(api.client.get("/api/status", headers=api.h(token)), 401, "UNAUTHORIZED")
    assert_error(api.client.delete("/api/auth/keys/doesnotexist"), 404, "NOT_FOUND")
    assert_error(
        api.client.post("/api/auth/keys", json={"role": "root", "name": "x"}), 400, "VALIDATION_ERROR"
    )


def test_first_start_creates_one_admin_key_in_a_file_not_the_log(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    from aisp.api.auth import INITIAL_KEY_FILE, ensure_initial_admin_key
    from aisp.settings import load_settings
    from aisp.store import Store

    s = load_settings(environ={}, data_dir=tmp_path)
    store = Store(s.resolved_database_url, settings=s).open(background=False)
    try:
        with caplog.at_level(logging.DEBUG, logger="aisp"):
            token = ensure_initial_admin_key(store, tmp_path)
        assert token and token not in caplog.text and INITIAL_KEY_FILE in caplog.text
        key_file = tmp_path / INITIAL_KEY_FILE
        assert key_file.read_text().strip() == token
        assert key_file.stat().st_mode & 0o077 == 0  # owner only
        assert store.keys.verify(token).role == "admin"
        assert ensure_initial_admin_key(store, tmp_path) is None  # not again when a key exists
        assert store.keys.count() == 1
    finally:
        store.close()


def test_revoking_every_key_then_restarting_mints_no_new_key(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 7: the first key is minted only when the key table has never held one."""
    from aisp.api.auth import INITIAL_KEY_FILE, ensure_initial_admin_key
    from aisp.settings import load_settings
    from aisp.store import Store

    s = load_settings(environ={}, data_dir=tmp_path)
    store = Store(s.resolved_database_url, settings=s).open(background=False)
    try:
        first = ensure_initial_admin_key(store, tmp_path)
        assert first is not None
        (tmp_path / INITIAL_KEY_FILE).unlink()
        for rec in store.keys.list():
            store.keys.revoke(rec.id)
        assert store.keys.count() == 0
        with caplog.at_level(logging.WARNING, logger="aisp"):
            assert ensure_initial_admin_key(store, tmp_path) is None  # the "restart"
        assert not (tmp_path / INITIAL_KEY_FILE).exists()
        assert store.keys.count(active_only=False) == 1
        assert "aisp keys create --role admin" in caplog.text  # the recovery is named
    finally:
        store.close()


def test_unknown_route_404_and_method_405(api: Harness) -> None:
    err = assert_error(api.client.get("/api/nope"), 404, "NOT_FOUND")
    assert err["path"] == "/api/nope" and err["method"] == "GET"
    err = assert_error(api.client.put("/api/status"), 405, "METHOD_NOT_ALLOWED")
    assert "PUT" in err["message"]


def test_validation_error_is_400_naming_the_field(api: Harness) -> None:
    err = assert_error(api.client.post("/api/tasks", json={"source": "x"}), 400, "VALIDATION_ERROR")
    assert err["details"]["field"] == "models" and "models" in err["message"]
    err = assert_error(
        api.client.post("/api/tasks", content=b"{not json", headers={"Content-Type": "application/json"}),
        400,
        "VALIDATION_ERROR",
    )
    err = assert_error(api.client.get("/api/tasks?limit=0"), 400, "VALIDATION_ERROR")
    assert err["details"]["field"] == "limit"


def test_body_over_limit_is_413(api: Harness) -> None:
    limit = int(api.settings.max_upload_mb * 1024 * 1024)
    r = api.client.post(
        "/api/frames/process?models=fake",
        content=b"\xff" * (limit + 1),
        headers={"Content-Type": "image/jpeg"},
    )
    err = assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["limit"] == limit


def test_chunked_body_over_limit_is_413(api: Harness) -> None:
    limit = int(api.settings.max_upload_mb * 1024 * 1024)

    def chunks():
        sent = 0
        while sent <= limit:
            yield b"\x00" * 1_048_576
            sent += 1_048_576

    r = api.client.post(
        "/api/frames/process?models=fake", content=chunks(), headers={"Content-Type": "image/png"}
    )
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")


def test_request_id_is_echoed_or_made(api: Harness) -> None:
    r = api.client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = api.client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 16


def test_unexpected_error_is_500_without_trace_and_logged_with_request_id(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/api/_test_boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    api.app.include_router(router)
    caplog.set_level(logging.ERROR, logger="aisp.api")
    r = api.client.get("/api/_test_boom", headers={"X-Request-ID": "req-500"})
    err = assert_error(r, 500, "INTERNAL_ERROR")
    assert "secret internal detail" not in r.text and "req-500" in err["message"]
    record = next(rec for rec in caplog.records if "unhandled error" in rec.getMessage())
    assert record.exc_info is not None
    assert getattr(record, "request_id", None) in (None, "req-500")
    assert api.client.get("/health").status_code == 200
