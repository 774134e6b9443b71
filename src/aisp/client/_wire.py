"""A lean HTTP/1.1 keep-alive channel for the client's hot call, ``POST /api/frames/process``.

httpx spends about 1 ms of CPU per request on this 2-core machine (URL parsing, header models,
h11's validation, the pool's bookkeeping); h11 alone about 0.3 ms. A client streaming frames
pays that on every frame, and on a machine shared with the server every millisecond is taken
from inference (``aisp bench api``, section ``frames_process_client``, has the figures). This
channel sends one prebuilt request per call over pooled keep-alive sockets (``TCP_NODELAY``;
the head and the body leave in one ``sendmsg``) and reads the answer framed by
``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the connection, skipping ``1xx``
interim answers. Everything else the client sends goes through httpx.

Header values are the client's own (checked when the client is configured: no CR/LF), so the
request cannot be split. An answer it cannot frame raises :class:`WireError`, and the call is
retried like any broken connection (the frames call is idempotent).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

__all__ = ["WireChannel", "WireError", "WireReply"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 512 * 1024 * 1024
_MAX_IDLE = 32


class WireError(OSError):
    """The connection failed or the answer could not be framed; ``connected`` tells whether a
    connection was open (False: nothing reached the server)."""

    def __init__(self, message: str, *, connected: bool) -> None:
        super().__init__(message)
        self.connected = connected


class WireReply:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class _Conn:
    __slots__ = ("sock", "buf")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _more(self) -> bytes:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise WireError("the server closed the connection", connected=True)
        return chunk

    def read_head(self) -> tuple[int, dict[str, str]]:
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > _MAX_HEAD:
                raise WireError("answer head larger than 64 KiB", connected=True)
            buf += self._more()
        lines = buf[:end].decode("latin-1").split("\r\n")
        self.buf = buf[end + 4 :]
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise WireError(f"not an HTTP/1.x status line: {lines[0][:80]!r}", connected=True)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise WireError("malformed header line in the answer", connected=True)
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return int(parts[1]), headers

    def read_exact(self, n: int) -> bytes:
        buf = self.buf
        while len(buf) < n:
            buf += self._more()
        self.buf = buf[n:]
        return buf[:n]

    def read_line(self) -> bytes:
        buf = self.buf
        while (end := buf.find(b"\r\n")) < 0:
            if len(buf) > _MAX_HEAD:
                raise WireError("chunk size line too long", connected=True)
            buf += self._more()
        self.buf = buf[end + 2 :]
        return buf[:end]

    def read_chunked(self) -> bytes:
        out = []
        total = 0
        while True:
            size_text = self.read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise WireError("bad chunk size in the answer", connected=True) from None
            if size == 0:
                while self.read_line():  # trailers, up to the empty line
                    pass
                return b"".join(out)
            total += size
            if total > _MAX_BODY:
                raise WireError("answer body too large", connected=True)
            out.append(self.read_exact(size))
            if self.read_exact(2) != b"\r\n":
                raise WireError("chunk not followed by CRLF", connected=True)

    def read_to_close(self) -> bytes:
        out = [self.buf]
        self.buf = b""
        while chunk := self.sock.recv(262144):
            out.append(chunk)
        return b"".join(out)


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
        default = parts.port is None
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "host")
        self._host_header = host if default else f"{host}:{self._port}"
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()
        self._ssl = ssl.create_default_context() if self._tls else None
        self._closed = False

    def _connect(self) -> _Conn:
        try:
            sock = socket.create_connection((self._host, self._port), self._connect_timeout)
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
        return _Conn(sock)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes,
        headers: Mapping[str, str],
    ) -> WireReply:
        target = self._prefix + path + ("?" + urlencode(params) if params else "")
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self._host_header}\r\n{self._fixed}{extra}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        reused = conn is not None
        if conn is None:
            conn = self._connect()
        try:
            return self._exchange(conn, head, body)
        except WireError as exc:
            conn.close()
            if reused and exc.connected:  # a kept-alive connection the server had closed: once more
                return self._exchange_fresh(head, body)
            raise
        except OSError as exc:
            conn.close()
            if reused:
                return self._exchange_fresh(head, body)
            raise WireError(f"{type(exc).__name__}: {exc}", connected=True) from None

    def _exchange_fresh(self, head: bytes, body: bytes) -> WireReply:
        conn = self._connect()
        try:
            return self._exchange(conn, head, body)
        except WireError:
            conn.close()
            raise
        except OSError as exc:
            conn.close()
            raise WireError(f"{type(exc).__name__}: {exc}", connected=True) from None

    def _exchange(self, conn: _Conn, head: bytes, body: bytes) -> WireReply:
        if self._ssl is None:
            sent = conn.sock.sendmsg([head, body])  # one system call, no copy of the body
            if sent < len(head) + len(body):  # a short send: the rest in order
                conn.sock.sendall((head + body)[sent:])
        else:
            conn.sock.sendall(head + body)
        status, headers = conn.read_head()
        while 100 <= status < 200:
            status, headers = conn.read_head()
        keep = headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            data = conn.read_chunked()
        elif (length := headers.get("content-length")) is not None:
            if not length.isdigit() or int(length) > _MAX_BODY:
                raise WireError(f"bad Content-Length {length[:20]!r}", connected=True)
            data = conn.read_exact(int(length))
        elif status in (204, 304):
            data = b""
        else:
            data, keep = conn.read_to_close(), False
        if keep and not self._closed:
            with self._lock:
                if len(self._idle) < _MAX_IDLE:
                    self._idle.append(conn)
                    conn = None  # type: ignore[assignment]
        if conn is not None:
            conn.close()
        return WireReply(status, headers, data)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
