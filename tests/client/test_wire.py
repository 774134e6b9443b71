"""The frames channel (``aisp.client._wire``) against scripted HTTP servers on loopback: every
framing HTTP/1.1 allows, keep-alive reuse, a kept-alive connection the server closed, and
answers it cannot frame (retried by the client, never misread)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from aisp.client import Client
from aisp.client._wire import WireChannel, WireError

FRAME = (b'{"width":4,"height":4,"format":"png","models":{"fake":{"model":"fake","inference_ms":1,'
         b'"num_detections":0,"detections":[]}},"inference_ms":{"fake":1},"decode_ms":1,"total_ms":2}')


def _read_request(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes, bytes]:
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    while len(rest) < length:
        rest += conn.recv(65536)
    return head, rest[:length], rest[length:]


@contextmanager
def http_server(answer: Callable[[int, int, bytes, bytes], bytes | None]) -> Iterator[tuple[int, list]]:
    """``answer(connection number, request number on it, head, body)`` -> bytes to send, or None to
    close the connection without answering."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    seen: list[tuple[int, int, bytes]] = []
    stop = threading.Event()

    def serve(conn: socket.socket, n: int) -> None:
        buf, i = b"", 0
        with conn:
            while not stop.is_set():
                try:
                    head, body, buf = _read_request(conn, buf)
                except (ConnectionError, OSError):
                    return
                i += 1
                seen.append((n, i, head))
                out = answer(n, i, head, body)
                if out is None:
                    return
                conn.sendall(out)
                if b"connection: close" in out.split(b"\r\n\r\n")[0].lower():
                    return

    def accept() -> None:
        n = 0
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            n += 1
            threading.Thread(target=serve, args=(conn, n), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1], seen
    finally:
        stop.set()
        socket.create_connection(srv.getsockname(), 5).close()  # wakes accept() to see the stop
        t.join(5)
        srv.close()


def _ok(body: bytes = FRAME, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra + \
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def _chunked(body: bytes) -> bytes:
    mid = len(body) // 2
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in (body[:mid], body[mid:]))
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX-Trailer: 1\r\n\r\n"


@pytest.mark.parametrize(
    "answer",
    [
        _ok(),
        b"HTTP/1.1 100 Continue\r\n\r\n" + _ok(),
        _chunked(FRAME),
        _ok(extra=b"Connection: close\r\n"),
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + FRAME,  # framed by the end of the connection
    ],
    ids=["content-length", "100-continue", "chunked", "close", "read-to-close"],
)
def test_every_framing(answer: bytes) -> None:
    closes = b"close" in answer.split(b"\r\n\r\n")[0].lower()
    with http_server(lambda n, i, head, body: answer) as (port, seen):
        with Client(f"http://127.0.0.1:{port}", "k3y", environ={}, timeout=5) as c:
            for _ in range(3):
                assert c.process(b"\x89PNG\r\n\x1a\n....", "fake").width == 4
    assert len(seen) == 3
    assert len({n for n, _, _ in seen}) == (3 if closes else 1)  # keep-alive unless told to close
    head = seen[0][2].decode()
    assert head.startswith("POST /api/frames/process?models=fake HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}" in head and "X-API-Key: k3y" in head
    assert "Content-Type: image/png" in head


def test_a_kept_alive_connection_closed_by_the_server_is_replaced() -> None:
    def answer(n: int, i: int, head: bytes, body: bytes) -> bytes | None:
        return None if i == 2 else _ok()  # the server drops each connection at its second request

    with http_server(answer) as (port, seen):
        waits: list[float] = []
        with Client(f"http://127.0.0.1:{port}", environ={}, timeout=5, sleep=waits.append) as c:
            for _ in range(3):
                c.process(b"\xff\xd8\xff....", "fake")
    assert waits == []  # replaced inside the channel, not by a client retry
    assert [(n, i) for n, i, _ in seen] == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1)]


@pytest.mark.parametrize(
    "bad",
    [
        b"SPDY/3 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    ],
)
def test_answers_it_cannot_frame_are_retried_then_raised(bad: bytes) -> None:
    with http_server(lambda n, i, head, body: bad) as (port, seen):
        waits: list[float] = []
        with Client(f"http://127.0.0.1:{port}", environ={}, timeout=5, sleep=waits.append) as c:
            with pytest.raises(Exception, match="cannot reach the AISP server"):
                c.process(b"\xff\xd8\xff....", "fake")
    assert len(waits) == 3 and len(seen) == 4  # the policy's 4 attempts


def test_a_refused_connection_is_not_connected() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ch = WireChannel(f"http://127.0.0.1:{port}", {}, timeout=1, connect_timeout=1)
    with pytest.raises(WireError) as info:
        ch.request("POST", "/x", None, b"", {})
    assert info.value.connected is False
    ch.close()


def test_errors_come_back_with_their_body() -> None:
    from aisp import errors as E

    body = b'{"status":"error","error":{"code":404,"name":"NOT_FOUND","message":"unknown model \'x\'",' \
           b'"details":{"kind":"model","key":"x"}}}'
    head = b"HTTP/1.1 404 Not Found\r\nX-Request-ID: abc\r\nContent-Length: %d\r\n\r\n" % len(body)
    answer = head + body
    with http_server(lambda n, i, head, b: answer) as (port, _):
        with Client(f"http://127.0.0.1:{port}", environ={}, timeout=5) as c:
            with pytest.raises(E.NotFoundError) as info:
                c.process(b"\xff\xd8\xff....", "x")
    assert info.value.key == "x" and info.value.request_id == "abc"
