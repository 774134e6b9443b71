"""A lean keep-alive channel for the client's hot call, ``POST /api/frames/process``.

httpx spends about 1 ms of CPU per request on a 2-core machine (URL and header models, h11's
validation, the pool's bookkeeping); a client streaming frames pays that on every frame, and on
a machine shared with the server every millisecond is taken from inference (``aisp bench api``,
section ``frames_process_client``, has the figures). This channel sends the call through the
standard library's :mod:`http.client` instead: the same HTTP/1.1 parsing CPython ships (status
line, headers, ``Content-Length``, chunked and read-to-close bodies, interim ``1xx`` answers),
over pooled keep-alive connections with ``TCP_NODELAY``. Everything else the client sends goes
through httpx.

Header values are the client's own (checked when the client is configured: no CR/LF), so the
request cannot be split. An answer :mod:`http.client` cannot parse raises :class:`WireError`,
and the call is retried like any broken connection (the frames call is idempotent).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

__all__ = ["WireChannel", "WireError", "WireReply"]

_MAX_IDLE = 32
_MAX_BODY = 512 * 1024 * 1024


class WireError(OSError):
    """The connection failed or the answer could not be read; ``connected`` tells whether a
    connection was open (False: nothing reached the server)."""

    def __init__(self, message: str, *, connected: bool) -> None:
        super().__init__(message)
        self.connected = connected


class WireReply:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class WireChannel:
    """Pooled keep-alive connections to one server (thread-safe: one connection per call)."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], *, timeout: float, connect_timeout: float
    ) -> None:
        parts = urlsplit(base_url)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        self._fixed = {k: v for k, v in headers.items() if k.lower() != "host"}
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._ssl = ssl.create_default_context() if self._tls else None
        self._closed = False

    def _connect(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sock.settimeout(self._timeout)
        except OSError as exc:
            conn.close()
            raise WireError(f"{type(exc).__name__}: {exc}", connected=False) from None
        return conn

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes,
        headers: Mapping[str, str],
    ) -> WireReply:
        target = self._prefix + path + ("?" + urlencode(params) if params else "")
        all_headers = {**self._fixed, **headers, "Content-Length": str(len(body))}
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None:
            try:
                return self._exchange(conn, method, target, body, all_headers)
            except WireError:
                pass  # a kept-alive connection the server had closed: once more, on a new one
        return self._exchange(self._connect(), method, target, body, all_headers)

    def _exchange(
        self, conn: http.client.HTTPConnection, method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> WireReply:
        try:
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            length = resp.getheader("content-length")
            if length is not None and (not length.strip().isdigit() or int(length) > _MAX_BODY):
                raise http.client.HTTPException(f"bad Content-Length {length[:20]!r}")
            data = resp.read()
        except (http.client.HTTPException, OSError) as exc:
            conn.close()
            raise WireError(f"{type(exc).__name__}: {exc}", connected=True) from None
        reply = WireReply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        if resp.will_close or self._closed:
            conn.close()
        else:
            with self._lock:
                if len(self._idle) < _MAX_IDLE:
                    self._idle.append(conn)
                    conn = None  # type: ignore[assignment]
            if conn is not None:
                conn.close()
        return reply

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
