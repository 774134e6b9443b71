"""``aisp bench models``: per-model latency at 640x480 and AISP's overhead over raw MediaPipe.

For every registered model that can load here: load it (through a registry of its own with no
cache, built from a :class:`~aisp.models.ModelConfig`; no process-wide state), warm it up, and
time ``model.infer(frame)`` on a 640x480 frame cut from a real photo (scikit-image's astronaut;
a synthetic frame when scikit-image is missing). Reports the median and p90 wall time per call
and the model's own ``inference_ms`` median.

Overhead: for each MediaPipe model, three calls per round on the same frame, in an order that
rotates every round: a raw ``mediapipe.solutions`` graph built with the same options, AISP's
``infer``, and a second raw graph.

* ``paired_overhead_pct``: median of the per-round ratios AISP / raw (wall time), which shrugs off
  load spikes; ``overhead_pct`` compares the two medians instead; ``paired_cpu_overhead_pct`` uses
  process CPU time, which other processes on the machine barely move.
* ``noise_floor_pct``: second raw graph / raw graph (A/A): what the machine alone makes of nothing.
  Where it is as large as the goal, the A/B figures cannot resolve the goal on this machine.
* ``own_overhead_pct``: AISP's own work (frame check, proto-to-numpy conversion, result object)
  timed alone right after each raw call, over the raw median.

Goal: at most 5 %.

Also: the ONNX adapter on a YOLOv8n-shaped stand-in (letterbox, session, decode + NMS), and the
cost of :func:`aisp.models.annotate` per frame.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - aisp.models imports numpy; this module stays light
    from aisp.models import ModelConfig, ModelRegistry

logger = logging.getLogger("aisp.bench")

WIDTH, HEIGHT = 640, 480
MEDIAPIPE_MODELS = (
    "face_detection",
    "face_detection_full",
    "face_mesh",
    "selfie_segmentation",
    "pose",
    "hands",
)
OTHER_MODELS = ("motion", "fake")


def _frame() -> tuple[Any, str]:
    import numpy as np

    from aisp.models._yolo_postprocess import center_crop_resize

    try:
        from skimage import data

        return np.ascontiguousarray(
            center_crop_resize(data.astronaut(), (HEIGHT, WIDTH))
        ), "skimage astronaut"
    except ImportError:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), "synthetic noise"


def _ms(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and process CPU milliseconds of one call (CPU time counts MediaPipe's own threads
    too, and barely moves when other processes load the machine)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - w0) * 1000.0, (time.process_time() - c0) * 1000.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _raw_solution(name: str, model: Any) -> Any:
    """A raw mediapipe.solutions graph with the adapter's own options."""
    import mediapipe as mp

    from aisp.logs import capture_native_output

    builders = {
        "face_detection": mp.solutions.face_detection.FaceDetection,
        "face_detection_full": mp.solutions.face_detection.FaceDetection,
        "face_mesh": mp.solutions.face_mesh.FaceMesh,
        "selfie_segmentation": mp.solutions.selfie_segmentation.SelfieSegmentation,
        "pose": mp.solutions.pose.Pose,
        "hands": mp.solutions.hands.Hands,
    }
    with capture_native_output():
        return builders[name](**model.options)


