"""API-key authentication and the two roles.

Every way into the API reads the key with one function, :func:`extract_api_key`, and checks the
role with one function, :func:`check_role`: the HTTP dependencies (:func:`authorize`,
:func:`authorize_streaming`, :func:`require_admin`), the frames fast path
(:mod:`aisp.api.fastpath`), the MJPEG route and both WebSockets (:func:`authorize_websocket`).

Where the key is read from, in this order:

1. ``X-API-Key: <key>``;
2. ``Authorization: Bearer <key>`` (scheme case-insensitive, as FastAPI's ``HTTPBearer`` reads it);
3. ``?key=<key>``, on the watch routes only (MJPEG, WebSockets): an ``<img>`` or a browser
   ``WebSocket`` cannot set headers. Every other route ignores ``?key=``, so a key never has to
   travel in a URL (and in access logs) where a header would do.

An empty value counts as absent and the next source is tried.

Keys are stored hashed by the store (:mod:`aisp.store`); a verified key is remembered for
:data:`VERIFY_TTL_S` seconds (by its SHA-256, never in plain text) so the frame path does not query
the database on every request. Revoking through the API forgets it at once; revoking with
``aisp keys revoke`` in another process takes effect within that TTL.

Roles: ``admin`` may do everything; ``viewer`` may only read (``GET``/``HEAD``/``OPTIONS``); a few
routes (key management) need ``admin`` even to read. With ``AISP_AUTH=off`` every caller is an
admin (the server refuses that off loopback).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio.to_thread
from fastapi import Depends, Request, WebSocket
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from aisp.errors import ForbiddenError, UnauthorizedError
from aisp.settings import Settings

if TYPE_CHECKING:
    from aisp.store import Store

__all__ = [
    "Principal",
    "Authenticator",
    "extract_api_key",
    "check_role",
    "authorize",
    "authorize_streaming",
    "require_admin",
    "authorize_websocket",
    "ensure_initial_admin_key",
    "VERIFY_TTL_S",
    "READ_METHODS",
]

log = logging.getLogger("aisp.api")

VERIFY_TTL_S = 5.0
#: Methods a ``viewer`` key may use.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The seen-keys memo is dropped whole when it grows past this many keys (a flood of wrong keys
#: never enters it; this bounds a flood of distinct valid ones).
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Principal:
    role: str  # "admin" | "viewer"
    key_id: str | None = None
    name: str | None = None


_AUTH_OFF = Principal(role="admin", key_id=None, name="auth-off")


class _AuthContext(Protocol):
    """What :class:`Authenticator` needs from the app context."""

    settings: Settings

    def require_store(self) -> Store: ...


class Authenticator:
    def __init__(
        self, ctx: _AuthContext, *, ttl_s: float = VERIFY_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ctx = ctx
        self._ttl = ttl_s
        self._clock = clock
        self._seen: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._ctx.settings.auth == "on"

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()

    def peek(self, key: str | None) -> Principal | None:
        """The principal when it is known without the store (auth off, or verified recently)."""
        if not self.enabled:
            return _AUTH_OFF
        if not key:
            return None
        return self._remembered(_digest(key), self._clock())

    async def verify_async(self, key: str | None) -> Principal:
        """:meth:`verify`, with the store lookup (if any) on a worker thread, off the event loop."""
        principal = self.peek(key)
        if principal is not None:
            return principal
        if not key:
            return self.verify(key)  # raises the "missing key" error; no I/O
        return await anyio.to_thread.run_sync(self.verify, key)

    def verify(self, key: str | None) -> Principal:
        """The principal for ``key``; raises ``UnauthorizedError`` when it is missing or wrong."""
        if not self.enabled:
            return _AUTH_OFF
        if not key:
            raise UnauthorizedError(
                "missing API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
                details={"header": "X-API-Key"},
            )
        digest = _digest(key)
        now = self._clock()
        principal = self._remembered(digest, now)
        if principal is not None:
            return principal
        record = self._ctx.require_store().keys.verify(key)
        if record is None:
            raise UnauthorizedError("invalid or revoked API key", details={"header": "X-API-Key"})
        principal = Principal(role=record.role, key_id=record.id or None, name=record.name)
        with self._lock:
            if len(self._seen) > _MAX_REMEMBERED:
                self._seen.clear()
            self._seen[digest] = (principal, now + self._ttl)
        return principal

    def _remembered(self, digest: str, now: float) -> Principal | None:
        with self._lock:
            hit = self._seen.get(digest)
        return hit[0] if hit is not None and hit[1] > now else None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def extract_api_key(headers: Mapping[str, str], query: Mapping[str, str], *, allow_query: bool) -> str | None:
    """The API key a request carries, or None (see the module doc for the order).

    ``headers`` must look names up case-insensitively (Starlette's ``Headers``); ``query`` is read
    only when ``allow_query`` (the watch routes).
    """
    key = headers.get("x-api-key")
    if key:
        return key
    authorization = headers.get("authorization")
    if authorization:
        scheme, credentials = get_authorization_scheme_param(authorization)
        if credentials and scheme.lower() == "bearer":
            return credentials
    if allow_query:
        return query.get("key") or None
    return None


def check_role(principal: Principal, method: str, *, admin_only: bool = False) -> Principal:
    """``principal`` when its role may use ``method`` (and the route, when ``admin_only``);
    raises ``ForbiddenError`` otherwise."""
    if principal.role == "admin":
        return principal
    if admin_only:
        raise ForbiddenError("this route needs an admin key", role=principal.role)
    if method.upper() not in READ_METHODS:
        raise ForbiddenError(
            f"the '{principal.role}' role may only read; {method} needs an admin key", role=principal.role
        )
    return principal


async def _authorize(conn: HTTPConnection, method: str, *, allow_query: bool) -> Principal:
    auth: Authenticator = conn.app.state.ctx.auth
    principal = await auth.verify_async(
        extract_api_key(conn.headers, conn.query_params, allow_query=allow_query)
    )
    conn.state.principal = principal
    return check_role(principal, method)


class _DocumentedHeader(APIKeyHeader):
    """Declares the ``X-API-Key`` scheme in OpenAPI; the key is read by :func:`extract_api_key`."""

    async def __call__(self, request: HTTPConnection) -> None:  # type: ignore[override]
        return None


class _DocumentedBearer(HTTPBearer):
    """Declares the bearer scheme in OpenAPI; the key is read by :func:`extract_api_key`."""

    async def __call__(self, request: HTTPConnection) -> None:  # type: ignore[override]
        return None


# Dependencies that only document the two schemes in OpenAPI (``/docs`` shows the "Authorize" box).
_HEADER_DOC = Depends(
    _DocumentedHeader(name="X-API-Key", scheme_name="APIKeyHeader", description="An AISP API key.")
)
_BEARER_DOC = Depends(
    _DocumentedBearer(scheme_name="HTTPBearer", description="An AISP API key as a bearer token.")
)


async def authorize(request: Request, _header: None = _HEADER_DOC, _bearer: None = _BEARER_DOC) -> Principal:
    """Dependency for every protected route: a valid key, and admin for writes."""
    return await _authorize(request, request.method, allow_query=False)


async def authorize_streaming(
    request: Request, _header: None = _HEADER_DOC, _bearer: None = _BEARER_DOC
) -> Principal:
    """Like :func:`authorize`, also accepting ``?key=`` (for ``<img src>``)."""
    return await _authorize(request, request.method, allow_query=True)


async def require_admin(request: Request, principal: Principal = Depends(authorize)) -> Principal:
    """Dependency for the routes that need an admin key even to read (key management)."""
    return check_role(principal, request.method, admin_only=True)


async def authorize_websocket(websocket: WebSocket) -> Principal:
    """Check a WebSocket's key (header, bearer or ``?key=``) as a read; raises like
    :func:`authorize`. A store lookup (at most once per key per ``VERIFY_TTL_S``) runs off the
    event loop."""
    return await _authorize(websocket, "GET", allow_query=True)


def ensure_initial_admin_key(store: Store) -> str | None:
    """Create and log an admin key when the store holds none (first start). Returns it."""
    if store.keys.count() > 0:
        return None
    _record, plaintext = store.keys.create("admin", "initial-admin")
    log.warning(
        "no API key existed, so an admin key was created. It is shown only this once; store it now: %s "
        "(send it as 'X-API-Key: <key>'; manage keys with 'aisp keys create|list|revoke')",
        plaintext,
    )
    return plaintext
