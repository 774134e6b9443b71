"""The security gate (pure ASGI): every check that must happen before any work, and before any
body byte is read.

For each HTTP request and WebSocket handshake, in this order:

1. **Host allow-list** (auth on and off; against DNS rebinding): the ``Host`` header must name
   the bind host, ``localhost``, ``127.0.0.1`` or ``[::1]``, a name in ``AISP_ALLOWED_HOSTS``
   (``*`` allows any), or any IP address when the server is bound to ``0.0.0.0``/``::``.
   Otherwise 400 ``HOST_NOT_ALLOWED``.
2. **Origin check** on state-changing requests (anything but ``GET``/``HEAD``/``OPTIONS``) and on
   WebSocket handshakes: a browser's ``Origin`` must be the same origin as the (allowed) ``Host``,
   or be listed in ``AISP_ALLOWED_ORIGINS``. Otherwise 403 ``ORIGIN_NOT_ALLOWED``. Requests
   without ``Origin`` (curl, scripts, SDKs) are not browsers' cross-site requests and pass.
3. **Authentication** of protected routes (:func:`is_protected`: ``/api/...``, ``/ws/...``,
   ``/metrics``): a key in ``X-API-Key`` or ``Authorization: Bearer``, or a single-use
   ``?ticket=`` on a ``GET``/``HEAD``/WebSocket request to the ticket's path. ``?key=`` is refused.
   The role is checked for the method (a viewer cannot write). Missing or wrong credentials: 401;
   wrong role: 403. A client over its failed-key allowance (:mod:`aisp.api.throttle`) gets 429
   with ``Retry-After`` for any key that needs a store lookup and does not name an active key
   id; keys verified recently, keys of active key ids and tickets (an in-memory lookup) still
   pass, so a legitimate client behind the same address keeps working. The principal goes into
   the scope state for the routes.
4. **Body cap** (after authentication, so an unauthenticated request learns nothing more):
   ``Content-Length`` above the route's limit is 413 at once; a chunked body is counted as it
   streams. The limit is ``AISP_MAX_JSON_BODY_KB`` (64 KiB) everywhere except the
   frame upload (:data:`UPLOAD_PATHS`, ``AISP_MAX_UPLOAD_MB``).

A refused request that announced a body is answered with ``Connection: close``, so the server
closes the connection instead of reading (and discarding) the rest of the body. A refused
WebSocket is accepted, sent the unified error body and closed with ``4000 + status`` (4401,
4403, 4429), which the dashboard understands; a bad ``Host`` or ``Origin`` refuses the handshake
itself (HTTP 403).

The public routes (the dashboard page and ``/static/``, ``/health``, ``/ready``, ``/docs``,
``/openapi.json``) skip step 3 only.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aisp.api.auth import READ_LIKE_POSTS, READ_METHODS, Principal, check_role, extract_api_key
from aisp.errors import AISPError, PayloadTooLargeError, UnauthorizedError, error_body

if TYPE_CHECKING:
    from aisp.api.auth import Authenticator
    from aisp.settings import Settings

__all__ = ["SecurityGate", "HostPolicy", "is_protected", "UPLOAD_PATHS", "PROTECTED_PREFIXES"]

log = logging.getLogger("aisp.api")

#: Routes that take a large body (AISP_MAX_UPLOAD_MB); every other route is capped at
#: AISP_MAX_JSON_BODY_KB.
UPLOAD_PATHS = frozenset({"/api/frames/process"})
#: Every route under these needs credentials; everything else is public.
PROTECTED_PREFIXES = ("/api/", "/ws/")
_PROTECTED_EXACT = frozenset({"/api", "/ws", "/metrics"})
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})
_TICKET_METHODS = frozenset({"GET", "HEAD"})


def is_protected(path: str) -> bool:
    """Whether ``path`` needs credentials (see :data:`PROTECTED_PREFIXES`)."""
    return path in _PROTECTED_EXACT or path.startswith(PROTECTED_PREFIXES)


def _header_map(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (ASGI names are lower case); the first of a
    repeated header counts, as Starlette's ``Headers.get`` reads it."""
    out: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        key = name.decode("latin-1")
        if key not in out:
            out[key] = value.decode("latin-1")
    return out


