"""``aisp bench pipeline``, the ONNX workload: AISP against a naive loop (and Roboflow's
InferencePipeline when it is importable somewhere), on one model and one video, in one run.

* The model: :func:`aisp.bench.onnx_workload.build_yolo_like` (3 convolutions, 16/32/6 channels,
  320x320, a dynamic batch axis). The video: 3,000 frames (quick: 300), 640x480, ``mp4v``,
  written by OpenCV, each frame carrying its index in its pixels.
* **naive**: one thread, decode (the same decoder as AISP: PyAV), then ``OnnxModel.infer`` on a model
  built with ONNX Runtime's default session options (what a user who writes the loop gets).
* **aisp**: :meth:`aisp.runtime.Runtime.run_job` with the runtime's CPU plan; every frame must
  come out, in order, with results identical to the naive loop's (boxes, scores and classes
  within 1e-5; the figure is in ``results_max_abs_diff``).
* **aisp_batching**: the same with dynamic batching on (``batching=on``), to show whether it pays.
* **net** FPS: each pipeline's own time from its start to its last frame, the models loaded;
  **whole-process** FPS: a fresh ``python`` per pipeline, from spawn to exit, imports included.
* **resume**: a job started at frame 2,000 of 3,000 (two thirds): seconds to its first result
  (goal < 0.5 s), beside the time decoding the 2,000 frames before it takes.
* **peer**: ``peer_python`` is a Python interpreter; if ``import inference`` works there, a script
  runs InferencePipeline with the per-frame work of the issue (BGR to RGB, resize to 320, /255,
  ``session.run`` with default options) on the same video; if not, a note says why.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from aisp.bench.onnx_workload import build_yolo_like, make_counter_video, read_counter
from aisp.pipeline import CallbackSink
from aisp.pipeline.decode import make_decoder
from aisp.runtime import build
from aisp.settings import Settings

__all__ = ["run_onnx", "naive_onnx_loop", "compare_results", "peer_run", "GOAL_NET_RATIO", "GOAL_PEER_RATIO"]

log = logging.getLogger("aisp.pipeline")

GOAL_NET_RATIO = 2.5
GOAL_WHOLE_RATIO = 2.3
GOAL_PEER_RATIO = 1.4
PEER_TIMEOUT_S = 600.0


def _signature(result: Any) -> np.ndarray:
    """A detection result as one float array (boxes, score, class per row), for comparing."""
    dets = result.detections
    if dets is None or not len(dets):
        return np.zeros((0, 6), np.float64)
    return np.column_stack([np.asarray(dets.xyxy, np.float64), np.asarray(dets.confidence, np.float64),
                            np.asarray(dets.class_id, np.float64)])


def compare_results(a: list[np.ndarray], b: list[np.ndarray]) -> float | None:
    """The largest element-wise difference between two runs' per-frame results, or None when
    they differ in length or in the number of detections of a frame."""
    if len(a) != len(b):
        return None
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if x.shape != y.shape:
            return None
        if x.size:
            worst = max(worst, float(np.max(np.abs(x - y))))
    return worst


def naive_onnx_loop(video: Path, model: Any) -> dict[str, Any]:
    """Decode and infer one frame after the other on this thread; per-frame results and FPS."""
    decoder = make_decoder(str(video))
    results: list[np.ndarray] = []
    counters_ok = True
    t0 = time.perf_counter()
    decoder.open()
    try:
        for i, (image, _pts) in enumerate(decoder.frames()):
            results.append(_signature(model.infer(image)))
            counters_ok = counters_ok and read_counter(image) == i
    finally:
        decoder.close()
    elapsed = time.perf_counter() - t0
    return {"frames": len(results), "fps": len(results) / elapsed, "results": results,
            "counters_ok": counters_ok}


def aisp_onnx_run(settings: Settings, video: Path, model_name: str) -> dict[str, Any]:
    """One run of ``run_job`` on a runtime built from ``settings`` (models loaded first)."""
    seen: list[tuple[int, bool]] = []
    results: dict[int, np.ndarray] = {}

    def collect(r: Any) -> None:
        seen.append((r.frame.index, read_counter(r.frame.image) == r.frame.index))
        results[r.frame.index] = _signature(r.results[model_name])

    with build(settings, store=False) as runtime:
        for i in range(runtime.engine.pool.size):  # warm: a session per worker when the plan says so
            runtime.models.load(model_name, instance=f"w{i}")
        summary = runtime.run_job(str(video), model_name, sinks=[CallbackSink(collect)])
        plan = runtime.cpu.to_dict() if runtime.cpu is not None else None
    order = [i for i, _ in seen]
    return {"frames": summary.frames, "fps": summary.fps, "in_order": order == list(range(len(order))),
            "counters_ok": all(ok for _, ok in seen), "error": summary.error,
            "inference_ms_p50": summary.inference_ms_p50,
            "results": [results[i] for i in sorted(results)], "cpu_plan": plan}


_NAIVE_SCRIPT = """
import sys, time
t0 = time.perf_counter()
from aisp.models.onnx import OnnxModel
from aisp.pipeline.decode import make_decoder
model = OnnxModel(sys.argv[2])
dec = make_decoder(sys.argv[1]); dec.open(); n = 0
for image, _ in dec.frames():
    model.infer(image); n += 1
