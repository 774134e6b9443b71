"""Short-lived, single-use, path-scoped URL tickets: how a browser opens a WebSocket or an
``<img src>`` MJPEG view without putting its long-lived API key in a URL.

``POST /api/auth/ticket`` (key in a header) mints one for a path, or for a path prefix that ends
in ``/``. The ticket is then accepted once, as ``?ticket=<ticket>``, on a ``GET``/``HEAD`` or
WebSocket request to that path (or below that prefix), within its TTL
(``AISP_AUTH_TICKET_TTL_SECONDS``). It carries the role and key id of the key that minted it,
so revoking that key also voids its tickets (the gate checks the key is still active when the
ticket is redeemed).

Tickets are kept in memory only (by their SHA-256, never in plain text); a restart voids them,
which costs a browser one more ``POST``. The book is bounded: at most :data:`MAX_TICKETS` live
tickets, expired ones are dropped on every mint, and past the bound the oldest is dropped.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from aisp.errors import ValidationError

__all__ = ["TicketBook", "Ticket", "check_ticket_path", "MAX_TICKETS"]

#: Live tickets held at most (a flood of mints drops the oldest first).
MAX_TICKETS = 10_000
_MAX_PATH = 512

P = TypeVar("P")


@dataclass(frozen=True)
class Ticket(Generic[P]):
    principal: P
    path: str
    expires_at: float  # on the book's clock


def check_ticket_path(path: object) -> str:
    """``path`` when it is an absolute URL path a ticket may be scoped to; else ValidationError."""
    if not isinstance(path, str) or not path.startswith("/") or len(path) > _MAX_PATH:
        raise ValidationError(
            f"path: expected an absolute URL path such as '/ws/live' (at most {_MAX_PATH} characters)",
            field="path",
        )
    if any(ch in path for ch in "?#\\") or any(ord(ch) < 33 or ord(ch) == 127 for ch in path):
        raise ValidationError("path: no query, fragment, backslash, space or control character", field="path")
    if any(part in (".", "..") for part in path.split("/")):
        raise ValidationError("path: '.' and '..' segments are not allowed", field="path")
    if "//" in path:
        raise ValidationError("path: empty segments ('//') are not allowed", field="path")
    return path


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8", "replace")).hexdigest()


def path_allowed(scope: str, path: str) -> bool:
    """Whether a ticket scoped to ``scope`` may open ``path`` (same path, or below a prefix that
    ends in ``/``)."""
    if scope.endswith("/"):
        return path.startswith(scope)
    return path == scope


class TicketBook(Generic[P]):
    """Mint and redeem tickets (thread-safe; clock injectable)."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic,
                 max_tickets: int = MAX_TICKETS) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._max = max_tickets
        self._tickets: OrderedDict[str, Ticket[P]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._tickets)

    def mint(self, principal: P, path: str) -> tuple[str, float]:
        """A new ticket for ``path``; returns it and its lifetime left in seconds."""
        check_ticket_path(path)
        token = "tkt_" + secrets.token_urlsafe(24)
        now = self._clock()
        with self._lock:
            self._sweep(now)
            while len(self._tickets) >= self._max:
                self._tickets.popitem(last=False)
            self._tickets[_digest(token)] = Ticket(principal, path, now + self.ttl_s)
        return token, self.ttl_s

    def redeem(self, token: str, path: str) -> P | None:
        """The ticket's principal when ``token`` is live and scoped to ``path``; the ticket is used
        up either way once presented on a path it covers (single use). None otherwise."""
        if not token or len(token) > 128:
            return None
        digest = _digest(token)
        now = self._clock()
        with self._lock:
            ticket = self._tickets.get(digest)
            if ticket is None:
                return None
            if ticket.expires_at <= now:
                del self._tickets[digest]
                return None
            if not path_allowed(ticket.path, path):
                return None  # presented on the wrong path: not used up, but not accepted
            del self._tickets[digest]
        return ticket.principal

    def revoke_where(self, predicate: Callable[[P], bool]) -> int:
        """Drop every ticket whose principal matches (a revoked key's tickets); returns how many."""
        with self._lock:
            doomed = [d for d, t in self._tickets.items() if predicate(t.principal)]
            for d in doomed:
                del self._tickets[d]
        return len(doomed)

    def _sweep(self, now: float) -> None:
        # one TTL for all, kept in minting order: the expired ones are at the front
        while self._tickets:
            digest, ticket = next(iter(self._tickets.items()))
            if ticket.expires_at > now:
                return
            del self._tickets[digest]