class _Refusal(Exception):
    """A refusal the gate renders itself (no AISPError class for it)."""

    def __init__(self, status: int, name: str, message: str, *, details: dict[str, Any] | None = None,
                 headers: Iterable[tuple[bytes, bytes]] = (), handshake: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message
        self.details = details or {}
        self.headers = list(headers)
        self.handshake = handshake  # refuse a WebSocket's handshake itself (no accept)


@functools.lru_cache(maxsize=256)  # a server sees few distinct Host values
def _split_host(value: str) -> tuple[str, int | None] | None:
    """``(host, port)`` from a ``Host`` header or an origin's netloc; None when malformed."""
    value = value.strip().lower()
    if not value or any(ch in value for ch in "/@\\ ?#"):
        return None
    try:
        parts = urlsplit("//" + value)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return host.rstrip("."), port


class HostPolicy:
    """Which ``Host`` names and browser origins the server answers (see the module doc)."""

    def __init__(self, *, bind_host: str, extra_hosts: Iterable[str] = (), extra_origins: Iterable[str] = ()):
        bind = bind_host.strip().lower()
        self.any_ip = bind in _WILDCARD_BINDS
        names = {"localhost", "127.0.0.1", "::1"}
        if not self.any_ip:
            names.add(bind.strip("[]").rstrip("."))
        self.any_host = False
        for entry in extra_hosts:
            e = entry.strip().lower()
            if e == "*":
                self.any_host = True
            elif e:
                names.add(e.strip("[]").rstrip("."))
        self.names = frozenset(names)
        self.origins = frozenset(o.strip().rstrip("/").lower() for o in extra_origins if o.strip())

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPolicy:
        return cls(bind_host=settings.host, extra_hosts=settings.allowed_hosts,
                   extra_origins=settings.allowed_origins)

    def host_allowed(self, host: str) -> bool:
        if self.any_host or host in self.names:
            return True
        if self.any_ip:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                return False
            return True
        return False

    def check_host(self, header: str | None) -> None:
        if header is None:
            return  # HTTP/1.0 without Host: not a browser
        split = _split_host(header)
        if split is None or not self.host_allowed(split[0]):
            raise _Refusal(
                400, "HOST_NOT_ALLOWED",
                "this server does not answer to that Host name; add it to AISP_ALLOWED_HOSTS",
                details={"setting": "AISP_ALLOWED_HOSTS"}, handshake=True,
            )

    def check_origin(self, origin: str | None, host_header: str | None, scheme: str) -> None:
        if origin is None:
            return
        text = origin.strip().rstrip("/").lower()
        if text in self.origins:
            return
        if host_header is not None and text != "null":
            try:
                parts = urlsplit(text)
                o_scheme, o_host, o_port = parts.scheme, parts.hostname, parts.port
            except ValueError:
                o_scheme, o_host, o_port = "", None, None
            split = _split_host(host_header)
            if o_host and split is not None and o_scheme in ("http", "https"):
                defaults = {"http": 80, "https": 443, "ws": 80, "wss": 443}
                h_host, h_port = split
                same = (
                    o_host.rstrip(".") == h_host
                    and (o_port or defaults[o_scheme]) == (h_port or defaults.get(scheme, 80))
                    and self.host_allowed(h_host)
                )
                if same:
                    return
        raise _Refusal(
            403, "ORIGIN_NOT_ALLOWED",
            "cross-origin requests may not change state or open WebSockets; add the page's origin to "
            "AISP_ALLOWED_ORIGINS",
            details={"setting": "AISP_ALLOWED_ORIGINS"}, handshake=True,
        )


class SecurityGate:
    """The pure-ASGI gate (see the module doc). ``ctx.auth`` is the :class:`Authenticator`."""

    def __init__(self, app: ASGIApp, *, ctx: Any, settings: Settings) -> None:
        self.app = app
        self.ctx = ctx
        self.hosts = HostPolicy.from_settings(settings)
        self.json_limit = int(settings.max_json_body_kb * 1024)
        self.upload_limit = int(settings.max_upload_mb * 1024 * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _header_map(scope)
        path: str = scope.get("path", "")
        method = scope.get("method", "GET").upper() if kind == "http" else "GET"
        try:
            host_header = headers.get("host")
            self.hosts.check_host(host_header)
            if kind == "websocket" or method not in READ_METHODS:
                self.hosts.check_origin(headers.get("origin"), host_header, scope.get("scheme", "http"))
            if is_protected(path):
                principal = await self._authenticate(scope, headers, kind, method, path)
                scope.setdefault("state", {})["principal"] = principal
            limit = self.upload_limit if path in UPLOAD_PATHS else self.json_limit
            if kind == "http":
                self._check_declared_size(headers, limit)
        except _Refusal as refusal:
            await self._refuse(scope, receive, send, headers, refusal)
            return
        except AISPError as exc:
            refusal = _Refusal(exc.status_code, exc.name, exc.message, details=exc.details)
            await self._refuse(scope, receive, send, headers, refusal)
            return
        if kind == "http":
            await self._capped(scope, receive, send, limit)
            return
        await self.app(scope, receive, send)

    # --- checks -------------------------------------------------------------------------------
    @staticmethod
    def _check_declared_size(headers: Mapping[str, str], limit: int) -> None:
        declared = headers.get("content-length")
        if declared is None:
            return
        try:
            size = int(declared)
        except ValueError:
            raise _Refusal(400, "VALIDATION_ERROR", "Content-Length: not a number",
                           details={"header": "Content-Length"}) from None
        if size > limit:
            raise PayloadTooLargeError(
                f"request body too large: {size} bytes, limit {limit} bytes for this route "
                "(settings max_json_body_kb, max_upload_mb for /api/frames/process)",
                limit=limit, actual=size,
            )

    async def _authenticate(self, scope: Scope, headers: Mapping[str, str], kind: str, method: str,
                            path: str) -> Principal:
        auth: Authenticator = self.ctx.auth
        role_method = "GET" if (method == "POST" and path in READ_LIKE_POSTS) else method
        if not auth.enabled:
            return check_role(auth.verify(None), role_method)
        client = (scope.get("client") or ("?", 0))[0] or "?"
        key = extract_api_key(headers)
        if key:
            principal = auth.peek(key)
            if principal is None:
                if auth.throttle.retry_after(client) is not None and not await auth.could_be_valid(key):
                    self._check_throttle(auth, client)
                try:
                    principal = await auth.verify_async(key)
                except UnauthorizedError:
                    auth.throttle.failed(client)
                    raise
            return check_role(principal, role_method)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        ticket = query.get("ticket")
        if ticket and (kind == "websocket" or method in _TICKET_METHODS):
            redeemed = auth.redeem_ticket(ticket, path)
            if redeemed is None:
                auth.throttle.failed(client)
                raise UnauthorizedError(
                    "invalid, expired, used or out-of-scope ticket: get a new one from POST /api/auth/ticket",
                    details={"parameter": "ticket"},
                )
            await auth.ensure_active(redeemed)  # the minting key may have been revoked since
            return check_role(redeemed, role_method)
        if "key" in query:
            raise UnauthorizedError(
                "API keys are not accepted in URLs (?key=): send 'X-API-Key: <key>' or "
                "'Authorization: Bearer <key>'; for WebSockets and <img> views use a ticket from "
                "POST /api/auth/ticket (?ticket=)",
                details={"parameter": "key"},
            )
        return auth.verify(None)  # raises the "missing API key" error

    @staticmethod
    def _check_throttle(auth: Authenticator, client: str) -> None:
        wait = auth.throttle.retry_after(client)
        if wait is not None:
            seconds = auth.throttle.header_value(wait)
            raise _Refusal(
                429, "TOO_MANY_REQUESTS",
                f"too many wrong API keys or tickets from this address; retry in {seconds} s "
                "(settings auth_fail_burst, auth_fail_per_second)",
                details={"retry_after": float(seconds)},
                headers=[(b"retry-after", seconds.encode())],
            )

    async def _capped(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app with the body counted as it streams (chunked uploads declare no length).
        Past ``limit`` the gate answers 413 itself (with ``Connection: close``), tells the app the
        client left, and drops whatever the app answers after that."""
        received = 0
        state = {"started": False, "refused": False}

        async def counted() -> Message:
            nonlocal received
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exc = PayloadTooLargeError(
                        f"request body too large: more than {limit} bytes for this route "
                        "(settings max_json_body_kb, max_upload_mb for /api/frames/process)",
                        limit=limit, actual=received,
                    )
                    if state["started"]:
                        raise exc
                    state["refused"] = True
                    refusal = _Refusal(exc.status_code, exc.name, exc.message, details=exc.details)
                    chunked = {"transfer-encoding": "chunked"}  # -> Connection: close
                    await self._refuse(scope, receive, send, chunked, refusal)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, counted, guarded_send)

    # --- answers ------------------------------------------------------------------------------
    async def _refuse(self, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str],
                      refusal: _Refusal) -> None:
        path = scope.get("path")
        if scope["type"] == "websocket":
            await self._refuse_websocket(receive, send, refusal, path)
            return
        body = json.dumps(error_body(
            code=refusal.status, name=refusal.name, message=refusal.message, details=refusal.details,
            path=path, method=scope.get("method"),
        )).encode()
        out = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *refusal.headers,
        ]
        if refusal.status == 401:
            out.append((b"www-authenticate", b'Bearer realm="aisp"'))
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
            # the body is not read: close the connection rather than drain it
            out.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": refusal.status, "headers": out})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _refuse_websocket(receive: Receive, send: Send, refusal: _Refusal, path: str | None) -> None:
        message = await receive()
        if message.get("type") != "websocket.connect":
            return
        if refusal.handshake:
            await send({"type": "websocket.close", "code": 1008, "reason": refusal.name})
            return
        body = error_body(code=refusal.status, name=refusal.name, message=refusal.message,
                          details=refusal.details, path=path, method="GET")
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(body)})
        reason = refusal.message.encode("utf-8")[:120].decode("utf-8", "ignore")
        await send({"type": "websocket.close", "code": 4000 + refusal.status, "reason": reason})
