"""API-key authentication and the two roles.

Keys travel in ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``; the streaming routes
(MJPEG, WebSocket) also take ``?key=<key>`` because browsers cannot set headers on ``<img>`` and
``WebSocket``. Keys are stored hashed by the store (:mod:`aisp.store`); a verified key is
remembered for :data:`VERIFY_TTL_S` seconds (by its SHA-256, never in plain text) so the frame
path does not query the database on every request. Revoking through the API forgets it at once;
revoking with ``aisp keys revoke`` in another process takes effect within that TTL.

Roles: ``admin`` may do everything; ``viewer`` may only read (``GET``/``HEAD``). With
``AISP_AUTH=off`` every caller is an admin (the server refuses that off loopback).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request, WebSocket
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from aisp.errors import ForbiddenError, UnauthorizedError

__all__ = [
    "Principal",
    "Authenticator",
    "authorize",
    "authorize_streaming",
    "require_admin",
    "authorize_websocket",
    "authorize_websocket_async",
    "ensure_initial_admin_key",
    "VERIFY_TTL_S",
]

log = logging.getLogger("aisp.api")

VERIFY_TTL_S = 5.0
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An AISP API key.")
_bearer = HTTPBearer(auto_error=False, description="An AISP API key as a bearer token.")


@dataclass(frozen=True)
class Principal:
    role: str  # "admin" | "viewer"
    key_id: str | None = None
    name: str | None = None


_AUTH_OFF = Principal(role="admin", key_id=None, name="auth-off")


class Authenticator:
    def __init__(self, ctx: Any, *, ttl_s: float = VERIFY_TTL_S, clock: Callable[[], float] = time.monotonic):
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
        digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()
        with self._lock:
            hit = self._seen.get(digest)
        return hit[0] if hit is not None and hit[1] > self._clock() else None

    async def verify_async(self, key: str | None) -> Principal:
        """:meth:`verify`, with the store lookup (if any) on a worker thread, off the event loop."""
        principal = self.peek(key)
        if principal is not None:
            return principal
        if not key:
            return self.verify(key)  # raises the "missing key" error; no I/O
        import anyio.to_thread

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
        digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()
        now = self._clock()
        with self._lock:
            hit = self._seen.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        store = self._ctx.require_store()
        record = store.keys.verify(key)
        if record is None:
            raise UnauthorizedError("invalid or revoked API key", details={"header": "X-API-Key"})
        principal = Principal(
            role=str(getattr(record, "role", "viewer")),
            key_id=str(getattr(record, "id", "")) or None,
            name=getattr(record, "name", None),
        )
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[digest] = (principal, now + self._ttl)
        return principal


def _check_role(principal: Principal, method: str) -> Principal:
    if method.upper() not in READ_METHODS and principal.role != "admin":
        raise ForbiddenError(
            f"the '{principal.role}' role may only read; {method} needs an admin key", role=principal.role
        )
    return principal


def _key_from_headers(
    request: Request, x_api_key: str | None, bearer: HTTPAuthorizationCredentials | None
) -> str | None:
    if x_api_key:
        return x_api_key
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return None


async def authorize(
    request: Request,
    x_api_key: str | None = Depends(_api_key_header),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    """Dependency for every protected route: a valid key, and admin for writes."""
    auth: Authenticator = request.app.state.ctx.auth
    principal = await auth.verify_async(_key_from_headers(request, x_api_key, bearer))
    request.state.principal = principal
    return _check_role(principal, request.method)


async def authorize_streaming(
    request: Request,
    x_api_key: str | None = Depends(_api_key_header),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    """Like :func:`authorize`, also accepting ``?key=`` (for ``<img src>`` and EventSource)."""
    key = _key_from_headers(request, x_api_key, bearer) or request.query_params.get("key")
    auth: Authenticator = request.app.state.ctx.auth
    principal = await auth.verify_async(key)
    request.state.principal = principal
    return _check_role(principal, request.method)


async def require_admin(principal: Principal = Depends(authorize)) -> Principal:
    if principal.role != "admin":
        raise ForbiddenError("this route needs an admin key", role=principal.role)
    return principal


def authorize_websocket(websocket: WebSocket) -> Principal:
    """Check a WebSocket's key (header or ``?key=``); raises like :func:`authorize`.

    Synchronous (the dashboard calls it); a store lookup happens at most once per key per
    ``VERIFY_TTL_S``. :func:`authorize_websocket_async` does that lookup off the event loop.
    """
    auth: Authenticator = websocket.app.state.ctx.auth
    key = websocket.headers.get("x-api-key") or websocket.query_params.get("key")
    authz = websocket.headers.get("authorization", "")
    if not key and authz.lower().startswith("bearer "):
        key = authz[7:].strip()
    return auth.verify(key)


async def authorize_websocket_async(websocket: WebSocket) -> Principal:
    auth: Authenticator = websocket.app.state.ctx.auth
    key = websocket.headers.get("x-api-key") or websocket.query_params.get("key")
    authz = websocket.headers.get("authorization", "")
    if not key and authz.lower().startswith("bearer "):
        key = authz[7:].strip()
    return await auth.verify_async(key)


def ensure_initial_admin_key(store: Any) -> str | None:
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
