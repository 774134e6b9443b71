"""Batch-task scaling over simulated Ray nodes (``aisp bench cluster``, the scaling part).

:func:`scaling` starts a ``ray.cluster_utils.Cluster`` on this machine, one node with ``num_cpus=1``
(one worker thread each: the node's CPU plan), runs the same task video split over the nodes
(:class:`aisp.cluster.tasks.ClusterTasks`, events and the annotated video merged, as the API's
task runner does), then adds nodes and runs it again: task FPS per node count, and the ratio of 2
nodes to 1 (goal >= 1.7x on a 2-core machine). Nodes are added to one cluster (a head start is ~4 s,
a node ~1 s) and every worker is warmed (runtime built, models loaded) before its run is timed.
Counts above the machine's cores are skipped: a simulated node without a core of its own measures
contention, not scaling (on 16 cores, ``nodes=[1, 2, 4, 8]`` gives the curve).

``pin=True`` (the default) gives each simulated node a core of its own, as a real 1-CPU node has:
node ``i`` carries the resource ``aisp_bench_core_<i>`` and its task worker pins every thread of
its process to that core (:func:`pin_to_node_core`, the worker's setup). Without it, one
"1-CPU" node's decoder, encoder and model threads spread over every core of the machine and the
2-vs-1 ratio measures nothing (measured: 0.98x on 2 cores).

The workload: the demo source (a face over a photo), 640x480, H.264 with a keyframe every
``gop`` frames, through ``face_detection`` (MediaPipe); ``fake`` when MediaPipe is missing.
Figures on a machine other programs share (other Ray clusters) are noisy: the dict says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from aisp.cpu_budget import detect_cores
from aisp.settings import load_settings

__all__ = ["GOAL_RATIO", "make_task_video", "pin_to_node_core", "scaling"]

log = logging.getLogger("aisp.bench")

GOAL_RATIO = 1.7
NODE_ARGS: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}


def make_task_video(path: Path, frames: int, *, gop: int = 15, size: tuple[int, int] = (640, 480),
                    fps: int = 30, demo: bool = True) -> Path:
    """An H.264 (else MPEG-4) video with a keyframe every ``gop`` frames: the demo's moving face
    (``demo``), or noise whose brightness and a counter (:func:`~aisp.bench.onnx_workload.stamp_counter`)
    change with every frame."""
    import av
    import cv2
    import numpy as np

    from aisp.bench.onnx_workload import stamp_counter
    from aisp.pipeline.demo import DemoSource

    w, h = size
    source = DemoSource(frames=frames) if demo else None
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 160, (h // 8, w // 8, 3), np.uint8).repeat(8, 0).repeat(8, 1)[:h, :w]
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        # a keyframe exactly every ``gop`` frames (no scene-cut keyframes): ranges of a known size
        options = ({"preset": "ultrafast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
                   if codec == "libx264" else {})
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        for i in range(frames):
            if source is not None:
                img = cv2.resize(source.render(i), (w, h))
            else:
                img = np.ascontiguousarray(noise + np.uint8(i % 90))
                stamp_counter(img, i)
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


CORE_RESOURCE = "aisp_bench_core_"


def pin_to_node_core() -> None:
    """Pin this process (every thread it has; new ones inherit) to the core its node names in
    its ``aisp_bench_core_<n>`` resource: the task worker's setup in the benchmark."""
    import ray

    me = ray.get_runtime_context().get_node_id()
    for node in ray.nodes():
        if node["NodeID"] != me:
            continue
        for name in node.get("Resources") or {}:
            if name.startswith(CORE_RESOURCE):
                core = {int(name[len(CORE_RESOURCE):])}
                for tid in os.listdir("/proc/self/task"):
                    try:
                        os.sched_setaffinity(int(tid), core)
                    except OSError:  # the thread ended meanwhile
                        continue
                log.info("bench: task worker pinned to core %s", core)
                return


def _node_args(i: int, cores: int, pin: bool) -> dict[str, Any]:
    return {**NODE_ARGS, "resources": {f"{CORE_RESOURCE}{i % cores}": 1}} if pin else dict(NODE_ARGS)


def _model() -> str:
    from aisp.models.specs import module_available

    return "face_detection" if module_available("mediapipe") else "fake"


