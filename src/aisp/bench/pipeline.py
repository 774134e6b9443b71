"""``aisp bench pipeline``: the engine against a naive loop, live latency, and an RSS soak.

* ``onnx``: an ONNX detector (3 convolutions, 320x320) over a 3,000-frame video: AISP against a
  naive loop, net and whole-process, with and without dynamic batching, the CPU plan, and
  Roboflow's InferencePipeline when ``--peer-python`` points at an interpreter that has it
  (:mod:`aisp.bench.pipeline_onnx`).
* ``throughput`` (the MediaPipe workload): a 640x480, 30 s (900 frames; quick: 150) video made
  from the demo source and encoded with PyAV into a temp dir. Model ``face_detection_full``. Processed FPS of
  :func:`aisp.pipeline.run_job` (``workers`` threads) against a naive single-thread loop
  (decode, convert to RGB, infer) using the same decoder, alternated in the same run; every
  frame processed, in order (checked). Goal: the engine at least 1.6x the naive loop on 2 cores.
* ``live``: the demo source live at 30 FPS through the engine: p99 capture-to-sink latency
  (goal < 100 ms) and drops (goal 0).
* ``soak``: the live run for 10 minutes (quick: 20 s): process RSS at the start (after warm-up)
  and the end, growth in percent (goal < 5%).
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from aisp.pipeline import CallbackSink, Engine, StreamSpec
from aisp.pipeline.decode import make_decoder
from aisp.pipeline.demo import DemoSource
from aisp.runtime import Runtime, build
from aisp.settings import Settings, load_settings

__all__ = ["run", "make_video", "naive_loop", "engine_run", "live_run"]

MODEL = "face_detection_full"
GOAL_RATIO = 1.6
GOAL_P99_MS = 100.0
GOAL_RSS_GROWTH_PCT = 5.0

log = logging.getLogger("aisp.pipeline")


def make_video(path: Path, frames: int) -> Path:
    """Encode ``frames`` demo frames (640x480, 30 FPS, H.264) with PyAV."""
    import av
    import cv2

    demo = DemoSource(frames=frames)
    demo.open()
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        options = {"preset": "ultrafast"} if codec == "libx264" else {}
        stream = container.add_stream(codec, rate=30, options=options)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(demo.render(i), cv2.COLOR_RGB2YUV_I420),
                                               format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def naive_loop(path: Path, model: Any) -> dict[str, Any]:
    """Decode, convert, infer, one frame after the other, on this thread."""

    decoder = make_decoder(str(path))
    t0 = time.perf_counter()
    decoder.open()
    frames = detections = 0
    try:
        for image, _pts in decoder.frames():
            result = model.infer(image)
            frames += 1
            detections += result.num_detections
    finally:
        decoder.close()
    elapsed = time.perf_counter() - t0
    return {"frames": frames, "fps": frames / elapsed, "detections": detections}


def engine_run(runtime: Runtime, path: Path, workers: int, model: str = MODEL) -> dict[str, Any]:
    seen: list[int] = []
    order = CallbackSink(lambda r: seen.append(r.frame.index))
    summary = runtime.run_job(str(path), model, workers=workers, sinks=[order], clock=time.perf_counter)
    in_order = seen == list(range(len(seen)))
    return {"frames": summary.frames, "fps": summary.fps, "detections": summary.detections,
            "in_order": in_order, "drops": summary.drops, "error": summary.error,
            "latency_p50_ms": summary.latency_p50_ms}


def live_run(runtime: Runtime, seconds: float, workers: int, *, sample_rss: bool = False) -> dict[str, Any]:
    """The live demo source (30 FPS) through an engine of ``workers`` for ``seconds``."""
    proc = psutil.Process()
    engine = Engine(runtime.settings, runtime.models.load_instance, workers=workers)
    stream = engine.add_stream(StreamSpec("live", DemoSource(live=True), [MODEL]), start=True)
    rss: list[int] = []
    stop = threading.Event()
    try:
        warmup = min(5.0, seconds / 4)
        stop.wait(warmup)
        rss.append(proc.memory_info().rss)
        start = stream.stats.snapshot()
        deadline = time.monotonic() + seconds - warmup
        while not stop.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
            if sample_rss:
                rss.append(proc.memory_info().rss)
            if time.monotonic() >= deadline:
                break
        rss.append(proc.memory_info().rss)
        snap = stream.stats.snapshot()
    finally:
        engine.shutdown(10)
    out = {
        "seconds": seconds,
        "frames_in": snap.frames_in - start.frames_in,
        "frames_out": snap.frames_out - start.frames_out,
        "input_fps": snap.input_fps,
        "processed_fps": snap.processed_fps,
        "dropped": snap.dropped,
        "latency_ms": snap.latency_ms.to_dict(),
        "inference_ms_p50": snap.inference_ms.p50,
        "state": stream.state,
    }
    if sample_rss:
        growth = (rss[-1] - rss[0]) / rss[0] * 100.0
        out.update({"rss_start_mb": round(rss[0] / 2**20, 1), "rss_end_mb": round(rss[-1] / 2**20, 1),
                    "rss_max_mb": round(max(rss) / 2**20, 1), "rss_growth_pct": round(growth, 2),
                    "goal_rss_growth_pct": GOAL_RSS_GROWTH_PCT, "meets_goal": growth < GOAL_RSS_GROWTH_PCT})
    return out


def machine_load() -> dict[str, Any]:
    """Load average and Linux CPU pressure: how much CPU other processes took during the run."""
    import os

    out: dict[str, Any] = {"loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]  # "some avg10=.. avg60=.. ..."
        fields = dict(part.split("=") for part in first.split()[1:])
        out["cpu_pressure_some_avg60_pct"] = float(fields["avg60"])
    except (OSError, KeyError, ValueError, IndexError):
        pass
    return out


WORKLOADS = ("onnx", "mediapipe", "live", "soak")


def run(quick: bool = False, settings: Settings | None = None, *, workloads: tuple[str, ...] = WORKLOADS,
        peer_python: str | None = None) -> dict[str, Any]:
    """``settings``: the command's (``aisp --config ... bench``); default the environment's.
    ``workloads``: a subset of :data:`WORKLOADS`; ``peer_python``: see :mod:`aisp.bench.pipeline_onnx`."""
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise ValueError(f"unknown workload(s) {sorted(unknown)}; expected some of {', '.join(WORKLOADS)}")
    settings = settings if settings is not None else load_settings()
    results: dict[str, Any] = {"machine_load_start": machine_load()}
    if "onnx" in workloads:
        from aisp.bench.pipeline_onnx import run_onnx

        results["onnx"] = run_onnx(settings, quick=quick, peer_python=peer_python)
        results["machine_load_after_onnx"] = machine_load()
    if set(workloads) & {"mediapipe", "live", "soak"}:
        with build(settings, store=False) as runtime:
            results.update(_run(runtime, quick, workloads))
    return results


def _run(runtime: Runtime, quick: bool, workloads: tuple[str, ...] = WORKLOADS) -> dict[str, Any]:
    workers = 2
    frames = 150 if quick else 900
    rounds = 1 if quick else 3
    # warm: the naive loop's own instance, and one per engine worker (MediaPipe is not thread-safe)
    naive_model = runtime.models.load(MODEL, cache=False)
    for i in range(workers):
        runtime.models.load(MODEL, instance=f"w{i}")
    results: dict[str, Any] = {"model": MODEL, "workers": workers, "machine_load_start": machine_load()}
    if "mediapipe" not in workloads:
        return _live(runtime, quick, workloads, workers, results, naive_model)
    with tempfile.TemporaryDirectory(prefix="aisp-bench-") as tmp:
        path = make_video(Path(tmp) / "bench.mp4", frames)
        naive, engine = [], []
        for _ in range(rounds):  # alternated, so both see the same machine load
            naive.append(naive_loop(path, naive_model))
            engine.append(engine_run(runtime, path, workers))
    naive_fps = statistics.median(r["fps"] for r in naive)
    engine_fps = statistics.median(r["fps"] for r in engine)
    ratio = engine_fps / naive_fps if naive_fps else 0.0
    results["throughput"] = {
        "video": {"width": 640, "height": 480, "frames": frames, "fps": 30},
        "naive_fps_median": round(naive_fps, 2),
        "engine_fps_median": round(engine_fps, 2),
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "meets_goal": ratio >= GOAL_RATIO,
        "all_frames_in_order": all(
            r["frames"] == frames and r["in_order"] and not r["error"] for r in engine
        ),
        "naive_runs_fps": [round(r["fps"], 2) for r in naive],
        "engine_runs_fps": [round(r["fps"], 2) for r in engine],
    }
    results["machine_load_after_throughput"] = machine_load()
    return _live(runtime, quick, workloads, workers, results, naive_model)


def _live(runtime: Runtime, quick: bool, workloads: tuple[str, ...], workers: int, results: dict[str, Any],
          naive_model: Any) -> dict[str, Any]:
    if "live" in workloads:
        live = live_run(runtime, 10.0 if quick else 30.0, workers)
        live.update({"goal_p99_ms": GOAL_P99_MS,
                     "meets_goal": live["latency_ms"]["p99"] < GOAL_P99_MS and live["dropped"] == 0})
        results["live"] = live
    if "soak" in workloads:
        results["soak"] = live_run(runtime, 20.0 if quick else 600.0, workers, sample_rss=True)
    results["machine_load_end"] = machine_load()
    naive_model.close()
    return results
