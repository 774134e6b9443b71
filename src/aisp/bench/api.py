"""``aisp bench api``: a real ``aisp serve`` process, measured from outside over HTTP.

1. **Startup**: spawn ``python -m aisp serve`` (auth off on 127.0.0.1, a temporary data dir,
   ``prewarm=face_detection``) and time the first ``GET /health`` 200 and the first ``/ready`` 200.
2. **Frames**: ``POST /api/frames/process?models=face_detection`` with a 640x480 JPEG (the
   scikit-image astronaut) as the raw body, from ``concurrency`` client threads (one keep-alive
   connection each, :class:`_Connection`; every answer read and its JSON parsed) for
   ``duration`` seconds after a warm-up: requests/s, p50/p90/p99/max latency, status counts.
   The default full decode (``frames_process``) and the same load with ``&reduced_decode=true``
   (``frames_process_reduced_decode``) run side by side in ABBA order (full, reduced, reduced,
   full, each half the duration, merged by :func:`_merge`), and their ratio (``reduced_vs_full``).
3. **Baseline, same run**: the model's own time per frame (``infer`` on the decoded frame, in this
   process) and the JPEG decode time, so the API's overhead can be read off beside them.
4. **Shutdown**: SIGTERM, time to exit, exit code.
5. **The floor, same run**: the same load against a bare ASGI server doing the same work with no
   framework (:mod:`aisp.bench._bare_app`, same uvicorn, same thread count), and the API's
   figures as ratios of it (``api_vs_bare``): what AISP adds on top of what the work costs.
6. **Big images** (``big_images``, :mod:`aisp.bench._big_images`): the server's RSS growth while
   four 40-megapixel PNGs with ``annotate=true`` are processed at once, with the default megapixel
   budget and with it off.

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

from aisp.bench._big_images import run_big_images
from aisp.models import ModelConfig, ModelRegistry
from aisp.settings import Settings, default_inference_threads, load_settings

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


def _baseline(jpeg: bytes, rgb: Any, n: int, config: ModelConfig) -> dict[str, float]:
    """The model's own time per frame and the JPEG decode time, in this process, for both the
    full decode (the server's default) and the 1/2-scale decode (``reduced_decode=true``)."""
    from aisp.api.decode import decode_rgb  # the server's decoder (libjpeg-turbo, strict)
    from aisp.api.imageinfo import probe_image

    info = probe_image(jpeg)
    small = decode_rgb(jpeg, info, 2)
    model = ModelRegistry(None, config).load("face_detection", cache=False)
    import cv2
    import numpy as np

    buf = np.frombuffer(jpeg, np.uint8)
    times: dict[str, list[float]] = {
        "infer": [], "infer_small": [], "decode": [], "decode_small": [], "decode_opencv": []
    }
    try:
        for _ in range(5):
            model.infer(rgb)
            model.infer(small)
        for _ in range(n):
            t0 = time.perf_counter()
            decode_rgb(jpeg, info, 1)
            t1 = time.perf_counter()
            model.infer(rgb)
            t2 = time.perf_counter()
            decode_rgb(jpeg, info, 2)
            t3 = time.perf_counter()
            model.infer(small)
            t4 = time.perf_counter()
            times["decode"].append((t1 - t0) * 1000)
            times["infer"].append((t2 - t1) * 1000)
            times["decode_small"].append((t3 - t2) * 1000)
            times["infer_small"].append((t4 - t3) * 1000)
            # OpenCV's decode, which cannot tell a truncated JPEG: the cost of the strict check
            cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            times["decode_opencv"].append((time.perf_counter() - t4) * 1000)
    finally:
        model.close()
    return {
        "model_ms_per_frame_p50": round(statistics.median(times["infer"]), 3),
        "model_ms_per_frame_p99": _pct(times["infer"], 99),
        "model_ms_per_frame_half_scale_p50": round(statistics.median(times["infer_small"]), 3),
        "jpeg_decode_ms_p50": round(statistics.median(times["decode"]), 3),
        "jpeg_decode_half_scale_ms_p50": round(statistics.median(times["decode_small"]), 3),
        "jpeg_decode_opencv_ms_p50": round(statistics.median(times["decode_opencv"]), 3),
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


class _Connection:
    """One keep-alive HTTP/1.1 connection that sends one prebuilt request over and over and
    reads each answer framed by its ``Content-Length``.

    The load generator shares the machine's cores with the server, so every microsecond it
    spends is taken from the server. ``http.client`` parses each answer's headers with the
    ``email`` package (~0.4 ms of CPU per request here); this reads the status line and
    ``Content-Length`` only, so the client costs about a quarter of that. A server that closes
    the connection (``Connection: close``) gets a new one for the next request."""

    def __init__(self, host: str, port: int, request: bytes, timeout: float) -> None:
        self._address = (host, port)
        self._timeout = timeout
        self._request = request
        self._sock: socket.socket | None = None
        self._buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._address, self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buf = sock, b""
        return sock

    def _recv(self, sock: socket.socket) -> bytes:
        chunk = sock.recv(262144)
        if not chunk:
            raise ConnectionError("the server closed the connection in the middle of an answer")
        return chunk

    def roundtrip(self) -> tuple[int, bytes]:
        sock = self._sock or self._connect()
        sock.sendall(self._request)
        buf = self._buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += self._recv(sock)
        lines = buf[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = None, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                close = value.strip().lower() == "close"
            elif name == "transfer-encoding":
                raise ValueError(f"unexpected Transfer-Encoding {value.strip()!r}: expected Content-Length")
        if length is None:
            raise ValueError("the answer has no Content-Length")
        need = end + 4 + length
        while len(buf) < need:
            buf += self._recv(sock)
        body, self._buf = buf[end + 4 : need], buf[need:]
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _load(
    base: str, jpeg: bytes, concurrency: int, duration: float, model: str, query: str = ""
) -> dict[str, Any]:
    """Closed loop: ``concurrency`` threads, each with its own keep-alive connection
    (:class:`_Connection`). Every answer is read in full; a 200 must be JSON holding ``model``'s
    result, or it counts as bad."""
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = f"/api/frames/process?models={model}{query}"
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(jpeg)}\r\n\r\n"
    ).encode("latin-1") + jpeg
    start = threading.Barrier(concurrency + 1)
    stop_at = [0.0]
    lat: list[list[float]] = [[] for _ in range(concurrency)]
    codes: list[dict[str, int]] = [{} for _ in range(concurrency)]

    def worker(i: int) -> None:
        conn = _Connection(host, port, request, timeout=30.0)
        try:
            conn.roundtrip()  # connection + this thread's warm-up
            start.wait()
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                status, body = conn.roundtrip()
                t1 = time.perf_counter()
                key = str(status)
                if status == 200:
                    if model in json.loads(body).get("models", {}):
                        lat[i].append((t1 - t0) * 1000)  # refusals are counted apart
                    else:
                        key = "200-bad-body"
                codes[i][key] = codes[i].get(key, 0) + 1
        finally:
            conn.close()

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
            status[code] = status.get(code, 0) + n
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
        "_latencies": all_lat,  # for _merge; dropped from the output
    }


