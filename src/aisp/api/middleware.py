"""The request middleware (pure ASGI): request id, body-size limit, timing, last-resort 500.

For every HTTP request it

- takes the incoming ``X-Request-ID`` when it is sane (1-64 of ``[A-Za-z0-9._-]``) or makes one,
  puts it in :data:`aisp.logs.request_id_var` (so every log line of the request carries it) and
  in ``request.state.request_id``, and adds it to the response headers;
- refuses bodies over the upload limit with 413, from ``Content-Length`` up front and by counting
  the streamed bytes (chunked uploads);
- records the request count and latency per route template in :class:`~aisp.api.metrics.ApiMetrics`;
- turns any exception that escaped the handlers into a 500 with the unified body, logged with the
  request id and traceback; the client sees no stack trace.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aisp.errors import PayloadTooLargeError, error_body
from aisp.logs import request_id_var

__all__ = ["RequestMiddleware", "new_request_id"]

log = logging.getLogger("aisp.api")

_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


_ID_PREFIX = uuid.uuid4().hex[:8]  # per process, so ids from different runs do not collide
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A 16-character id, unique within the process (a random per-process prefix and a counter:
    cheaper than a uuid4 per request)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"


class RequestMetrics(Protocol):
    """Where the middleware records each request (:class:`aisp.api.metrics.ApiMetrics`)."""

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None: ...


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    if scope.get("path", "").startswith("/static/"):
        return "/static/*"
    return "<unmatched>"


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: RequestMetrics,
        max_body_bytes: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SANE_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send, rid, headers)
        finally:
            request_id_var.reset(token)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, rid: str, headers: dict[bytes, bytes]
    ) -> None:
        start = self.clock()
        method = scope.get("method", "GET")
        state = {"status": 500, "started": False}
        rid_header = (b"x-request-id", rid.encode("latin-1"))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], rid_header]
            await send(message)

        limit = self.max_body_bytes
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > limit:
                raise PayloadTooLargeError(
                    f"request body too large: {declared} bytes, limit {limit} bytes (setting max_upload_mb)",
                    limit=limit,
                    actual=declared,
                )
            received = 0

            async def receive_wrapper() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise PayloadTooLargeError(
                            f"request body too large: more than {limit} bytes (setting max_upload_mb)",
                            limit=limit,
                            actual=received,
                        )
                return message

            await self.app(scope, receive_wrapper, send_wrapper)
        except PayloadTooLargeError as exc:  # raised before routing or while streaming the body
            if not state["started"]:
                await self._send_error(
                    send_wrapper, exc.status_code, exc.to_body(path=scope["path"], method=method)
                )
        except Exception:
            log.exception("unhandled error in %s %s", method, scope.get("path"))
            if not state["started"]:
                body = error_body(
                    code=500,
                    name="INTERNAL_ERROR",
                    message=f"internal error; see the server log for request id {rid}",
                    details={"request_id": rid},
                    path=scope.get("path"),
                    method=method,
                )
                await self._send_error(send_wrapper, 500, body)
        finally:
            status = state["status"]
            self.metrics.observe_request(method, _route_template(scope), status, self.clock() - start)

    @staticmethod
    async def _send_error(send: Send, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
