"""API-key authentication and the two roles.

Every HTTP request and WebSocket to a protected route is authenticated once, by the security
gate (:mod:`aisp.api.gate`), before any body byte is read; the gate puts the
:class:`Principal` in the request's scope state, and the route dependencies (:func:`authorize`,
:func:`require_admin`, :func:`authorize_websocket`) check its role. Key reading is one function,
:func:`extract_api_key`; role checking is one function, :func:`check_role`.

Where the key is read from, in this order:

1. ``X-API-Key: <key>``;
2. ``Authorization: Bearer <key>`` (scheme case-insensitive, as FastAPI's ``HTTPBearer`` reads it).

A key is never read from a URL: ``?key=`` is refused everywhere, because URLs end up in access
logs, browser history and ``Referer`` headers. Browsers open WebSockets and ``<img src>`` MJPEG
views with a short-lived, single-use, path-scoped ticket instead (``POST /api/auth/ticket``,
then ``?ticket=``; :mod:`aisp.api.tickets`). An empty value counts as absent.

Keys are stored hashed by the store (:mod:`aisp.store`); a verified key is remembered for
:data:`VERIFY_TTL_S` seconds (by its SHA-256, never in plain text) so the frame path does not query
the database on every request. Revoking through the API forgets it at once; revoking with
``aisp keys revoke`` in another process takes effect within that TTL. Long-lived responses
(``/ws/live``, ``/ws/streams/{id}``, ``/ws/events``, MJPEG) re-check their key with
:meth:`Authenticator.ensure_active` about once a second and end within that TTL (plus that
second) of a revocation.

Roles: ``admin`` may do everything; ``viewer`` may only read (``GET``/``HEAD``/``OPTIONS``, and
minting a ticket); a few routes (key management) need ``admin`` even to read. With
``AISP_AUTH=off`` every caller is an admin (the server refuses that off loopback).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio.to_thread
from fastapi import Depends, Request, WebSocket
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from aisp.api.throttle import FailureThrottle
from aisp.api.tickets import TicketBook
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
    "INITIAL_KEY_FILE",
    "VERIFY_TTL_S",
    "READ_METHODS",
    "READ_LIKE_POSTS",
]

log = logging.getLogger("aisp.api")

VERIFY_TTL_S = 5.0
#: Methods a ``viewer`` key may use.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: ``POST`` routes that only read (a viewer may call them): minting a URL ticket.
READ_LIKE_POSTS = frozenset({"/api/auth/ticket"})
#: Where the first admin key is written (inside the data dir, owner-only), never to the log.
INITIAL_KEY_FILE = "initial-admin-key"
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
    """Verifies keys (with a short memo), and holds the URL tickets and the failed-key throttle."""

    def __init__(
        self, ctx: _AuthContext, *, ttl_s: float = VERIFY_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ctx = ctx
        self._ttl = ttl_s
        self._clock = clock
        self._seen: dict[str, tuple[Principal, float]] = {}
        self._active: dict[str, float] = {}  # key id -> known active until
        self._active_ids: tuple[frozenset[str], float] = (frozenset(), float("-inf"))
        self._lock = threading.Lock()
        settings = ctx.settings
        self.tickets: TicketBook[Principal] = TicketBook(ttl_s=settings.auth_ticket_ttl_seconds, clock=clock)
        self.throttle = FailureThrottle(
            burst=settings.auth_fail_burst, rate=settings.auth_fail_per_second, clock=clock
        )

    @property
    def enabled(self) -> bool:
        return self._ctx.settings.auth == "on"

    def forget(self) -> None:
        """Drop every remembered verification (a key was revoked here)."""
        with self._lock:
            self._seen.clear()
            self._active.clear()
            self._active_ids = (frozenset(), float("-inf"))

    def is_active(self, principal: Principal) -> bool:
        """Whether the key behind ``principal`` is still valid (store lookup at most once per key
        per TTL). Auth off, or a principal without a key: always. Raises if the store is away."""
        if not self.enabled or principal.key_id is None:
            return True
        now = self._clock()
        with self._lock:
            until = self._active.get(principal.key_id)
        if until is not None and until > now:
            return True
        from aisp.errors import NotFoundError

        try:
            active = self._ctx.require_store().keys.get(principal.key_id).active
        except NotFoundError:
            active = False
        if active:
            with self._lock:
                if len(self._active) > _MAX_REMEMBERED:
                    self._active.clear()
                self._active[principal.key_id] = now + self._ttl
        return active

    async def ensure_active(self, principal: Principal) -> None:
        """Raise ``UnauthorizedError`` when the key behind ``principal`` was revoked (the store
        lookup, if any, off the event loop). Long-lived responses call it about once a second."""
        if not self.enabled or principal.key_id is None:
            return
        now = self._clock()
        with self._lock:
            until = self._active.get(principal.key_id)
        if until is not None and until > now:
            return
        if not await anyio.to_thread.run_sync(self.is_active, principal):
            raise UnauthorizedError("the API key was revoked", details={"key_id": principal.key_id})

    async def could_be_valid(self, key: str) -> bool:
        """Whether ``key`` names an active key id (the list of ids is read at most once per TTL):
        a throttled client's key is looked up only then (:mod:`aisp.api.gate`)."""
        from aisp.store.keys import KeyRepository  # the store is open by now: no import cost

        key_id = KeyRepository.parse_id(key)
        if key_id is None:
            return False
        now = self._clock()
        ids, until = self._active_ids
        if until <= now:
            store = self._ctx.require_store()
            records = await anyio.to_thread.run_sync(lambda: store.keys.list(include_revoked=False))
            ids = frozenset(r.id for r in records)
            self._active_ids = (ids, now + self._ttl)
        return key_id in ids

    def mint_ticket(self, principal: Principal, path: str) -> tuple[str, float]:
        """A single-use ticket for ``path`` carrying ``principal``; returns it and its TTL."""
        return self.tickets.mint(principal, path)

    def redeem_ticket(self, token: str, path: str) -> Principal | None:
        """The principal of a live ticket scoped to ``path`` (used up); None when refused. The
        minting key must still be active (checked by the caller: :meth:`is_active`)."""
        return self.tickets.redeem(token, path)

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


