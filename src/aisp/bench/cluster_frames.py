"""The frames API's one-node cost on Ray Serve: ``aisp serve`` answering frames itself against the
same server on a one-node Ray (``AISP_RAY_ADDRESS=local``) whose frames go to a Serve replica
(``AISP_RAY_FRAMES=serve``), side by side on the same machine.

Both servers run at once (auth off on 127.0.0.1, ``prewarm=face_detection``), and the load of
``aisp bench api`` (:func:`aisp.bench.api._load`: ``concurrency`` keep-alive clients posting the
640x480 astronaut JPEG, every answer read and checked) alternates between them in ABBA order, so
drift in a shared machine's load hits both alike. Figures per path: requests/s, p50/p90/p99, and
``serve_vs_local`` ratios. Also the time from spawn to ``/ready`` (Ray start and Serve deploy for
the Serve path). This is what ``docs/cluster.md`` quotes for the ``AISP_RAY_FRAMES`` choice.

Run: ``python -m aisp.bench.cluster_frames [seconds] [concurrency]`` (JSON on stdout).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from aisp.bench.api import _astronaut_jpeg, _free_port, _load, _pct, _wait_status

__all__ = ["run"]

MODEL = "face_detection"


def _spawn(data_dir: str, port: int, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    env.update({"AISP_DATA_DIR": data_dir, "AISP_AUTH": "off", "AISP_PREWARM": MODEL,
                "AISP_LOG_LEVEL": "WARNING", "AISP_SNAPSHOT_INTERVAL_SECONDS": "60", **extra})
    env.setdefault("RAY_AUTH_MODE", "disabled")
    cmd = [sys.executable, "-m", "aisp", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The ABBA halves of one path as one figure set: percentiles over all the latencies."""
    lat = [x for p in parts for x in p["_latencies"]]
    elapsed = sum(p["duration_s"] for p in parts)
    status: dict[str, int] = {}
    for p in parts:
        for code, n in p["status"].items():
            status[code] = status.get(code, 0) + n
    return {"requests_per_s": round(len(lat) / elapsed, 1) if elapsed > 0 else 0.0,
            "requests_per_s_by_run": [p["requests_per_s"] for p in parts],
            "latency_ms_p50": _pct(lat, 50), "latency_ms_p90": _pct(lat, 90), "latency_ms_p99": _pct(lat, 99),
            "status": status}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def run(duration: float = 20.0, concurrency: int = 8) -> dict[str, Any]:
    jpeg, _ = _astronaut_jpeg()
    paths = {"local": {}, "serve": {"AISP_RAY_ADDRESS": "local", "AISP_RAY_FRAMES": "serve"}}
    out: dict[str, Any] = {"concurrency": concurrency, "duration_s": duration, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="aisp-bench-cf-") as tmp:
        procs: dict[str, subprocess.Popen[bytes]] = {}
        bases: dict[str, str] = {}
        try:
            for name, extra in paths.items():
                port = _free_port()
                os.makedirs(f"{tmp}/{name}")
                t0 = time.perf_counter()
                procs[name] = _spawn(f"{tmp}/{name}", port, extra)
                bases[name] = f"http://127.0.0.1:{port}"
                out[f"{name}_spawn_to_ready_s"] = round(
                    _wait_status(f"{bases[name]}/ready", 200, 300, procs[name]) - t0, 2)
            half = duration / 2
            runs: dict[str, list[dict[str, Any]]] = {"local": [], "serve": []}
            for name in ("local", "serve", "serve", "local"):
                _load(bases[name], jpeg, concurrency, 1.0, MODEL)  # warm this path's connections
                runs[name].append(_load(bases[name], jpeg, concurrency, half, MODEL))
        finally:
            for proc in procs.values():
                _stop(proc)
    for name, parts in runs.items():
        out[name] = _merge(parts)
    local, serve = out["local"], out["serve"]
    out["serve_vs_local"] = {
        "requests_per_s": round(serve["requests_per_s"] / max(1e-9, local["requests_per_s"]), 3),
        "latency_p50": round(serve["latency_ms_p50"] / max(1e-9, local["latency_ms_p50"]), 3),
        "latency_p99": round(serve["latency_ms_p99"] / max(1e-9, local["latency_ms_p99"]), 3),
    }
    return out


if __name__ == "__main__":
    args = [float(a) for a in sys.argv[1:3]]
    result = run(*(args[:1] or [20.0]), *(int(a) for a in args[1:2]))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
