"""The ``aisp.client`` section of ``aisp bench api``: ``Client.process`` against the bench's raw
socket client, side by side, on the same running server.

Both run the same closed loop (``concurrency`` threads, one keep-alive connection each, the same
640x480 JPEG, the answer's JSON parsed and checked for the model's result) and alternate in
``rounds`` so that drift on a shared machine hits both alike. The client's CPU cost is each load
thread's own CPU time (``time.thread_time``: user + system of that thread, from its first timed
request to its last), summed and divided by the answered requests; what ``Client.process`` costs
above the raw socket client (httpx, the typed results) is the difference of the two. Goal: at
most :data:`GOAL_OVERHEAD_MS` per request.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from typing import Any

__all__ = ["measure", "GOAL_OVERHEAD_MS"]

GOAL_OVERHEAD_MS = 0.3


def _raw_worker(base: str, jpeg: bytes, model: str, connection: Any) -> tuple[Any, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"POST /api/frames/process?models={model} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    ).encode("latin-1") + jpeg
    conn = connection(host, port, request, timeout=30.0)

    def once() -> bool:
        status, body = conn.roundtrip()
        return status == 200 and model in json.loads(body).get("models", {})

    return once, conn.close


def _client_worker(base: str, jpeg: bytes, model: str, connection: Any) -> tuple[Any, Any]:
    from aisp.client import Client

    client = Client(base, environ={}, timeout=30.0)
    models = [model]

    def once() -> bool:
        return model in client.process(jpeg, models).results

    return once, client.close


def _run(
    kind: str, base: str, jpeg: bytes, concurrency: int, duration: float, model: str, connection: Any
) -> dict[str, Any]:
    make = _raw_worker if kind == "raw" else _client_worker
    start = threading.Barrier(concurrency + 1)
    stop_at = [float("inf")]
    ok = [0] * concurrency
    bad = [0] * concurrency
    cpu = [0.0] * concurrency
    lat: list[list[float]] = [[] for _ in range(concurrency)]

    def worker(i: int) -> None:
        once, close = make(base, jpeg, model, connection)
        try:
            once()  # the connection, and this thread's warm-up
            start.wait()
            c0 = time.thread_time()
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                good = once()
                lat[i].append((time.perf_counter() - t0) * 1000)
                if good:
                    ok[i] += 1
                else:
                    bad[i] += 1
            cpu[i] = time.thread_time() - c0
        finally:
            close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    stop_at[0] = t0 + duration
    for t in threads:
        t.join(duration + 60)
    return {"ok": sum(ok), "bad": sum(bad), "cpu_s": sum(cpu), "elapsed_s": time.perf_counter() - t0,
            "latencies": [x for per in lat for x in per]}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(r["ok"] for r in runs)
    elapsed = sum(r["elapsed_s"] for r in runs)
    lat = sorted(x for r in runs for x in r["latencies"])
    per_round = [1000.0 * r["cpu_s"] / max(1, r["ok"]) for r in runs]
    return {
        "requests_ok": ok,
        "requests_bad": sum(r["bad"] for r in runs),
        "requests_per_s": round(ok / elapsed, 1) if elapsed else 0.0,
        "latency_ms_p50": round(statistics.median(lat), 3) if lat else None,
        "latency_ms_p99": round(lat[min(len(lat) - 1, int(0.99 * (len(lat) - 1)))], 3) if lat else None,
        "client_cpu_ms_per_request": round(1000.0 * sum(r["cpu_s"] for r in runs) / max(1, ok), 3),
        "client_cpu_ms_per_request_by_round": [round(x, 3) for x in per_round],
    }


def measure(
    base: str,
    jpeg: bytes,
    *,
    raw_connection: Any,
    concurrency: int = 8,
    duration: float = 20.0,
    model: str = "face_detection",
    rounds: int = 2,
) -> dict[str, Any]:
    """Raw socket client (``raw_connection``: the bench's ``_Connection`` class, passed in so this
    module does not import :mod:`aisp.bench.api`) and ``Client.process``, alternating,
    ``duration`` seconds each in all."""
    raw: list[dict[str, Any]] = []
    client: list[dict[str, Any]] = []
    for _ in range(rounds):
        raw.append(_run("raw", base, jpeg, concurrency, duration / rounds, model, raw_connection))
        client.append(_run("client", base, jpeg, concurrency, duration / rounds, model, raw_connection))
    r, c = _summary(raw), _summary(client)
    overhead = c["client_cpu_ms_per_request"] - r["client_cpu_ms_per_request"]
    return {
        "concurrency": concurrency,
        "rounds": rounds,
        "raw_socket": r,
        "aisp_client": c,
        "client_overhead_cpu_ms_per_request": round(overhead, 3),
        "client_vs_raw_requests_per_s": round(c["requests_per_s"] / r["requests_per_s"], 3)
        if r["requests_per_s"] else None,
        "goal_overhead_cpu_ms": GOAL_OVERHEAD_MS,
        "goal_met": bool(overhead <= GOAL_OVERHEAD_MS),
    }
