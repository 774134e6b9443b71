"""The security gate, URL tickets, the failed-key throttle, log redaction and the loopback check,
in process (the real-server versions are in ``test_security_server.py``)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from aisp.api.gate import HostPolicy, SecurityGate, is_protected
from aisp.api.throttle import FailureThrottle
from aisp.api.tickets import TicketBook, check_ticket_path
from aisp.errors import ConfigError, ValidationError
from tests.api.conftest import Harness, assert_error

# --- the gate reads no body before auth ------------------------------------------------------


class _Ctx:
    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def require_store(self) -> Any:
        raise AssertionError("no store lookup expected")


def _run_gate(settings: Any, scope: dict[str, Any]) -> tuple[list[dict[str, Any]], int, bool]:
    """Call the gate with a receive that counts its calls; returns (sent messages, receive calls,
    whether the inner app ran)."""
    from aisp.api.auth import Authenticator

    ctx = _Ctx(settings)
    ctx.auth = Authenticator(ctx)  # type: ignore[attr-defined]
    reached = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope)

    gate = SecurityGate(inner, ctx=ctx, settings=settings)
    sent: list[dict[str, Any]] = []
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"type": "http.request", "body": b"{", "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(gate(scope, receive, send))
    return sent, calls, bool(reached)


def _scope(path: str, method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None,
           query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http", "method": method, "path": path, "query_string": query, "scheme": "http",
        "client": ("127.0.0.1", 5555),
        "headers": [(b"host", b"localhost:8000"), *(headers or [])],
    }


def test_unauthenticated_post_gets_401_without_reading_a_body_byte(settings: Any) -> None:
    big = [(b"content-type", b"application/json"), (b"content-length", str(20 * 1024 * 1024).encode())]
    sent, calls, reached = _run_gate(settings, _scope("/api/tasks", headers=big))
    assert calls == 0 and not reached  # the body was never read; the app never ran
    start = sent[0]
    assert start["status"] == 401
    headers = dict(start["headers"])
    assert headers[b"connection"] == b"close"  # uvicorn closes instead of draining 20 MB
    body = json.loads(sent[1]["body"])
    assert body["error"]["name"] == "UNAUTHORIZED" and "missing API key" in body["error"]["message"]


def test_malformed_body_without_a_key_is_401_not_400(api: Harness) -> None:
    r = api.client.post("/api/tasks", content=b"{not json", headers={"X-API-Key": "",
                                                                      "content-type": "application/json"})
    assert_error(r, 401, "UNAUTHORIZED")
    r = api.client.post("/api/tasks", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 400, "VALIDATION_ERROR")  # with the key, the body is read and refused


def test_json_bodies_are_capped_and_the_upload_keeps_its_limit(api: Harness) -> None:
    limit = int(api.settings.max_json_body_kb * 1024)
    big = json.dumps({"source": "x" * (limit + 10)})
    js = {"content-type": "application/json"}
    err = assert_error(api.client.post("/api/tasks", content=big, headers=js), 413, "PAYLOAD_TOO_LARGE")
    assert "max_json_body_kb" in err["message"]

    def chunks() -> Any:  # no Content-Length: counted as it streams
        yield b'{"source": "'
        for _ in range(limit // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    assert_error(api.client.post("/api/tasks", content=chunks(), headers=js), 413, "PAYLOAD_TOO_LARGE")
    # the frame upload keeps max_upload_mb: a body over 64 KiB is read and judged as an image
    r = api.client.post("/api/frames/process?models=fake", content=b"\x00" * (limit * 2),
                        headers={"content-type": "image/jpeg"})
    assert r.status_code in (400, 415, 422) and r.json()["error"]["name"] != "PAYLOAD_TOO_LARGE"


def test_viewer_write_is_403_before_the_body(settings: Any) -> None:
    from aisp.api.auth import Principal

    async def scenario() -> tuple[list[dict[str, Any]], int]:
        from aisp.api.auth import Authenticator

        ctx = _Ctx(settings)
        ctx.auth = Authenticator(ctx)  # type: ignore[attr-defined]
        ctx.auth._seen["d"] = (Principal("viewer", "k1"), float("inf"))
        ctx.auth.peek = lambda key: Principal("viewer", "k1") if key == "vk" else None  # type: ignore[method-assign]
        sent: list[dict[str, Any]] = []
        calls = 0

        async def receive() -> dict[str, Any]:
            nonlocal calls
            calls += 1
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(m: dict[str, Any]) -> None:
            sent.append(m)

        async def inner(*_: Any) -> None:
            raise AssertionError("must not run")

        scope = _scope("/api/tasks", headers=[(b"x-api-key", b"vk"), (b"content-length", b"100")])
        await SecurityGate(inner, ctx=ctx, settings=settings)(scope, receive, send)
        return sent, calls

    sent, calls = asyncio.run(scenario())
    assert sent[0]["status"] == 403 and calls == 0


def test_every_route_is_public_or_protected_as_the_gate_says(api: Harness) -> None:
    """The gate decides by path (/api/, /ws/, /metrics); the routes by dependency (which puts the
    key schemes in the OpenAPI ``security`` of the operation). They agree, and today's public
    routes stay public."""
    public = set()
    for path, ops in api.app.openapi()["paths"].items():
        for method, op in ops.items():
            assert is_protected(path) == bool(op.get("security")), f"{method} {path}"
            if not is_protected(path):
                public.add(path)
    assert public == {"/health", "/ready"}
    for path in ("/", "/static/app.js", "/docs", "/openapi.json", "/health", "/ready"):
        r = api.client.get(path, headers={"X-API-Key": ""})
        assert r.status_code in (200, 503), (path, r.status_code)
    for path in ("/metrics", "/api/status", "/api/nope", "/api"):
        assert_error(api.client.get(path, headers={"X-API-Key": ""}), 401, "UNAUTHORIZED")


# --- Host allow-list and Origin check (item 6) -------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "extra", "host", "ok"),
    [
        ("127.0.0.1", (), "localhost:8000", True),
        ("127.0.0.1", (), "127.0.0.1:8000", True),
        ("127.0.0.1", (), "[::1]:8000", True),
        ("127.0.0.1", (), "LOCALHOST", True),
        ("127.0.0.1", (), "attacker.example", False),
        ("127.0.0.1", (), "attacker.example:8000", False),
        ("127.0.0.1", (), "127.0.0.1.nip.io", False),
        ("127.0.0.1", (), "10.0.0.5", False),
        ("127.0.0.1", (), "localhost@attacker.example", False),
        ("127.0.0.1", (), "", False),
        ("0.0.0.0", (), "10.0.0.5:8000", True),  # wildcard bind: any IP literal (no rebinding)
        ("0.0.0.0", (), "[fe80::1]:8000", True),
        ("0.0.0.0", (), "cams.lan", False),
        ("0.0.0.0", ("cams.lan",), "cams.lan:8000", True),
        ("cams.lan", (), "cams.lan", True),
        ("127.0.0.1", ("*",), "anything.example", True),
    ],
)
def test_host_allow_list(bind: str, extra: tuple[str, ...], host: str, ok: bool) -> None:
    from aisp.api.gate import _Refusal

    policy = HostPolicy(bind_host=bind, extra_hosts=extra)
    if ok:
        policy.check_host(host)
    else:
        with pytest.raises(_Refusal) as info:
            policy.check_host(host)
        assert info.value.status == 400 and info.value.name == "HOST_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("origin", "host", "extra", "ok"),
    [
        (None, "localhost:8000", (), True),  # not a browser
        ("http://localhost:8000", "localhost:8000", (), True),  # same origin
        ("http://127.0.0.1:8000", "127.0.0.1:8000", (), True),
        ("http://localhost:8000/", "localhost:8000", (), True),
        ("http://localhost", "localhost:80", (), True),
        ("https://localhost", "localhost", (), False),  # 443 vs 80: another origin
        ("http://localhost:9000", "localhost:8000", (), False),  # another port
        ("http://attacker.example", "attacker.example", (), False),  # rebinding: host not allowed
        ("http://attacker.example", "localhost:8000", (), False),  # cross-site
        ("null", "localhost:8000", (), False),
        ("file://", "localhost:8000", (), False),
        ("https://app.example", "localhost:8000", ("https://app.example",), True),
    ],
)
def test_origin_check(origin: str | None, host: str, extra: tuple[str, ...], ok: bool) -> None:
    from aisp.api.gate import _Refusal

    policy = HostPolicy(bind_host="127.0.0.1", extra_origins=extra)
    if ok:
        policy.check_origin(origin, host, "http")
    else:
        with pytest.raises(_Refusal) as info:
            policy.check_origin(origin, host, "http")
        assert info.value.status == 403 and info.value.name == "ORIGIN_NOT_ALLOWED"


def test_allowed_origins_setting_is_validated() -> None:
    from aisp.settings import load_settings

    assert load_settings(environ={"AISP_ALLOWED_ORIGINS": "https://App.example:8443/"}).allowed_origins == [
        "https://app.example:8443"
    ]
    with pytest.raises(ConfigError, match="allowed_origins"):
        load_settings(environ={"AISP_ALLOWED_ORIGINS": "app.example"})


@pytest.mark.parametrize("auth", ["on", "off"])
def test_rebinding_and_cross_site_requests_are_refused(tmp_path: Any, auth: str) -> None:
    from starlette.websockets import WebSocketDisconnect

    from tests.api.conftest import start_app

    for h in start_app(tmp_path, auth=auth):
        c = h.client
        # DNS rebinding: the attacker's name resolves to us; the Host header gives it away
        evil = {"Host": "attacker.example", "Origin": "http://attacker.example"}
        assert_error(c.get("/api/auth/whoami", headers=evil), 400, "HOST_NOT_ALLOWED")
        assert_error(c.post("/api/cache/clear", headers=evil), 400, "HOST_NOT_ALLOWED")
        # CSRF: a cross-site page posting to localhost
        err = assert_error(c.post("/api/cache/clear", headers={"Origin": "http://attacker.example"}),
                           403, "ORIGIN_NOT_ALLOWED")
        assert err["details"]["setting"] == "AISP_ALLOWED_ORIGINS"
        assert c.get("/api/auth/whoami", headers={"Origin": "http://attacker.example"}).status_code == 200
        same = c.post("/api/cache/clear", headers={"Origin": "http://localhost"})
        assert same.status_code == 200, same.text
        # a cross-site WebSocket: the handshake itself is refused
        with pytest.raises(WebSocketDisconnect) as info, c.websocket_connect(
            "/ws/live", headers={"Origin": "http://attacker.example"}
        ) as ws:
            ws.receive_json()
        assert info.value.code == 1008
        assert c.get("/health", headers={"Host": "attacker.example"}).status_code == 400


# --- tickets (item 2) ---------------------------------------------------------------------------


def test_ticket_book_single_use_scoped_and_expiring() -> None:
    now = [1000.0]
    book: TicketBook[str] = TicketBook(ttl_s=30, clock=lambda: now[0], max_tickets=3)
    t, ttl = book.mint("alice", "/ws/live")
    assert ttl == 30 and t.startswith("tkt_")
    assert book.redeem(t, "/ws/streams/x") is None  # wrong path: refused...
    assert book.redeem(t, "/ws/live") == "alice"  # ...and not used up by it
    assert book.redeem(t, "/ws/live") is None  # single use
    prefix, _ = book.mint("bob", "/api/streams/cam1/")
    assert book.redeem(prefix, "/api/streams/cam10/mjpeg") is None
    assert book.redeem(prefix, "/api/streams/cam1/mjpeg") == "bob"
    late, _ = book.mint("carol", "/ws/live")
    now[0] += 30.0
    assert book.redeem(late, "/ws/live") is None  # expired
    assert book.redeem("", "/ws/live") is None and book.redeem("tkt_" + "x" * 200, "/ws/live") is None
    # bounded: the oldest goes first
    a, _ = book.mint("a", "/x")
    book.mint("b", "/x")
    book.mint("c", "/x")
    book.mint("d", "/x")
    assert len(book) == 3 and book.redeem(a, "/x") is None


@pytest.mark.parametrize("path", ["ws/live", "/a?b=1", "/a#f", "/a/../b", "/a//b", "/a b", "/" + "a" * 600,
                                  "/a\\b", 5])
def test_ticket_paths_are_validated(path: Any) -> None:
    with pytest.raises(ValidationError):
        check_ticket_path(path)


def _mint(client: Any, path: str, key: str) -> str:
    r = client.post("/api/auth/ticket", json={"path": path}, headers={"X-API-Key": key})
    assert r.status_code == 201, r.text
    return str(r.json()["ticket"])


def test_tickets_through_the_api(api: Harness) -> None:
    c = api.client
    no_key = {"X-API-Key": ""}
    # a viewer may mint (a POST that only reads)
    r = c.post("/api/auth/ticket", json={"path": "/api/status"}, headers=api.h(api.viewer))
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"ticket", "path", "expires_at", "expires_in_s"}
    assert body["expires_in_s"] == api.settings.auth_ticket_ttl_seconds
    ticket = body["ticket"]
    assert c.get(f"/api/status?ticket={ticket}", headers=no_key).status_code == 200
    assert_error(c.get(f"/api/status?ticket={ticket}", headers=no_key), 401, "UNAUTHORIZED")  # used
    # never for a write, never on another path
    t2 = c.post("/api/auth/ticket", json={"path": "/api/cache/clear"}).json()["ticket"]
    assert_error(c.post(f"/api/cache/clear?ticket={t2}", headers=no_key), 401, "UNAUTHORIZED")
    t3 = c.post("/api/auth/ticket", json={"path": "/ws/live"}).json()["ticket"]
    assert_error(c.get(f"/api/status?ticket={t3}", headers=no_key), 401, "UNAUTHORIZED")
    # the ticket carries the minting key's role: a viewer's ticket cannot reach admin-only reads
    t4 = _mint(c, "/api/auth/keys", api.viewer)
    assert_error(c.get(f"/api/auth/keys?ticket={t4}", headers=no_key), 403, "FORBIDDEN")
    # bad paths name the field
    err = assert_error(c.post("/api/auth/ticket", json={"path": "/a/../b"}), 400, "VALIDATION_ERROR")
    assert "path" in err["message"]
    assert_error(c.post("/api/auth/ticket", json={"path": "/x"}, headers=no_key), 401, "UNAUTHORIZED")


def test_a_revoked_keys_tickets_are_void(api: Harness) -> None:
    c = api.client
    created = c.post("/api/auth/keys", json={"role": "viewer", "name": "short-lived"}).json()
    t1 = _mint(c, "/api/status", created["key"])
    t2 = _mint(c, "/api/status", created["key"])
    assert c.get(f"/api/status?ticket={t1}", headers={"X-API-Key": ""}).status_code == 200
    assert c.delete(f"/api/auth/keys/{created['id']}").status_code == 200
    assert_error(c.get(f"/api/status?ticket={t2}", headers={"X-API-Key": ""}), 401, "UNAUTHORIZED")


def test_a_ticket_whose_key_was_revoked_elsewhere_is_refused(api: Harness) -> None:
    """Revoked in another process (``aisp keys revoke``): the gate checks the key at redemption."""
    c = api.client
    created = c.post("/api/auth/keys", json={"role": "viewer", "name": "elsewhere"}).json()
    t = _mint(c, "/api/status", created["key"])
    api.ctx.store.keys.revoke(created["id"])  # behind the API's back
    api.ctx.auth.forget()  # the TTL has passed
    err = assert_error(c.get(f"/api/status?ticket={t}", headers={"X-API-Key": ""}), 401, "UNAUTHORIZED")
    assert "revoked" in err["message"]


# --- failed-key throttle (item 18) --------------------------------------------------------------


def test_token_bucket_with_an_injected_clock() -> None:
    now = [0.0]
    t = FailureThrottle(burst=3, rate=0.5, clock=lambda: now[0], max_clients=2)
    for _ in range(3):
        assert t.retry_after("a") is None
        t.failed("a")
    assert t.retry_after("a") == pytest.approx(2.0)  # one token at 0.5/s
    assert t.retry_after("b") is None  # per address
    now[0] += 2.0
    assert t.retry_after("a") is None
    t.failed("a")
    assert t.retry_after("a") == pytest.approx(2.0)
    assert FailureThrottle.header_value(0.2) == "1" and FailureThrottle.header_value(2.1) == "3"
    t.failed("b")
    t.failed("c")  # over max_clients: the full or oldest buckets go
    assert len(t._buckets) <= 2


def test_wrong_keys_are_throttled_per_address_and_good_keys_are_not(api: Harness) -> None:
    now = [0.0]
    auth = api.ctx.auth
    saved = auth.throttle
    auth.throttle = FailureThrottle(burst=3, rate=0.25, clock=lambda: now[0])
    try:
        c = api.client
        for i in range(3):
            assert_error(c.get("/api/status", headers={"X-API-Key": f"aisp_000000000000_wrong{i}"}),
                         401, "UNAUTHORIZED")
        r = c.get("/api/status", headers={"X-API-Key": "aisp_000000000000_wrong"})
        err = assert_error(r, 429, "TOO_MANY_REQUESTS")
        assert r.headers["retry-after"] == "4" and err["details"]["retry_after"] == 4.0
        assert_error(c.get("/api/status", headers={"X-API-Key": "not-even-a-key"}), 429, "TOO_MANY_REQUESTS")
        # real keys keep working from the same address: remembered, or not yet (an active key id)
        api.ctx.auth.forget()
        assert c.get("/api/status").status_code == 200
        assert c.get("/api/status", headers=api.h(api.viewer)).status_code == 200
        # and so do tickets (an in-memory lookup); a wrong one is still 401
        t = _mint(c, "/api/status", api.viewer)
        assert c.get(f"/api/status?ticket={t}", headers={"X-API-Key": ""}).status_code == 200
        assert_error(c.get("/api/status?ticket=tkt_x", headers={"X-API-Key": ""}), 401, "UNAUTHORIZED")
        # no key at all is not a guess: still 401
        assert_error(c.get("/api/status", headers={"X-API-Key": ""}), 401, "UNAUTHORIZED")
        now[0] += 4.0  # one token back (the bucket never goes below empty)
        wrong = {"X-API-Key": "aisp_000000000000_wrong"}
        assert_error(c.get("/api/status", headers=wrong), 401, "UNAUTHORIZED")
        assert_error(c.get("/api/status", headers=wrong), 429, "TOO_MANY_REQUESTS")
    finally:
        auth.throttle = saved


# --- log redaction (item 2) ---------------------------------------------------------------------

KEY = "aisp_0123456789ab_Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg"


@pytest.mark.parametrize(
    ("msg", "args", "secret"),
    [
        ('%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", f"/ws/live?key={KEY}", "1.1", 401), KEY),
        ('%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", "/ws/live?ticket=tkt_abcdefghijklmn", "1.1", 101),
         "tkt_abcdefghijklmn"),
        ("opening %s", ("rtsp://cam:S3cretPw0rd@10.0.0.7:554/live",), "S3cretPw0rd"),
        ("headers %r", ([(b"x-api-key", b"plainsecret")],), "plainsecret"),
        ("Authorization: Bearer %s", ("opaque-token-123",), "opaque-token-123"),
        ("key is %s", (KEY,), KEY.split("_", 2)[2]),
    ],
)
def test_secrets_never_reach_a_log_line(msg: str, args: tuple[Any, ...], secret: str) -> None:
    import io

    from aisp.logs import configure_logging

    for fmt in ("text", "json"):
        out = io.StringIO()
        configure_logging("DEBUG", fmt, stream=out)
        logging.getLogger("uvicorn.access").info(msg, *args)
        logging.getLogger("aisp.pipeline").debug(msg, *args)
        try:
            raise RuntimeError(msg % args)
        except RuntimeError:
            logging.getLogger("aisp.api").exception("failed")
        text = out.getvalue()
        assert text.count("\n") >= 3
        assert secret not in text, text
        assert "***" in text


# --- loopback (item 17) ------------------------------------------------------------------------


def test_loopback_is_parsed_not_prefix_matched(monkeypatch: pytest.MonkeyPatch) -> None:
    import aisp.netpolicy as netpolicy
    from aisp.server import check_bind
    from aisp.settings import load_settings

    answers = {"127.0.0.1.nip.io": ["127.0.0.1"], "127.0.0.1.evil.example": ["127.0.0.1", "203.0.113.9"]}
    monkeypatch.setattr(netpolicy, "_system_resolver", lambda host: answers.get(host, []))
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost", "127.0.0.1.nip.io"):
        check_bind(load_settings(environ={}, host=host, auth="off"))  # loopback: allowed
    for host in ("127.0.0.1.evil.example", "127.evil", "0.0.0.0", "10.0.0.1", "127.0.0.1.unresolvable"):
        with pytest.raises(ConfigError, match="refusing AISP_AUTH=off"):
            check_bind(load_settings(environ={}, host=host, auth="off"))


def test_the_dashboard_never_puts_the_key_in_a_url() -> None:
    """The page sends the key in headers; WebSockets and <img> views get tickets."""
    import re

    from aisp.api.routers.dashboard import STATIC_DIR

    sources = {p.name: p.read_text() for p in STATIC_DIR.glob("*.js")}
    for name, text in sources.items():
        assert not re.search(r"[?&]key=", text), name
        assert "withKey" not in text, name
    assert "new WebSocket(" in sources["api.js"] and "ticketUrl(this.path)" in sources["api.js"]
    assert "ticketUrl(`/api/streams/" in sources["streams.js"]
