"""``aisp bench security``: what unauthenticated traffic costs a real ``aisp serve``.

Issue 13, item 3, measured from outside over loopback:

1. **Baseline**: ``GET /health`` latency on a keep-alive connection with nothing else running.
2. **Flood**: ``rounds`` rounds of ``clients`` concurrent ``POST /api/tasks`` with
   ``Content-Length: 20 MB`` and no key, each on a fresh connection, sending its body until the
   server stops it; a round starts when the previous one is answered. Each answer's status and
   time (connect to status line) are recorded, and how much of the body the client could push
   before the server closed; meanwhile ``/health`` is timed on its own keep-alive connection and
   the server's RSS is sampled every 10 ms.
3. **Control, same run**: the same rounds as bodiless ``GET /api/tasks`` without a key, so what
   the 20 MB bodies add can be read as a ratio (``p50_ratio_20mb_vs_bodiless``).
4. **Big header**: one ``GET /health`` whose header grows to 64 MiB; time to the 431.

The goals (issue 13): every flood answer a 401 within 50 ms, ``/health`` p99 under 20 ms while
the flood runs, RSS growth under 10 MB. The client threads run on the same machine and take CPU
from the server; on a shared 2-core machine that is part of the figure.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["run"]

_BODY = 20 * 1024 * 1024
_HEADER = 64 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(q / 100.0 * (len(ordered) - 1)))))
    return round(ordered[k], 3)


def _summary(ms: list[float]) -> dict[str, Any]:
    return {
        "n": len(ms),
        "p50_ms": _pct(ms, 50),
        "p99_ms": _pct(ms, 99),
        "max_ms": round(max(ms), 3) if ms else None,
    }


class _Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
        env.update(
            {
                "AISP_DATA_DIR": str(data_dir),
                "AISP_LOG_LEVEL": "WARNING",
                "AISP_SNAPSHOT_INTERVAL_SECONDS": "3600",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aisp", "serve", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.key_file = data_dir / "initial-admin-key"

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"aisp serve exited with {self.proc.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/ready")
                ready = conn.getresponse().status == 200
                conn.close()
                if ready and self.key_file.exists():
                    return
            except OSError:
                pass
            time.sleep(0.1)  # polling a process we do not control: no event to wait on
        raise RuntimeError("aisp serve did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _health_loop(port: int, stop: threading.Event, out: list[float], min_n: int = 0) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set() or len(out) < min_n:
        t0 = time.perf_counter()
        conn.request("GET", "/health")
        resp = conn.getresponse()
        resp.read()
        out.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            raise RuntimeError(f"/health answered {resp.status}")
    conn.close()


def _one_refused_post(port: int, body: int = _BODY) -> tuple[int, float, int]:
    """(status, ms to the status line, body bytes the client managed to send). ``body=0``: the
    control, a bodiless GET to the same protected route."""
    if body:
        head = (
            f"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {body}\r\n\r\n"
        ).encode()
    else:
        head = f"GET /api/tasks HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    t0 = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = [0]

    def push() -> None:
        block = b" " * (256 * 1024)
        try:
            sock.sendall(head)
            while sent[0] < body:
                sent[0] += sock.send(block)
        except OSError:
            pass

    sender = threading.Thread(target=push, daemon=True)
    sender.start()
    data = b""
    status, ms = 0, 0.0
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        ms = (time.perf_counter() - t0) * 1000
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    except OSError:
        pass
    finally:
        sock.close()
        sender.join(30)
    return status, ms, sent[0]


def _rounds(
    port: int, clients: int, rounds: int, *, body: int
) -> tuple[list[tuple[int, float, int]], list[float]]:
    """``rounds`` rounds of ``clients`` concurrent refused requests; (every answer, each round's max)."""
    answers: list[tuple[int, float, int]] = []
    round_max: list[float] = []
    lock = threading.Lock()
    for _ in range(rounds):
        start = threading.Barrier(clients)
        this_round: list[tuple[int, float, int]] = []

        def worker(start: threading.Barrier = start, out: list[tuple[int, float, int]] = this_round) -> None:
            start.wait()
            got = _one_refused_post(port, body)
            with lock:
                out.append(got)

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        answers.extend(this_round)
        round_max.append(max((ms for _s, ms, _b in this_round), default=float("nan")))
    return answers, round_max


def _cpu_s(proc: Any) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def _rss_sampler(pid: int, stop: threading.Event, peak: list[float]) -> None:
    import psutil

    proc = psutil.Process(pid)
    while not stop.wait(0.01):
        try:
            peak[0] = max(peak[0], proc.memory_info().rss / 2**20)
        except psutil.Error:
            return


def _big_header(port: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = [0]

    def push() -> None:
        block = b"a" * (256 * 1024)
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            while sent[0] < _HEADER:
                sent[0] += sock.send(block)
        except OSError:
            pass

    sender = threading.Thread(target=push, daemon=True)
    sender.start()
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    ms = (time.perf_counter() - t0) * 1000
    sock.close()
    sender.join(30)
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return {"status": status, "ms": round(ms, 3), "header_bytes_sent": sent[0]}


def run(quick: bool = False, *, clients: int = 8, rounds: int | None = None) -> dict[str, Any]:
    import psutil

    rounds = rounds if rounds is not None else (3 if quick else 10)
    with tempfile.TemporaryDirectory(prefix="aisp-bench-security-") as tmp:
        server = _Server(Path(tmp))
        try:
            server.wait_ready()
            proc = psutil.Process(server.proc.pid)
            # 1. baseline
            idle: list[float] = []
            never = threading.Event()
            never.set()
            _health_loop(server.port, never, idle, min_n=100 if quick else 300)
            rss_before = proc.memory_info().rss / 2**20
            # 2. flood
            stop = threading.Event()
            health: list[float] = []
            peak = [rss_before]
            cpu0 = _cpu_s(proc)
            control, _ = _rounds(server.port, clients, rounds, body=0)  # same load, no body
            control_cpu_s = _cpu_s(proc) - cpu0
            sampler = threading.Thread(target=_rss_sampler, args=(server.proc.pid, stop, peak), daemon=True)
            prober = threading.Thread(target=_health_loop, args=(server.port, stop, health), daemon=True)
            sampler.start()
            prober.start()
            t_flood = time.perf_counter()
            cpu0 = _cpu_s(proc)
            answers, round_max = _rounds(server.port, clients, rounds, body=_BODY)
            flood_s = time.perf_counter() - t_flood
            flood_cpu_s = _cpu_s(proc) - cpu0  # includes the /health prober's requests
            stop.set()
            prober.join(30)
            sampler.join(5)
            rss_after = proc.memory_info().rss / 2**20
            statuses: dict[str, int] = {}
            for status, _ms, _sent in answers:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
            times = [ms for _s, ms, _b in answers]
            sent = [b for _s, _ms, b in answers]
            # 3. big header
            header = _big_header(server.port)
        finally:
            server.stop()
    flood = {
        "clients": clients,
        "rounds": rounds,
        "flood_s": round(flood_s, 3),
        "requests": len(answers),
        "round_max_ms": [round(x, 3) for x in round_max],
        "statuses": statuses,
        "answer": _summary(times),
        "body_bytes_sent_per_request_mb": {
            "median": round(sorted(sent)[len(sent) // 2] / 2**20, 2) if sent else None,
            "max": round(max(sent) / 2**20, 2) if sent else None,
            "of": _BODY / 2**20,
        },
        "health_during": _summary(health),
        "rss_mb": {
            "before": round(rss_before, 1),
            "peak": round(peak[0], 1),
            "after": round(rss_after, 1),
            "growth_peak": round(peak[0] - rss_before, 1),
        },
    }
    control_ms = [ms for _s, ms, _b in control]
    flood["server_cpu_ms_per_request"] = round(flood_cpu_s * 1000 / max(1, len(answers)), 3)
    flood["control_bodiless_get_401"] = {
        **_summary(control_ms),
        "statuses": sorted({str(st) for st, _ms, _b in control}),
        "server_cpu_ms_per_request": round(control_cpu_s * 1000 / max(1, len(control)), 3),
        "p50_ratio_20mb_vs_bodiless": (
            round((_pct(times, 50) or 0) / (_pct(control_ms, 50) or 1), 2) if control_ms and times else None
        ),
    }
    return {
        "health_idle": _summary(idle),
        "unauthenticated_20mb_posts": flood,
        "header_64mib": header,
        "goals": {
            "all_401": statuses.get("401", 0) == len(answers) > 0,
            "answer_max_under_50ms": bool(times) and max(times) < 50.0,
            "health_p99_under_20ms": bool(health) and (_pct(health, 99) or 0) < 20.0,
            "rss_growth_under_10mb": peak[0] - rss_before < 10.0,
            "header_431": header["status"] == 431,
        },
        "note": "client threads share the machine with the server; other helpers were loading it",
    }
