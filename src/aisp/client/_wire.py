"""A lean keep-alive channel for the client's hot call, ``POST /api/frames/process``.

httpx spends about 1 ms of CPU per request on a 2-core machine (URL and header models, h11's
validation, the pool's bookkeeping), and the standard library's :mod:`http.client` about 0.15 ms
more than a bare socket (a separate ``send`` for the body, a buffered reader per answer, and
:mod:`email`'s header parser). A client streaming frames pays that on every frame, and on a
machine shared with the server every millisecond is taken from inference (``aisp bench api``,
section ``frames_process_client``, has the figures). This channel therefore writes each request
in one ``sendall`` over pooled keep-alive connections with ``TCP_NODELAY``, and reads the answer
with `httptools <https://github.com/MagicStack/httptools>`_, the llhttp parser that uvicorn
itself uses (status line, headers, ``Content-Length``, chunked bodies with extensions and
trailers, interim ``1xx`` answers, bodies framed by the end of the connection). Everything else
the client sends goes through httpx.

Header values are the client's own (checked when the client is configured: no CR/LF, and checked
again here), so the request cannot be split. An answer the parser refuses raises
:class:`WireError`, and the call is retried like any broken connection (the frames call is
idempotent).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

import httptools

__all__ = ["WireChannel", "WireError", "WireReply"]

_MAX_IDLE = 32
_MAX_BODY = 512 * 1024 * 1024
_MAX_HEAD = 64 * 1024
_RECV = 256 * 1024
_UNSAFE = frozenset("\r\n\0")


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


class _Answer:
    """httptools' callbacks for one answer; interim ``1xx`` answers are skipped."""

    __slots__ = ("parser", "status", "headers", "body", "size", "head_size", "headers_done", "keep_alive",
                 "done")

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.head_size = 0
        self.headers_done = False
        self.keep_alive = False
        self.done = False

    def on_message_begin(self) -> None:
        self.headers, self.body, self.size, self.head_size, self.headers_done = {}, [], 0, 0, False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value)
        if self.head_size > _MAX_HEAD:
            raise WireError("answer headers over 64 KiB", connected=True)
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # read here: the parser resets at the end
        self.headers_done = True
        length = self.headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > _MAX_BODY:
            raise WireError(f"answer body of {int(length)} bytes is over the limit", connected=True)

    def on_body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > _MAX_BODY:
            raise WireError("answer body over the limit", connected=True)
        self.body.append(data)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # interim (100 Continue, 103 Early Hints): the answer follows
            return
        self.done = True

    @property
    def ends_at_close(self) -> bool:
        """Headers read, and the body is framed by the end of the connection (no length, not
        chunked)."""
        return (self.headers_done and "content-length" not in self.headers
                and "chunked" not in self.headers.get("transfer-encoding", "").lower())


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
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._authority = host if parts.port is None else f"{host}:{self._port}"
        self._fixed = {k: v for k, v in headers.items() if k.lower() != "host"}
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._ssl = ssl.create_default_context() if self._tls else None
        self._closed = False

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self._host, self._port), timeout=self._connect_timeout)
        except OSError as exc:
            raise WireError(f"{type(exc).__name__}: {exc}", connected=False) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=self._host)
            sock.settimeout(self._timeout)
        except OSError as exc:
            sock.close()
            raise WireError(f"{type(exc).__name__}: {exc}", connected=False) from None
        return sock

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes,
        headers: Mapping[str, str],
    ) -> WireReply:
        target = self._prefix + path + ("?" + urlencode(params) if params else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._authority}"]
        for name, value in {**self._fixed, **headers}.items():
            if name.lower() != "content-length":
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(body)}")
        if any(_UNSAFE.intersection(line) for line in lines):  # a request must never be split
            raise ValueError("a request line or header value carries CR, LF or NUL")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        with self._lock:
            sock = self._idle.pop() if self._idle else None
        if sock is not None:
            try:
                return self._exchange(sock, message)
            except WireError:
                pass  # a kept-alive connection the server had closed: once more, on a new one
        return self._exchange(self._connect(), message)

    def _exchange(self, sock: socket.socket, message: bytes) -> WireReply:
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        answer.parser = parser
        try:
            sock.sendall(message)
            while not answer.done:
                data = sock.recv(_RECV)
                if not data:
                    if answer.ends_at_close:
                        answer.done = True
                        sock.close()
                        return WireReply(answer.status, answer.headers, b"".join(answer.body))
                    raise WireError("the server closed the connection before its answer ended",
                                    connected=True)
                parser.feed_data(data)
            keep = answer.keep_alive
        except (httptools.HttpParserError, OSError) as exc:
            sock.close()
            if isinstance(exc, WireError):
                raise
            raise WireError(f"{type(exc).__name__}: {exc}", connected=True) from None
        reply = WireReply(answer.status, answer.headers, b"".join(answer.body))
        if keep and not self._closed:
            with self._lock:
                if len(self._idle) < _MAX_IDLE:
                    self._idle.append(sock)
                    return reply
        sock.close()
        return reply

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()