def _bench_model(registry: ModelRegistry, name: str, frame: Any, n: int, warmup: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    model = registry.load(name, cache=False)
    load_ms = (time.perf_counter() - t0) * 1000.0
    try:
        for _ in range(warmup):
            model.infer(frame)
        wall, own = [], []
        for _ in range(n):
            t = time.perf_counter()
            result = model.infer(frame)
            wall.append((time.perf_counter() - t) * 1000.0)
            own.append(result.inference_ms)
        row: dict[str, Any] = {
            "backend": model.backend,
            "load_ms": round(load_ms, 1),
            "frames": n,
            "ms_per_frame_median": round(statistics.median(wall), 3),
            "ms_per_frame_p90": round(_pct(wall, 0.9), 3),
            "inference_ms_median": round(statistics.median(own), 3),
            "fps": round(1000.0 / statistics.median(wall), 1),
            "detections": result.num_detections,
        }
        if name in MEDIAPIPE_MODELS:
            row["overhead"] = _overhead(name, model, frame, n, warmup)
        return row
    finally:
        model.close()


def _overhead(name: str, model: Any, frame: Any, n: int, warmup: int) -> dict[str, Any]:
    from aisp.logs import capture_native_output
    from aisp.models import ModelResult
    from aisp.models._frame_check import check_frame

    raw = _raw_solution(name, model)
    raw2 = _raw_solution(name, model)
    try:
        with capture_native_output():
            for _ in range(max(1, warmup)):
                out = raw.process(frame)
                raw2.process(frame)
        # AISP's own work per call, timed alone right after each raw call (fresh protos, caches
        # as cold as in real use): frame check, conversion, result object.
        own = []
        for _ in range(n):
            out = raw.process(frame)
            t = time.perf_counter()
            f = check_frame(frame)
            ModelResult(name, 0.0, **model._convert(out, f))
            own.append((time.perf_counter() - t) * 1000.0)
        # Three calls per round, in a rotating order: a raw graph, AISP, and a second raw graph
        # (the A/A noise floor between two identical graphs). Three different graphs, so no call
        # finds its graph still warm from the call before.
        calls = [
            ("raw", lambda: raw.process(frame)),
            ("aisp", lambda: model.infer(frame)),
            ("raw2", lambda: raw2.process(frame)),
        ]
        wall: dict[str, list[float]] = {k: [] for k, _ in calls}
        cpu: dict[str, list[float]] = {k: [] for k, _ in calls}
        for i in range(n):
            for key, fn in calls[i % 3 :] + calls[: i % 3]:
                w, c = _timed(fn)
                wall[key].append(w)
                cpu[key].append(c)

        def paired(series: dict[str, list[float]], num: str, den: str) -> float:
            ratios = [x / y if y > 0 else 1.0 for x, y in zip(series[num], series[den], strict=True)]
            return round((statistics.median(ratios) - 1.0) * 100.0, 2)

        raw_med, aisp_med = statistics.median(wall["raw"]), statistics.median(wall["aisp"])
        own_med = statistics.median(own)
        return {
            "raw_mediapipe_ms_median": round(raw_med, 3),
            "aisp_ms_median": round(aisp_med, 3),
            "overhead_pct": round((aisp_med / raw_med - 1.0) * 100.0, 2),
            "paired_overhead_pct": paired(wall, "aisp", "raw"),
            "paired_cpu_overhead_pct": paired(cpu, "aisp", "raw"),
            "noise_floor_pct": paired(wall, "raw2", "raw"),
            "overhead_ms": round(aisp_med - raw_med, 3),
            "aisp_own_ms_median": round(own_med, 4),
            "own_overhead_pct": round(own_med / raw_med * 100.0, 2),
            "goal_pct": 5.0,
        }
    finally:
        raw.close()
        raw2.close()


def _bench_annotate(frame: Any, n: int) -> dict[str, Any]:
    """Per-frame cost of drawing results (what the video and MJPEG sinks pay)."""
    import numpy as np

    from aisp.models import Detections, Landmarks, Mask, ModelResult, annotate

    h, w = frame.shape[:2]
    boxes = ModelResult(
        "boxes",
        0.0,
        detections=Detections(
            [[100, 80, 220, 200], [300, 100, 420, 260]],
            [0.9, 0.8],
            [0, 1],
            np.full((2, 6, 2), 150.0),
            ("a", "b"),
        ),
    )
    mask_data = np.zeros((h, w), np.float32)
    mask_data[:, : w // 2] = 1.0
    mask = ModelResult("mask", 0.0, mask=Mask(mask_data))
    mesh = ModelResult(
        "mesh",
        0.0,
        landmarks=Landmarks(np.random.default_rng(0).random((1, 468, 3)) * [w, h, 1], kind="face_mesh"),
    )
    out: dict[str, Any] = {}
    for label, results in (("boxes", [boxes]), ("mask", [mask]), ("boxes+mask+mesh", [boxes, mask, mesh])):
        times = [_ms(lambda r=results: annotate(frame, r)) for _ in range(n)]
        out[f"{label}_ms_median"] = round(statistics.median(times), 3)
    return out


def _yolo_shaped_onnx(path: Any) -> None:
    """A stand-in with YOLOv8n's interface (input [1, 3, 640, 640], output [1, 84, 8400], Ultralytics
    metadata): 30 planted objects, ~10 overlapping anchors each, so decoding and NMS do real work.
    The graph itself is trivial, so the timing is AISP's pre/post-processing plus session overhead."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    anchors, classes = 8400, 80
    out = np.zeros((1, 4 + classes, anchors), np.float32)
    out[0, 0:2] = rng.uniform(0, 640, (2, anchors))
    out[0, 2:4] = rng.uniform(8, 64, (2, anchors))
    for obj in range(30):
        cx, cy, w, h = rng.uniform(40, 600), rng.uniform(40, 600), rng.uniform(30, 150), rng.uniform(30, 150)
        idx = rng.choice(anchors, 10, replace=False)
        out[0, 0, idx] = cx + rng.normal(0, 3, 10)
        out[0, 1, idx] = cy + rng.normal(0, 3, 10)
        out[0, 2, idx], out[0, 3, idx] = w, h
        out[0, 4 + obj % classes, idx] = rng.uniform(0.55, 0.95, 10)

    def const(name: str, value: np.ndarray) -> Any:
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=1),
        const("shape", np.array([-1, 1, 1], np.int64)),
        helper.make_node("Reshape", ["mean", "shape"], ["m"]),
        const("zero", np.array(0.0, np.float32)),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        const("raw", out),
        helper.make_node("Add", ["raw", "z"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "yolo_shaped",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 84, 8400])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    names = {i: f"class{i}" for i in range(classes)}
    helper.set_model_props(model, {"names": repr(names), "imgsz": "[640, 640]", "task": "detect"})
    onnx.save(model, str(path))


def _bench_onnx(frame: Any, n: int, warmup: int) -> dict[str, Any]:
    """The ONNX adapter on a YOLOv8n-shaped model: total and per-stage medians."""
    import tempfile
    from pathlib import Path

    from aisp.models.onnx import OnnxModel

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "yolo_shaped.onnx"
        _yolo_shaped_onnx(path)
        model = OnnxModel(path, conf_threshold=0.25)
        for _ in range(warmup):
            model.infer(frame)
        total = [_ms(lambda: model.infer(frame)) for _ in range(n)]
        prep, sess, dec = [], [], []
        for _ in range(n):
            t0 = time.perf_counter()
            x, scale, pad = model._prepare(frame)
            t1 = time.perf_counter()
            out = model._run(x[None])
            t2 = time.perf_counter()
            parts = model._decode(out[0], frame, scale, pad)
            t3 = time.perf_counter()
            prep.append((t1 - t0) * 1000)
            sess.append((t2 - t1) * 1000)
            dec.append((t3 - t2) * 1000)
        return {
            "backend": "onnx",
            "model": "YOLOv8n-shaped stand-in, output [1, 84, 8400], 300 candidates",
            "frames": n,
            "ms_per_frame_median": round(statistics.median(total), 3),
            "letterbox_ms_median": round(statistics.median(prep), 3),
            "session_ms_median": round(statistics.median(sess), 3),
            "decode_nms_ms_median": round(statistics.median(dec), 3),
            "detections": len(parts["detections"]),
        }


def run(quick: bool = False, config: ModelConfig | None = None) -> dict[str, Any]:
    """Benchmark every model that can load here, built with ``config`` (default
    ``ModelConfig()``); JSON-ready dict."""
    from aisp.errors import AISPError
    from aisp.models import ModelRegistry

    registry = ModelRegistry(None, config)
    frame, source = _frame()
    n, warmup = (12, 2) if quick else (60, 5)
    available = {i.name: i for i in registry.list()}
    results: dict[str, Any] = {}
    for name in (*MEDIAPIPE_MODELS, *OTHER_MODELS):
        info = available.get(name)
        if info is None or info.status == "missing_dependency":
            results[name] = {"skipped": info.install_hint if info else "not registered"}
            continue
        try:
            results[name] = _bench_model(registry, name, frame, n, warmup)
        except AISPError as exc:
            results[name] = {"error": exc.message}
    if available.get("onnx:<path>") is not None and available["onnx:<path>"].status == "available":
        try:
            results["onnx_yolo_shaped"] = _bench_onnx(frame, n, warmup)
        except ImportError:  # the onnx package builds the stand-in; onnxruntime alone cannot
            results["onnx_yolo_shaped"] = {"skipped": "pip install 'aisp[onnx]'"}
    results_annotate = _bench_annotate(frame, n)
    over = [r["overhead"] for r in results.values() if "overhead" in r]

    def worst(key: str) -> float | None:
        return max(o[key] for o in over) if over else None

    return {
        "frame": {"width": WIDTH, "height": HEIGHT, "source": source},
        "frames_per_model": n,
        "models": results,
        "annotate": results_annotate,
        "max_paired_overhead_pct": worst("paired_overhead_pct"),
        "max_paired_cpu_overhead_pct": worst("paired_cpu_overhead_pct"),
        "max_abs_noise_floor_pct": max(abs(o["noise_floor_pct"]) for o in over) if over else None,
        "max_own_overhead_pct": worst("own_overhead_pct"),
        "overhead_goal_met": (worst("paired_overhead_pct") or 0.0) <= 5.0 if over else None,
    }
