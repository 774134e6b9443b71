"""``aisp bench api``: its HTTP client reads answers right, and a short run measures a real
``aisp serve`` and the bare-ASGI floor beside it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from aisp.bench.api import _Connection


class CannedServer:
    """A TCP server that answers each request with the next canned bytes, then may close."""

    def __init__(self, answers: list[bytes], close_after: int | None = None) -> None:
        self.answers = list(answers)
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                served = 0
                while self.answers:
                    request = conn.recv(65536)
                    if not request:
                        break
                    self.requests.append(request)
                    conn.sendall(self.answers.pop(0))
                    served += 1
                    if self.close_after is not None and served >= self.close_after:
                        break

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def canned() -> Iterator[type[CannedServer]]:
    servers: list[CannedServer] = []

    def make(*args, **kwargs) -> CannedServer:
        server = CannedServer(*args, **kwargs)
        servers.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in servers:
        server.close()


def answer(status: int, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_reads_answers_framed_by_content_length(canned) -> None:
    # two answers arrive in one segment: the second must be kept for the next request
    server = canned([answer(200, b'{"a":1}') + answer(404, b"nope"), b""])
    conn = _Connection("127.0.0.1", server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    try:
        assert conn.roundtrip() == (200, b'{"a":1}')
        assert conn.roundtrip() == (404, b"nope")
    finally:
        conn.close()


def test_reconnects_after_connection_close(canned) -> None:
    server = canned([answer(200, b"one", "Connection: close"), answer(200, b"two")], close_after=1)
    conn = _Connection("127.0.0.1", server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    try:
        assert conn.roundtrip() == (200, b"one")
        assert conn.roundtrip() == (200, b"two")
        assert server.connections == 2
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "closed the connection"),
    ],
)
def test_refuses_answers_it_cannot_frame(canned, raw: bytes, message: str) -> None:
    server = canned([raw], close_after=1)
    conn = _Connection("127.0.0.1", server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    try:
        with pytest.raises((ValueError, ConnectionError), match=message):
            conn.roundtrip()
    finally:
        conn.close()


def test_short_run_measures_the_api_and_the_floor() -> None:
    pytest.importorskip("mediapipe")
    from aisp.bench import api

    result = api.run(quick=True, duration=1.5, compare_reduced_decode=False, compare_big_images=False)
    for key in ("frames_process", "frames_process_bare_asgi"):
        load = result[key]
        assert load["requests_ok"] > 0 and set(load["status"]) == {"200"}, load
        assert 0 < load["latency_ms_p50"] <= load["latency_ms_p99"]
        assert load["server_cpu_ms_per_request"] > 0
    assert result["frames_process_bare_asgi"]["threads"] >= 1
    assert set(result["api_vs_bare"]) >= {"latency_ms_p50", "latency_ms_p99", "requests_per_s"}
    assert 0 < result["startup_to_health_s"] <= result["startup_to_ready_s"]
    assert result["exit_code"] == 0 and result["model_ms_per_frame_p50"] > 0
    assert result["goal_met"] == (result["frames_process"]["latency_ms_p99"] <= 30.0)


def test_merge_adds_the_abba_halves() -> None:
    from aisp.bench.api import _merge

    def part(lat: list[float], seconds: float, cpu: tuple[float, float]) -> dict:
        return {
            "_latencies": lat, "requests_ok": len(lat), "duration_s": seconds, "_cpu_s": cpu,
            "status": {"200": len(lat)}, "requests_per_s": len(lat) / seconds,
        }

    parts = [part([1.0, 2.0], 1.0, (0.004, 0.001)), part([3.0, 4.0, 5.0, 6.0], 2.0, (0.008, 0.002))]
    merged = _merge(parts, 8)
    assert merged["requests_ok"] == 6 and merged["requests_per_s"] == 2.0
    assert merged["requests_per_s_by_run"] == [2.0, 2.0] and merged["status"] == {"200": 6}
    assert merged["latency_ms_p50"] in (3.0, 4.0) and merged["latency_ms_max"] == 6.0
    assert merged["server_cpu_ms_per_request"] == 2.0 and merged["client_cpu_ms_per_request"] == 0.5
    assert not any(k.startswith("_") for k in merged)