def _measured(
    server_ps: Any,
    client_ps: Any,
    base: str,
    jpeg: bytes,
    concurrency: int,
    duration: float,
    model: str,
    query: str,
) -> dict[str, Any]:
    """:func:`_load` plus the server's and the client's CPU time per answered request."""
    s0, c0 = server_ps.cpu_times(), client_ps.cpu_times()
    load = _load(base, jpeg, concurrency, duration, model, query)
    s1, c1 = server_ps.cpu_times(), client_ps.cpu_times()
    n = max(1, load["requests_ok"])
    server_s = (s1.user - s0.user) + (s1.system - s0.system)
    client_s = (c1.user - c0.user) + (c1.system - c0.system)
    server_cpu_ms, client_cpu_ms = 1000.0 * server_s / n, 1000.0 * client_s / n
    cpus = os.cpu_count() or 1
    return {
        **load,
        "_cpu_s": (server_s, client_s),
        "server_cpu_ms_per_request": round(server_cpu_ms, 3),
        "client_cpu_ms_per_request": round(client_cpu_ms, 3),
        "client_cpu_share": round(client_cpu_ms / max(1e-9, server_cpu_ms + client_cpu_ms), 3),
        # every request needs this much CPU; with `concurrency` in flight on `cpus` cores, the
        # mean latency cannot be lower (closed loop, Little's law with CPU as the bottleneck)
        "cpu_bound_latency_floor_ms": round(concurrency * (server_cpu_ms + client_cpu_ms) / cpus, 2),
    }


