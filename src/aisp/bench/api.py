"""``aisp bench api``: a real ``aisp serve`` process, measured from outside over HTTP.

1. **Startup**: spawn ``python -m aisp serve`` (auth off on 127.0.0.1, a temporary data dir,
   ``prewarm=face_detection``) and time the first ``GET /health`` 200 and the first ``/ready`` 200.
2. **Frames**: ``POST /api/frames/process?models=face_detection`` with a 640x480 JPEG (the
   scikit-image astronaut) as the raw body, from ``concurrency`` client threads (one
   ``httpx.Client`` each, keep-alive) for ``duration`` seconds after a warm-up: requests/s,
   p50/p90/p99/max latency, status counts.
3. **Baseline, same run**: the model's own time per frame (``infer`` on the decoded frame, in this
   process) and the JPEG decode time, so the API's overhead can be read off beside them.
4. **Shutdown**: SIGTERM, time to exit, exit code.

The client threads run on the same machine and take CPU from the server; on a shared 2-core
machine that is part of the figure. The CPU time of the server process and of the client per
answered request is measured too: in a closed loop with ``concurrency`` requests in flight on
``cpus`` cores, the mean latency cannot be below ``concurrency * cpu_per_request / cpus``
(``cpu_bound_latency_floor_ms``), whatever the server does.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

__all__ = ["run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(q / 100.0 * (len(ordered) - 1)))))
    return round(ordered[k], 3)


def _astronaut_jpeg() -> tuple[bytes, Any]:
    import cv2
    from skimage import data

    rgb = cv2.resize(data.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes(), rgb


def _baseline(jpeg: bytes, rgb: Any, n: int) -> dict[str, float]:
    import cv2
    import numpy as np

    from aisp.models import load_model

    model = load_model("face_detection", cache=False)
    try:
        for _ in range(5):
            model.infer(rgb)
        infer = []
        decode = []
        for _ in range(n):
            t0 = time.perf_counter()
            bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            t1 = time.perf_counter()
            model.infer(rgb)
            t2 = time.perf_counter()
            decode.append((t1 - t0) * 1000)
            infer.append((t2 - t1) * 1000)
    finally:
        model.close()
    return {
        "model_ms_per_frame_p50": round(statistics.median(infer), 3),
        "model_ms_per_frame_p99": _pct(infer, 99),
        "jpeg_decode_ms_p50": round(statistics.median(decode), 3),
    }


def _wait_status(url: str, status: int, timeout: float, proc: subprocess.Popen) -> float:
    import httpx

    t0 = time.perf_counter()
    deadline = t0 + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"aisp serve exited with code {proc.returncode} before {url} answered")
            try:
                if client.get(url).status_code == status:
                    return time.perf_counter()
            except httpx.TransportError:
                pass
            time.sleep(0.005)
    raise TimeoutError(f"{url} did not answer {status} within {timeout} s")


def _load(base: str, jpeg: bytes, concurrency: int, duration: float, model: str) -> dict[str, Any]:
    import httpx

    url = f"{base}/api/frames/process?models={model}"
    headers = {"Content-Type": "image/jpeg"}
    start = threading.Barrier(concurrency + 1)
    stop_at = [0.0]
    lat: list[list[float]] = [[] for _ in range(concurrency)]
    codes: list[dict[int, int]] = [{} for _ in range(concurrency)]

    def worker(i: int) -> None:
        with httpx.Client(timeout=30.0) as client:
            client.post(url, content=jpeg, headers=headers)  # connection + this thread's warm-up
            start.wait()
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                r = client.post(url, content=jpeg, headers=headers)
                if r.status_code == 200:  # latency of answered requests; refusals are counted apart
                    lat[i].append((time.perf_counter() - t0) * 1000)
                codes[i][r.status_code] = codes[i].get(r.status_code, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 1e9
    start.wait()
    t0 = time.perf_counter()
    stop_at[0] = t0 + duration
    for t in threads:
        t.join(duration + 60)
    elapsed = time.perf_counter() - t0
    all_lat = [x for per in lat for x in per]
    status: dict[str, int] = {}
    for per in codes:
        for code, n in per.items():
            status[str(code)] = status.get(str(code), 0) + n
    return {
        "concurrency": concurrency,
        "duration_s": round(elapsed, 2),
        "requests_ok": len(all_lat),
        "requests_per_s": round(len(all_lat) / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms_p50": _pct(all_lat, 50),
        "latency_ms_p90": _pct(all_lat, 90),
        "latency_ms_p99": _pct(all_lat, 99),
        "latency_ms_max": round(max(all_lat), 3) if all_lat else None,
        "status": status,
    }


def run(
    quick: bool = False,
    *,
    concurrency: int = 8,
    duration: float | None = None,
    server_env: dict[str, str] | None = None,
    model: str = "face_detection",
) -> dict[str, Any]:
    """Run the benchmark; ``server_env`` adds ``AISP_*`` settings for the server (experiments)."""
    duration = duration if duration is not None else (3.0 if quick else 20.0)
    jpeg, rgb = _astronaut_jpeg()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="aisp-bench-api-") as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
        env.update(
            {
                "AISP_DATA_DIR": data_dir,
                "AISP_AUTH": "off",
                "AISP_PREWARM": "face_detection",
                "AISP_LOG_LEVEL": "WARNING",
                "AISP_SNAPSHOT_INTERVAL_SECONDS": "60",
            }
        )
        env.update(server_env or {})
        t_spawn = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "aisp", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            t_health = _wait_status(f"{base}/health", 200, 60, proc)
            t_ready = _wait_status(f"{base}/ready", 200, 120, proc)
            import psutil

            server_ps, client_ps = psutil.Process(proc.pid), psutil.Process()
            s0, c0 = server_ps.cpu_times(), client_ps.cpu_times()
            load = _load(base, jpeg, concurrency, duration, model)
            s1, c1 = server_ps.cpu_times(), client_ps.cpu_times()
            baseline = _baseline(jpeg, rgb, 30 if quick else 200)
            t_term = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            t_exit = time.perf_counter()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    p99 = load["latency_ms_p99"]
    n = max(1, load["requests_ok"])
    server_cpu_ms = 1000.0 * ((s1.user - s0.user) + (s1.system - s0.system)) / n
    client_cpu_ms = 1000.0 * ((c1.user - c0.user) + (c1.system - c0.system)) / n
    cpus = os.cpu_count() or 1
    return {
        "startup_to_health_s": round(t_health - t_spawn, 3),
        "startup_to_ready_s": round(t_ready - t_spawn, 3),
        "frames_process": load,
        **baseline,
        "server_cpu_ms_per_request": round(server_cpu_ms, 3),
        "client_cpu_ms_per_request": round(client_cpu_ms, 3),
        # every request needs this much CPU; with `concurrency` in flight on `cpus` cores, the
        # mean latency cannot be lower (closed loop, Little's law with CPU as the bottleneck)
        "cpu_bound_latency_floor_ms": round(concurrency * (server_cpu_ms + client_cpu_ms) / cpus, 2),
        "goal_p99_ms": 30.0,
        "goal_met": bool(p99 <= 30.0),
        "shutdown_s": round(t_exit - t_term, 3),
        "exit_code": code,
        "image": "640x480 JPEG (skimage astronaut), raw body",
    }