def _wait_nodes(ray: Any, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for node in ray.nodes() if node.get("Alive")) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} Ray nodes did not come up in {timeout:g} s")
        time.sleep(0.1)


def _run_once(tasks: Any, video: Path, model: str, out: Path, task_id: str) -> dict[str, Any]:
    from aisp.api.task_outputs import fold_events, join_video

    out.mkdir(parents=True)
    t0 = time.perf_counter()
    summary = tasks.run_task(task_id, str(video), [model], task_dir=out, video=True)
    fold_events(out)
    join_video(out)
    seconds = time.perf_counter() - t0
    if summary.error:
        raise RuntimeError(f"the benchmark task failed: {summary.error}")
    return {"frames": summary.frames, "seconds": round(seconds, 3), "fps": round(summary.frames / seconds, 2),
            "ranges": summary.cluster["ranges"], "nodes_used": len(summary.cluster["nodes"])}


def scaling(nodes: list[int] | None = None, *, frames: int = 600, gop: int = 15, model: str | None = None,
            repeats: int = 2, pin: bool = True) -> dict[str, Any]:
    """Task FPS on 1, 2, ... simulated nodes (``num_cpus=1`` each); see the module docstring.

    Each count runs the task ``repeats`` times and keeps the best (the least disturbed by other
    programs); ``runs[n]["all_fps"]`` has every run. ~45 s on 2 cores with the defaults."""
    import ray
    from ray.cluster_utils import Cluster

    from aisp.cluster import NAMESPACE
    from aisp.cluster.tasks import ClusterTasks

    cores = detect_cores()
    counts = sorted(set(nodes or [1, 2]))
    skipped = [n for n in counts if n > cores]
    counts = [n for n in counts if n <= cores] or [1]
    model = model or _model()
    if ray.is_initialized():
        raise RuntimeError("scaling() starts its own Ray cluster: call it from a process without ray.init")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    tmp = Path(tempfile.mkdtemp(prefix="aisp-bench-cluster-"))
    result: dict[str, Any] = {"model": model, "frames": frames, "gop": gop, "cores": cores,
                              "node_cpus": 1, "pinned": pin, "goal_ratio_2_vs_1": GOAL_RATIO, "runs": {},
                              "skipped_nodes": skipped,
                              "note": "simulated nodes share this machine's cores with anything else running "
                                      "(other Ray clusters): figures are noisy"}
    cluster = None
    tasks = None
    try:
        t0 = time.perf_counter()
        video = make_task_video(tmp / "task.mp4", frames, gop=gop)
        result["video_s"] = round(time.perf_counter() - t0, 2)
        settings = load_settings(environ={}, data_dir=tmp / "data", media_dirs=[str(tmp)], workers=1)
        t0 = time.perf_counter()
        cluster = Cluster(initialize_head=True, head_node_args={**_node_args(0, cores, pin),
                                                                "include_dashboard": False})
        ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
        result["cluster_start_s"] = round(time.perf_counter() - t0, 2)
        tasks = ClusterTasks(settings, max_slots=1, setup=pin_to_node_core if pin else None)
        alive = 1
        for n in counts:
            while alive < n:
                cluster.add_node(**_node_args(alive, cores, pin))
                alive += 1
            _wait_nodes(ray, n)
            t0 = time.perf_counter()
            tasks.warm([model])
            warm_s = round(time.perf_counter() - t0, 2)
            runs = [_run_once(tasks, video, model, tmp / f"out-{n}-{i}", f"bench-{n}-{i}")
                    for i in range(repeats)]
            best = max(runs, key=lambda r: r["fps"])
            result["runs"][n] = {**best, "warm_s": warm_s, "all_fps": [r["fps"] for r in runs]}
            log.info("bench cluster: %d node(s): %.1f task FPS", n, best["fps"])
        fps = {n: r["fps"] for n, r in result["runs"].items()}
        result["fps"] = fps
        if 1 in fps and 2 in fps:
            result["ratio_2_vs_1"] = round(fps[2] / fps[1], 2)
            result["ok"] = result["ratio_2_vs_1"] >= GOAL_RATIO
        base = fps.get(1)
        if base:
            result["curve"] = {n: round(f / base, 2) for n, f in fps.items()}
        return result
    finally:
        if tasks is not None:
            tasks.close()
        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
