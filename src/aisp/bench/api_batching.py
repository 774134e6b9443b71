"""``aisp bench api``, dynamic batching: ``POST /api/frames/process`` with the benchmark's ONNX
detector (:func:`aisp.bench.onnx_workload.build_yolo_like`, a dynamic batch axis) at concurrency
8, against two ``aisp serve`` processes, one with ``batching=off`` and one with ``batching=on``
(``batch_max_size`` 8, ``batch_max_delay_ms`` 2), alternated ``rounds`` times in the same run:
requests/s and p99 of each, and their ratios (goal: requests/s >= 1.3x with batching, p99 no worse).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from aisp.bench.api import _astronaut_jpeg, _free_port, _measured, _wait_status
from aisp.bench.onnx_workload import build_yolo_like

__all__ = ["run_batching", "GOAL_RPS_RATIO"]

GOAL_RPS_RATIO = 1.3


def _serve_and_load(data_dir: Path, model: str, jpeg: bytes, batching: str, concurrency: int,
                    duration: float, extra_env: dict[str, str]) -> dict[str, Any]:
    import psutil

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    env.update({"AISP_DATA_DIR": str(data_dir), "AISP_AUTH": "off", "AISP_PREWARM": model,
                "AISP_LOG_LEVEL": "WARNING", "AISP_SNAPSHOT_INTERVAL_SECONDS": "60",
                "AISP_BATCHING": batching, **extra_env})
    cmd = [sys.executable, "-m", "aisp", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_status(f"{base}/ready", 200, 120, proc)
        server_ps, client_ps = psutil.Process(proc.pid), psutil.Process()
        _measured(server_ps, client_ps, base, jpeg, concurrency, 1.0, model, "")  # warm-up
        return _measured(server_ps, client_ps, base, jpeg, concurrency, duration, model, "")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def run_batching(quick: bool = False, *, concurrency: int = 8, duration: float | None = None,
                 rounds: int | None = None, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Batching off against on (see the module doc); one JSON-able dict."""
    duration = duration if duration is not None else (3.0 if quick else 15.0)
    rounds = rounds or (1 if quick else 3)
    jpeg, _ = _astronaut_jpeg()
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="aisp-bench-batching-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "models").mkdir()
        model = f"onnx:{build_yolo_like(data_dir / 'models' / 'bench_yolo.onnx')}"
        for _ in range(rounds):
            for mode in ("off", "on"):
                runs[mode].append(_serve_and_load(data_dir, model, jpeg, mode, concurrency, duration,
                                                  extra_env or {}))

    def med(mode: str, key: str) -> float:
        return float(statistics.median(r[key] for r in runs[mode]))

    rps_off, rps_on = med("off", "requests_per_s"), med("on", "requests_per_s")
    p99_off, p99_on = med("off", "latency_ms_p99"), med("on", "latency_ms_p99")
    ratio = rps_on / rps_off if rps_off else 0.0
    return {
        "model": "bench ONNX detector (3 convs, 320x320, dynamic batch), 640x480 JPEG",
        "concurrency": concurrency,
        "rounds": rounds,
        "off": {"requests_per_s": rps_off, "latency_ms_p99": p99_off,
                "runs": [{k: r[k] for k in ("requests_per_s", "latency_ms_p50", "latency_ms_p99", "status",
                                            "server_cpu_ms_per_request")} for r in runs["off"]]},
        "on": {"requests_per_s": rps_on, "latency_ms_p99": p99_on,
               "runs": [{k: r[k] for k in ("requests_per_s", "latency_ms_p50", "latency_ms_p99", "status",
                                           "server_cpu_ms_per_request")} for r in runs["on"]]},
        "rps_ratio_on_vs_off": round(ratio, 3),
        "p99_ratio_on_vs_off": round(p99_on / p99_off, 3) if p99_off else None,
        "goal_rps_ratio": GOAL_RPS_RATIO,
        "meets_goal": ratio >= GOAL_RPS_RATIO and p99_on <= p99_off,
    }