def _merge(parts: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """One figure set from several runs of the same load (the ABBA halves of a side-by-side
    comparison): counts and CPU added up, percentiles over all the latencies."""
    lat = [x for p in parts for x in p["_latencies"]]
    ok = sum(p["requests_ok"] for p in parts)
    elapsed = sum(p["duration_s"] for p in parts)
    server_s = sum(p["_cpu_s"][0] for p in parts)
    client_s = sum(p["_cpu_s"][1] for p in parts)
    status: dict[str, int] = {}
    for p in parts:
        for code, n in p["status"].items():
            status[code] = status.get(code, 0) + n
    n = max(1, ok)
    server_ms, client_ms = 1000.0 * server_s / n, 1000.0 * client_s / n
    return {
        "concurrency": concurrency,
        "duration_s": round(elapsed, 2),
        "requests_ok": ok,
        "requests_per_s": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "requests_per_s_by_run": [p["requests_per_s"] for p in parts],
        "latency_ms_p50": _pct(lat, 50),
        "latency_ms_p90": _pct(lat, 90),
        "latency_ms_p99": _pct(lat, 99),
        "latency_ms_max": round(max(lat), 3) if lat else None,
        "status": status,
        "server_cpu_ms_per_request": round(server_ms, 3),
        "client_cpu_ms_per_request": round(client_ms, 3),
        "client_cpu_share": round(client_ms / max(1e-9, server_ms + client_ms), 3),
        "cpu_bound_latency_floor_ms": round(concurrency * (server_ms + client_ms) / (os.cpu_count() or 1), 2),
    }


def _public(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if not k.startswith("_")}


def _bare(
    jpeg: bytes, concurrency: int, duration: float, model: str, threads: int, server_env: dict[str, str]
) -> dict[str, Any]:
    """The same load against :mod:`aisp.bench._bare_app` with ``threads`` pool threads and the
    server's model settings (``server_env``, e.g. ``AISP_MEDIAPIPE_GRAPH_THREADS``)."""
    import psutil

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    env.update({k: v for k, v in server_env.items() if k != "AISP_DATA_DIR"})
    env["AISP_LOG_LEVEL"] = "WARNING"
    cmd = [sys.executable, "-m", "aisp.bench._bare_app", "--port", str(port), "--threads", str(threads)]
    cmd += ["--model", model]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_status(f"{base}/ready", 200, 120, proc)
        server_ps, client_ps = psutil.Process(proc.pid), psutil.Process()
        load = _measured(server_ps, client_ps, base, jpeg, concurrency, duration, model, "")
        return {"threads": threads, **_public(load)}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def _ratios(api: dict[str, Any], bare: dict[str, Any]) -> dict[str, float]:
    """API / bare for latency (1.0: AISP adds nothing) and for throughput (1.0: the same)."""
    out = {}
    for key in ("latency_ms_p50", "latency_ms_p99", "requests_per_s", "server_cpu_ms_per_request"):
        if bare.get(key):
            out[key] = round(api[key] / bare[key], 3)
    return out


def run(
    quick: bool = False,
    *,
    concurrency: int = 8,
    duration: float | None = None,
    server_env: dict[str, str] | None = None,
    model: str = "face_detection",
    compare_reduced_decode: bool = True,
    compare_bare: bool = True,
    compare_big_images: bool = True,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run the benchmark; ``server_env`` adds ``AISP_*`` settings for the server (experiments).

    ``compare_reduced_decode`` repeats the load with ``?reduced_decode=true`` (same duration) so
    that the opt-in reduced JPEG decode's effect is measured side by side in the same run.
    ``compare_big_images`` adds the memory figures of :mod:`aisp.bench._big_images`.
    ``compare_bare`` runs the same load against :mod:`aisp.bench._bare_app` (the same work with
    no framework, same thread count) after the API: the floor the machine itself sets.
    """
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
            reduced = None
            if compare_reduced_decode:
                # the same load with ?reduced_decode=true, side by side: full, reduced, reduced,
                # full, each half the duration, so that drift in the machine's load hits both alike
                half = duration / 2

                def one(query: str) -> dict[str, Any]:
                    return _measured(server_ps, client_ps, base, jpeg, concurrency, half, model, query)

                runs = [one(""), one("&reduced_decode=true"), one("&reduced_decode=true"), one("")]
                load = _merge([runs[0], runs[3]], concurrency)
                reduced = _merge([runs[1], runs[2]], concurrency)
            else:
                load = _public(_measured(server_ps, client_ps, base, jpeg, concurrency, duration, model, ""))
            config = ModelConfig.from_settings(settings if settings is not None else load_settings())
            baseline = _baseline(jpeg, rgb, 30 if quick else 200, config)
            t_term = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            t_exit = time.perf_counter()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    bare = None
    if compare_bare:

        threads = int(env.get("AISP_INFERENCE_THREADS") or default_inference_threads())
        bare = _bare(jpeg, concurrency, duration, model, threads, server_env or {})
    big = run_big_images(_free_port, _wait_status) if compare_big_images else None
    p99 = load["latency_ms_p99"]
    return {
        "startup_to_health_s": round(t_health - t_spawn, 3),
        "startup_to_ready_s": round(t_ready - t_spawn, 3),
        "frames_process": load,
        **(
            {"frames_process_reduced_decode": reduced, "reduced_vs_full": _ratios(reduced, load)}
            if reduced is not None
            else {}
        ),
        **baseline,
        **({"frames_process_bare_asgi": bare, "api_vs_bare": _ratios(load, bare)} if bare else {}),
        "goal_p99_ms": 30.0,
        "goal_met": bool(p99 <= 30.0),
        "shutdown_s": round(t_exit - t_term, 3),
        "exit_code": code,
        "image": "640x480 JPEG (skimage astronaut), raw body",
        **({"big_images": big} if big is not None else {}),
    }
