"""The pieces of ``streams.watch`` shared by the sync and async clients.

``/ws/streams/{id}`` sends ``{"type": "result", ...}`` per frame and ``{"type": "end"}`` when the
stream is deleted or the server stops; an error (bad key, unknown stream) comes as one unified
error body followed by a close with code ``4000 + status``. A watcher reconnects after any other
loss of the connection (server restart, network), waiting :func:`backoff` between tries, and
stops on ``end`` or on an error the server names (those would repeat).

Auth on the handshake: a short-lived ticket (``POST /api/auth/ticket`` -> ``?ticket=``) where the
server offers one; otherwise the ``X-API-Key`` header, which every AISP server reads on a
WebSocket handshake. The key never goes into the URL.
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any

from aisp.client._errors import RemoteUnavailableError, error_from_response
from aisp.client._types import StreamResult
from aisp.errors import AISPError

__all__ = [
    "END",
    "parse_message",
    "parse_event_message",
    "backoff",
    "handshake_error",
    "ticket_url",
    "TICKET_ABSENT",
]

log = logging.getLogger("aisp.client")

END = object()
#: answers of ``POST /api/auth/ticket`` meaning "use the header instead"
TICKET_ABSENT = (404, 405, 403)
_MAX_MESSAGE = 64 * 1024 * 1024


def parse_message(raw: str | bytes) -> StreamResult | object | None:
    """A typed result, :data:`END`, or None for a message of another type; raises the error a
    unified error body names."""
    try:
        msg = json.loads(raw)
    except ValueError:
        raise RemoteUnavailableError("the stream WebSocket sent a message that is not JSON") from None
    if not isinstance(msg, dict):
        return None
    if msg.get("status") == "error" and isinstance(msg.get("error"), dict):
        code = int(msg["error"].get("code") or 500)
        body = raw.encode() if isinstance(raw, str) else raw
        raise error_from_response(code, body, {}, method="GET")
    kind = msg.get("type")
    if kind == "end":
        return END
    if kind == "result":
        return StreamResult.from_dict(msg)
    return None


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds before reconnect number ``failures`` (1, 2, ...): exponential with jitter."""
    delay = min(cap, base * (2 ** max(0, failures - 1)))
    return delay * (0.5 + random.random() / 2)


def handshake_error(exc: Exception, url: str) -> AISPError | None:
    """The error for a refused handshake (an HTTP answer instead of the upgrade), or None when
    the failure is a lost connection worth retrying."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is None:
        return None
    headers = {k.lower(): v for k, v in dict(getattr(response, "headers", {}) or {}).items()}
    err = error_from_response(int(status), bytes(getattr(response, "body", b"") or b""), headers,
                              method="GET", url=url)
    return None if int(status) in (502, 503, 504) else err


def ticket_url(ws_base: str, path: str, ticket: str | None, query: dict[str, str] | None = None) -> str:
    """The WebSocket URL: ``query`` (filters) and the ticket, if any, as parameters."""
    from urllib.parse import urlencode

    params = dict(query or {})
    if ticket:
        params["ticket"] = ticket
    return f"{ws_base}{path}" + (f"?{urlencode(params)}" if params else "")


def parse_event_message(raw: str | bytes) -> Any:
    """One message of ``WS /ws/events``: an :class:`aisp.events.Event` for ``{"type": "event",
    "event": {...}}``, :data:`END` for ``end``, None for anything else (``dropped`` counts are
    logged); an error body is raised."""
    from aisp.events import Event

    try:
        msg = json.loads(raw)
    except ValueError:
        raise RemoteUnavailableError("the events WebSocket sent a message that is not JSON") from None
    if not isinstance(msg, dict):
        return None
    if msg.get("status") == "error" and isinstance(msg.get("error"), dict):
        code = int(msg["error"].get("code") or 500)
        raise error_from_response(code, raw.encode() if isinstance(raw, str) else raw, {}, method="GET")
    kind = msg.get("type")
    if kind == "end":
        return END
    if kind == "event" and isinstance(msg.get("event"), dict):
        return Event.from_dict(msg["event"])
    if kind == "dropped":
        log.warning("events WebSocket: the server dropped %s events for this slow reader", msg.get("count"))
    return None


def connect_kwargs(headers: dict[str, str], open_timeout: float) -> dict[str, Any]:
    return {
        "additional_headers": headers,
        "open_timeout": open_timeout,
        "max_size": _MAX_MESSAGE,
        "user_agent_header": "aisp-client",
    }