dec.close()
print(n)
"""


def _whole_process(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=PEER_TIMEOUT_S)
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 3), "rc": proc.returncode, "stdout": proc.stdout[-400:],
            "stderr": proc.stderr[-400:] if proc.returncode else ""}


def whole_process_runs(video: Path, model_path: Path, frames: int) -> dict[str, Any]:
    """Naive and ``aisp run`` each in a fresh interpreter, wall time from spawn to exit."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    naive = _whole_process([sys.executable, "-c", _NAIVE_SCRIPT, str(video), str(model_path)], env)
    aisp = _whole_process([sys.executable, "-m", "aisp", "run", str(video), "--model", f"onnx:{model_path}"],
                          env)
    out: dict[str, Any] = {}
    for name, r in (("naive", naive), ("aisp", aisp)):
        out[name] = {"wall_s": r["wall_s"], "fps": round(frames / r["wall_s"], 2) if r["rc"] == 0 else None}
        if r["rc"] != 0:
            out[name]["error"] = r["stderr"]
    if out["naive"]["fps"] and out["aisp"]["fps"]:
        out["ratio"] = round(out["aisp"]["fps"] / out["naive"]["fps"], 3)
        out["goal_ratio"] = GOAL_WHOLE_RATIO
        out["meets_goal"] = out["ratio"] >= GOAL_WHOLE_RATIO
    return out


#: Run by the peer's interpreter: InferencePipeline with the issue's per-frame work; prints JSON.
PEER_SCRIPT = r"""
import json, sys, time
t_spawn = time.perf_counter()
video, model_path = sys.argv[1], sys.argv[2]
import cv2, numpy as np, onnxruntime as ort
from inference import InferencePipeline
t_import = time.perf_counter() - t_spawn
sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
frames, ids, first = [0], [], [None]

def work(image):
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    x = cv2.resize(rgb, (320, 320)).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    return sess.run(None, {name: x})[0]

def on_video_frame(video_frames):
    batch = video_frames if isinstance(video_frames, list) else [video_frames]
    if first[0] is None:
        first[0] = time.perf_counter()
    out = [work(f.image) for f in batch]
    return out if isinstance(video_frames, list) else out[0]

def on_prediction(predictions, video_frames):
    batch = video_frames if isinstance(video_frames, list) else [video_frames]
    for f in batch:
        if f is not None:
            ids.append(int(f.frame_id))
    frames[0] += len(batch)

t0 = time.perf_counter()
pipeline = InferencePipeline.init_with_custom_logic(
    video_reference=video, on_video_frame=on_video_frame, on_prediction=on_prediction)
pipeline.start()
pipeline.join()
t1 = time.perf_counter()
print(json.dumps({"frames": frames[0], "net_fps": frames[0] / (t1 - t0), "import_s": t_import,
                  "whole_s": t1 - t_spawn, "in_order": ids == sorted(ids)}))
"""


def peer_run(peer_python: str | None, video: Path, model_path: Path, frames: int) -> dict[str, Any]:
    """Roboflow's InferencePipeline in ``peer_python``, or why it did not run."""
    if not peer_python:
        return {"available": False, "note": "no --peer-python given: Roboflow InferencePipeline not run"}
    exe = Path(peer_python)
    if not exe.is_file() or not os.access(exe, os.X_OK):
        return {"available": False, "note": f"--peer-python {peer_python!r} is not an executable file"}
    try:
        probe = subprocess.run([str(exe), "-c", "import inference"], capture_output=True, text=True,
                               timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"available": False, "note": f"cannot run {peer_python!r}: {exc}"}
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["import failed"])[-1][:300]
        return {"available": False,
                "note": f"'import inference' fails in {peer_python}: {last} (install it there with "
                        "`pip install inference`; AISP does not depend on it)"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([str(exe), "-c", PEER_SCRIPT, str(video), str(model_path)], capture_output=True,
                              text=True, timeout=PEER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"available": True, "error": f"InferencePipeline did not finish within {PEER_TIMEOUT_S:.0f} s"}
    wall = time.perf_counter() - t0
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"available": True, "error": f"peer run failed (rc {proc.returncode}): {proc.stderr[-400:]}"}
    return {"available": True, "frames": data["frames"], "all_frames": data["frames"] == frames,
            "in_order": data["in_order"], "net_fps": round(data["net_fps"], 2),
            "whole_process_fps": round(data["frames"] / wall, 2), "import_s": round(data["import_s"], 2)}


GOAL_RESUME_S = 0.5