def extract_api_key(headers: Mapping[str, str]) -> str | None:
    """The API key a request carries in its headers, or None (see the module doc for the order).

    ``headers`` must look names up case-insensitively (Starlette's ``Headers``). URLs are never
    read: ``?key=`` is refused (:mod:`aisp.api.gate`).
    """
    key = headers.get("x-api-key")
    if key:
        return key
    authorization = headers.get("authorization")
    if authorization:
        scheme, credentials = get_authorization_scheme_param(authorization)
        if credentials and scheme.lower() == "bearer":
            return credentials
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


async def _authorize(conn: HTTPConnection, method: str) -> Principal:
    """The principal the gate put in the scope state; without the gate (an app assembled by
    hand), the key in the headers is verified here."""
    principal: Principal | None = getattr(conn.state, "principal", None)
    if principal is None:
        auth: Authenticator = conn.app.state.ctx.auth
        principal = await auth.verify_async(extract_api_key(conn.headers))
        conn.state.principal = principal
    if conn.scope.get("path") in READ_LIKE_POSTS and method.upper() == "POST":
        method = "GET"
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
    return await _authorize(request, request.method)


async def authorize_streaming(
    request: Request, _header: None = _HEADER_DOC, _bearer: None = _BEARER_DOC
) -> Principal:
    """:func:`authorize` for the watch routes (the gate also accepts a ``?ticket=`` there)."""
    return await _authorize(request, request.method)


async def require_admin(request: Request, principal: Principal = Depends(authorize)) -> Principal:
    """Dependency for the routes that need an admin key even to read (key management)."""
    return check_role(principal, request.method, admin_only=True)


async def authorize_websocket(websocket: WebSocket) -> Principal:
    """A WebSocket's principal (from the gate: header key or ``?ticket=``) checked as a read;
    raises like :func:`authorize`."""
    return await _authorize(websocket, "GET")


def ensure_initial_admin_key(store: Store, data_dir: Path) -> str | None:
    """Create the first admin key when the key table has never held a key (first start), and write
    it to ``<data_dir>/initial-admin-key`` (mode 0600), never to the log. Returns it.

    Revoked keys stay in the table, so revoking every key and restarting mints nothing: recover
    with ``aisp keys create --role admin`` on the host.
    """
    if store.keys.count(active_only=False) > 0:
        if store.keys.count() == 0:
            log.warning(
                "no active API key: every key was revoked. Create one on this host with "
                "'aisp keys create --role admin --name <name>'"
            )
        return None
    _record, plaintext = store.keys.create("admin", "initial-admin")
    target = Path(data_dir) / INITIAL_KEY_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(plaintext + "\n")
        os.chmod(target, 0o600)
        log.warning(
            "no API key existed, so an admin key was created and written to %s (readable by this user "
            "only). Read it, store it, then delete the file; send it as 'X-API-Key: <key>'. Manage keys "
            "with 'aisp keys create|list|revoke'",
            target,
        )
    except OSError as exc:
        log.error(
            "an admin key was created but could not be written to %s (%s); create another with "
            "'aisp keys create --role admin' and revoke key id %s",
            target, exc.strerror or exc, _record.id,
        )
    return plaintext
