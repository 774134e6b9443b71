"""The memory side of ``aisp bench api``: four concurrent 40-megapixel PNGs with ``annotate=true``.

Each run spawns its own ``aisp serve`` (auth off on 127.0.0.1, a temporary data dir, the
``fake`` model warm), sends one small image to warm the process up, then posts the four big images
at once from four client threads and samples the server's RSS every 10 ms until all four have
answered. Reported: RSS before, peak, growth (peak - before), the status codes and the wall time.

It runs twice, side by side: with the default megapixel budget
(``AISP_FRAMES_MAX_MEGAPIXELS_IN_FLIGHT``, 64: one 40-megapixel image decoded at a time) and with
the budget made too large to matter (``budget_off``: 1,000,000 megapixels, the behaviour before
the budget existed), so the budget's effect on memory and time is read off one run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["run_big_images", "big_png"]

SIZE = (8000, 5000)  # 40 megapixels: the default max_pixels


def big_png() -> bytes:
    import cv2
    import numpy as np

    w, h = SIZE
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 1] = (np.arange(w, dtype=np.uint32) * 255 // w).astype(np.uint8)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _one(
    port: int, data: bytes, env_extra: dict[str, str], concurrency: int, wait_status: Callable[..., float]
) -> dict[str, Any]:
    import httpx
    import psutil

    with tempfile.TemporaryDirectory(prefix="aisp-bench-big-") as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
        env.update(
            {
                "AISP_DATA_DIR": data_dir,
                "AISP_AUTH": "off",
                "AISP_PREWARM": "fake",
                "AISP_LOG_LEVEL": "WARNING",
                "AISP_SNAPSHOT_INTERVAL_SECONDS": "60",
                "AISP_INFERENCE_THREADS": str(concurrency),
                **env_extra,
            }
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "aisp", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_status(f"{base}/ready", 200, 120, proc)
            url = f"{base}/api/frames/process?models=fake&annotate=true"
            with httpx.Client(timeout=300) as client:  # warm-up: decoders, allocator, model
                small = client.post(url, content=_small_png(), headers={"Content-Type": "image/png"})
                assert small.status_code == 200, small.text
            ps = psutil.Process(proc.pid)
            before = ps.memory_info().rss
            peak = [before]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.01):
                    try:
                        peak[0] = max(peak[0], ps.memory_info().rss)
                    except psutil.Error:
                        return

            codes: list[int] = [0] * concurrency
            start = threading.Barrier(concurrency)

            def post(i: int) -> None:
                with httpx.Client(timeout=300) as client:
                    start.wait()
                    r = client.post(url, content=data, headers={"Content-Type": "image/png"})
                    codes[i] = r.status_code

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t0 = time.perf_counter()
            threads = [threading.Thread(target=post, args=(i,)) for i in range(concurrency)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
            wall = time.perf_counter() - t0
            done.set()
            sampler.join(5)
            after = ps.memory_info().rss
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
    mb = 1024 * 1024
    return {
        "rss_before_mb": round(before / mb, 1),
        "rss_peak_mb": round(peak[0] / mb, 1),
        "rss_growth_mb": round((peak[0] - before) / mb, 1),
        "rss_after_mb": round(after / mb, 1),
        "status": {str(c): codes.count(c) for c in sorted(set(codes))},
        "wall_s": round(wall, 2),
    }


def _small_png() -> bytes:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".png", np.full((480, 640, 3), 128, np.uint8))
    assert ok
    return buf.tobytes()


def run_big_images(
    port_factory: Callable[[], int], wait_status: Callable[..., float], concurrency: int = 4
) -> dict[str, Any]:
    """The figures with the default budget and with the budget off, one after the other.
    ``wait_status(url, status, timeout, proc)`` is the main benchmark's readiness wait."""
    data = big_png()
    budget = _one(port_factory(), data, {}, concurrency, wait_status)
    no_budget = {"AISP_FRAMES_MAX_MEGAPIXELS_IN_FLIGHT": "1000000"}
    off = _one(port_factory(), data, no_budget, concurrency, wait_status)
    return {
        "image": f"{concurrency} concurrent {SIZE[0]}x{SIZE[1]} PNGs (40 megapixels), annotate=true",
        "budget_default": budget,
        "budget_off": off,
        "rss_growth_ratio": round(budget["rss_growth_mb"] / off["rss_growth_mb"], 3)
        if off["rss_growth_mb"] > 0
        else None,
    }
