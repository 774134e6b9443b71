"""uvicorn's HTTP protocol (httptools) with the limits it lacks: header size and count, and
timeouts for slow or idle clients.

uvicorn bounds neither the size of a request's headers (httptools accumulates a 64 MiB header
for as long as the client sends it) nor the time a client may take to send them, and it has no
timer at all on a fresh connection that sends nothing. :func:`guarded_protocol` returns a
subclass of uvicorn's ``HttpToolsProtocol`` that

- answers **431** and closes when a request's line and headers pass ``max_header_bytes``
  (``AISP_HTTP_MAX_HEADER_KB``) or ``max_headers`` lines (``AISP_HTTP_MAX_HEADERS``), before the
  app sees the request;
- closes a connection whose request headers are not complete within ``header_timeout_s``
  (``AISP_HTTP_HEADER_TIMEOUT_SECONDS``) of the connection opening or of the request's first
  byte (a **408** is sent when part of a request had arrived);
- closes a connection whose request body stalls, no byte for ``body_timeout_s``
  (``AISP_HTTP_BODY_TIMEOUT_SECONDS``), while the app is waiting for it (not while the app has
  paused reading);
- idle keep-alive connections are closed by uvicorn itself after ``timeout_keep_alive``
  (``AISP_HTTP_KEEPALIVE_TIMEOUT_SECONDS``).

WebSocket connections are handed to uvicorn's WebSocket protocol with their timers cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["HttpLimits", "guarded_protocol"]

log = logging.getLogger("aisp.server")


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Any) -> HttpLimits:
        return cls(
            max_header_bytes=int(settings.http_max_header_kb * 1024),
            max_headers=settings.http_max_headers,
            header_timeout_s=settings.http_header_timeout_seconds,
            body_timeout_s=settings.http_body_timeout_seconds,
        )


def _status(code: int, reason: str, message: str) -> bytes:
    body = message.encode()
    return (
        f"HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def guarded_protocol(limits: HttpLimits) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's httptools protocol enforcing ``limits`` (see the module doc)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True
            self._head_bytes = 0
            self._header_count = 0
            self._too_many = False
            self._started = False  # a byte of the current request has arrived
            self._head_timer: asyncio.TimerHandle | None = None
            self._body_timer: asyncio.TimerHandle | None = None

        # --- connection ---------------------------------------------------------------------
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_timers()
            super().connection_lost(exc)

        def handle_websocket_upgrade(self) -> None:
            self._cancel_timers()
            super().handle_websocket_upgrade()

        def data_received(self, data: bytes) -> None:
            if self._body_timer is not None:
                self._arm_body()  # a body byte (or more) arrived: the stall clock restarts
            counting = self._in_head
            super().data_received(data)
            if self.transport.is_closing():
                return
            if self._too_many:
                self._reject(
                    431, "Request Header Fields Too Large", f"more than {limits.max_headers} headers"
                )
                return
            if counting and self._in_head:
                self._head_bytes += len(data)
                if self._head_bytes > limits.max_header_bytes:
                    self._reject(
                        431, "Request Header Fields Too Large",
                        f"request headers larger than {limits.max_header_bytes} bytes",
                    )

        # --- parser callbacks ---------------------------------------------------------------
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True
            self._head_bytes = 0
            self._header_count = 0
            self._too_many = False
            self._started = True
            if self._head_timer is None:
                self._arm_head()

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_count += 1
            if self._header_count > limits.max_headers:
                self._too_many = True
                return
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._cancel(self, "_head_timer")
            if self._too_many:
                return  # data_received answers 431; the app never sees this request
            super().on_headers_complete()
            if self.cycle is not None and self._expects_body():
                self._arm_body()

        def on_body(self, body: bytes) -> None:
            if not self._too_many:
                super().on_body(body)

        def on_message_complete(self) -> None:
            self._cancel(self, "_body_timer")
            self._started = False
            if not self._too_many:
                super().on_message_complete()

        def on_response_complete(self) -> None:
            self._cancel(self, "_body_timer")
            super().on_response_complete()

        # --- timers -------------------------------------------------------------------------
        def _expects_body(self) -> bool:
            for name, value in self.headers:
                if name == b"transfer-encoding":
                    return True
                if name == b"content-length" and value.strip() not in (b"0", b""):
                    return True
            return False

        @staticmethod
        def _cancel(obj: Any, attr: str) -> None:
            timer = getattr(obj, attr)
            if timer is not None:
                timer.cancel()
                setattr(obj, attr, None)

        def _cancel_timers(self) -> None:
            self._cancel(self, "_head_timer")
            self._cancel(self, "_body_timer")

        def _arm_head(self) -> None:
            self._cancel(self, "_head_timer")
            self._head_timer = self.loop.call_later(limits.header_timeout_s, self._head_timeout)

        def _arm_body(self) -> None:
            self._cancel(self, "_body_timer")
            self._body_timer = self.loop.call_later(limits.body_timeout_s, self._body_timeout)

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or not self._in_head:
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a response is still being written; uvicorn arms keep-alive after it
            if self._started:
                self._reject(408, "Request Timeout", "request headers not received in time")
            else:
                self.transport.close()

        def _body_timeout(self) -> None:
            self._body_timer = None
            cycle = self.cycle
            if self.transport.is_closing() or cycle is None or not cycle.more_body or cycle.response_complete:
                return
            if self.flow.read_paused:  # the app is not reading: not the client's fault
                self._arm_body()
                return
            log.debug("closing a connection whose request body stalled")
            self.transport.close()

        def _reject(self, code: int, reason: str, message: str) -> None:
            self._cancel_timers()
            log.debug("closing a connection: %s %s", code, message)
            self.transport.write(_status(code, reason, message))
            self.transport.close()

    return GuardedHttpToolsProtocol