def resume_run(settings: Settings, video: Path, model_name: str, start: int) -> dict[str, Any]:
    """A job resumed at frame ``start``: seconds from ``run_job`` to its first result (the job is
    cancelled then), against decoding the ``start`` frames before it, as a resume did before."""
    first: list[tuple[float, int, int]] = []
    cancel = threading.Event()

    def on_result(r: Any) -> None:
        if not first:
            first.append((time.perf_counter(), r.frame.index, read_counter(r.frame.image)))
            cancel.set()

    with build(settings, store=False) as runtime:
        for i in range(runtime.engine.pool.size):
            runtime.models.load(model_name, instance=f"w{i}")
        t0 = time.perf_counter()
        runtime.run_job(str(video), model_name, start_frame=start, sinks=[CallbackSink(on_result)],
                        cancel=cancel)
    decoder = make_decoder(str(video))
    t1 = time.perf_counter()
    decoder.open()
    try:
        for n, _ in enumerate(decoder.frames(), start=1):
            if n >= start:
                break
    finally:
        decoder.close()
    skip_s = time.perf_counter() - t1
    at, index, counter = first[0] if first else (float("nan"), -1, -1)
    return {"start_frame": start, "first_new_frame_s": round(at - t0, 4), "first_index": index,
            "first_frame_is_the_target": index == start == counter,
            "decode_to_target_s_without_seek": round(skip_s, 4), "goal_s": GOAL_RESUME_S,
            "meets_goal": index == start == counter and at - t0 < GOAL_RESUME_S}


def _cv_threads(n: int | None = None) -> int:
    import cv2

    if n is not None:
        cv2.setNumThreads(n)
    return int(cv2.getNumThreads())


def run_onnx(settings: Settings, *, quick: bool = False, rounds: int | None = None,
             peer_python: str | None = None, whole_process: bool = True,
             frames: int | None = None) -> dict[str, Any]:
    """The ONNX workload (see the module doc); one JSON-able dict. ``frames`` overrides the video's
    length (3,000; quick: 300)."""
    from aisp.models.onnx import OnnxModel

    frames = frames or (300 if quick else 3000)
    rounds = rounds or (1 if quick else 3)
    with tempfile.TemporaryDirectory(prefix="aisp-bench-onnx-") as tmp:
        model_path = build_yolo_like(Path(tmp) / "bench_yolo.onnx")
        video = make_counter_video(Path(tmp) / "bench.mp4", frames)
        name = f"onnx:{model_path}"
        naive_model = OnnxModel(model_path, name=name)  # ONNX Runtime's default session options
        batching = settings.model_copy(update={"batching": "on"})
        naive, aisp, batched = [], [], []
        cv_threads = _cv_threads()
        for _ in range(rounds):  # alternated, so all see the same machine load
            _cv_threads(cv_threads)  # the naive loop gets OpenCV's default, not the plan's
            naive.append(naive_onnx_loop(video, naive_model))
            aisp.append(aisp_onnx_run(settings, video, name))
            batched.append(aisp_onnx_run(batching, video, name))
        reference = naive[0]["results"]
        diffs = [compare_results(reference, r["results"]) for r in aisp + batched + naive[1:]]
        whole = whole_process_runs(video, model_path, frames) if whole_process else None
        resume = resume_run(settings, video, name, frames * 2 // 3)
        peer = peer_run(peer_python, video, model_path, frames)
    naive_fps = statistics.median(r["fps"] for r in naive)
    aisp_fps = statistics.median(r["fps"] for r in aisp)
    batch_fps = statistics.median(r["fps"] for r in batched)
    ok = all(r["frames"] == frames and r["in_order"] and r["counters_ok"] and not r["error"]
             for r in aisp + batched)
    out: dict[str, Any] = {
        "model": "3 convs 16/32/6 channels, 320x320, dynamic batch (onnx helper API)",
        "video": {"width": 640, "height": 480, "frames": frames, "codec": "mp4v"},
        "rounds": rounds,
        "cpu_plan": aisp[0]["cpu_plan"],
        "naive_fps_median": round(naive_fps, 2),
        "aisp_fps_median": round(aisp_fps, 2),
        "aisp_batching_fps_median": round(batch_fps, 2),
        "ratio_net": round(aisp_fps / naive_fps, 3),
        "ratio_batching_vs_not": round(batch_fps / aisp_fps, 3),
        "goal_net_ratio": GOAL_NET_RATIO,
        "meets_goal_net": aisp_fps / naive_fps >= GOAL_NET_RATIO,
        "all_frames_in_order": ok and all(r["counters_ok"] for r in naive),
        "results_identical": all(d is not None and d <= 1e-5 for d in diffs),
        "results_max_abs_diff": max((d for d in diffs if d is not None), default=None),
        "aisp_inference_ms_p50": aisp[0]["inference_ms_p50"],
        "naive_runs_fps": [round(r["fps"], 2) for r in naive],
        "aisp_runs_fps": [round(r["fps"], 2) for r in aisp],
        "aisp_batching_runs_fps": [round(r["fps"], 2) for r in batched],
        "whole_process": whole,
        "resume": resume,
        "peer_roboflow": peer,
    }
    if peer.get("net_fps"):
        out["ratio_vs_peer_net"] = round(aisp_fps / peer["net_fps"], 3)
        out["goal_peer_ratio"] = GOAL_PEER_RATIO
    return out
