"""``aisp bench cluster`` (streams): what running a stream as a Ray actor costs, and how fast a
stream moves when its node dies.

* :func:`overhead`: one file stream (a 640x480 video of the demo source, ``face_detection``), as
  fast as it goes, run by AISP's engine in this process (no Ray) and by a stream actor on a
  one-node Ray started here, with the same CPU plan (the actor's share of the node: its CPUs over
  its one stream slot). FPS = frames / seconds from the stream's start to its last frame, the best
  of ``rounds`` alternated runs each. Goal: the actor at least 0.9x.
* :func:`recovery`: a ``ray.cluster_utils.Cluster`` (a head with no stream slot, two nodes with
  one), one live stream (the demo source at 30 FPS, the ``fake`` model); its node is removed and a
  replacement added; the figure is the time from the removal to the first result of the restarted
  actor, as a viewer sees it through :class:`~aisp.cluster.remote_stream.RemoteStream`. Median over
  ``tries``. Goal: under 5 s.

Each function starts and stops its own Ray (it refuses to run in a process already connected to
one) and its store is SQLite in a temporary folder (one machine). Each returns a JSON-able dict and
takes well under a minute on 2 cores.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aisp.cluster.connection import NAMESPACE, STREAM_SLOT, worker_settings
from aisp.cluster.stream_actor import stream_actor_options, stream_settings
from aisp.errors import ConfigError
from aisp.settings import Settings, load_settings

__all__ = ["overhead", "recovery", "GOAL_OVERHEAD_RATIO", "GOAL_RECOVERY_S"]

GOAL_OVERHEAD_RATIO = 0.9
GOAL_RECOVERY_S = 5.0

log = logging.getLogger("aisp.cluster")


def _need_no_ray() -> Any:
    import ray

    if ray.is_initialized():
        raise ConfigError("the cluster benchmarks start their own Ray: run them in a process that is not "
                          "connected to one", field="ray_address")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private, throwaway cluster
    return ray


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings with a migrated SQLite store in ``data_dir`` (the actors open it without migrating)."""
    from aisp.store import Store

    settings = load_settings(environ={}, data_dir=data_dir, snapshot_interval_seconds=3600.0,
                             media_dirs=[str(data_dir.parent)], **overrides)
    Store(settings=settings).open(background=False).close()
    return settings


def _local_run(settings: Settings, video: Path, model: str, cores: int) -> dict[str, Any]:
    from aisp.pipeline import StreamSpec
    from aisp.runtime import build

    with build(stream_settings(settings, cores, 1), store=False) as runtime:
        runtime.models.load_instance(model, "w0")  # loaded before the clock starts, as in the actor
        started = time.monotonic()
        spec = StreamSpec(id="bench", source=str(video), models=[model])
        stream = runtime.engine.add_stream(spec, start=True)
        stream.wait(120)
        seconds = time.monotonic() - started
        frames = stream.stats.snapshot().frames_out
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds if seconds else 0.0}


def _actor_run(ray: Any, settings: Settings, video: Path, model: str, n: int) -> dict[str, Any]:
    from aisp.cluster.streams import _remote_class

    sid = f"bench-{n}"
    handle = _remote_class().options(**stream_actor_options(sid)).remote(
        {"id": sid, "source": str(video), "models": [model]}, worker_settings(settings))
    try:
        done = ray.get(handle.wait_done.remote(120.0), timeout=180)
        if done["state"] != "stopped":
            raise RuntimeError(f"the stream actor ended {done['state']}: "
                               f"{ray.get(handle.info.remote(), timeout=10).get('last_error')}")
    finally:
        ray.kill(handle, no_restart=True)
    seconds = float(done["seconds"])
    return {"frames": done["frames"], "seconds": seconds, "fps": done["frames"] / seconds if seconds else 0.0}


def overhead(*, frames: int = 600, model: str = "face_detection", rounds: int = 3,
             cores: int | None = None) -> dict[str, Any]:
    """AISP without Ray against a stream actor on a one-node Ray (see the module docstring)."""
    from aisp.bench.pipeline import make_video

    ray = _need_no_ray()
    cores = cores or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="aisp-bench-cluster-") as tmp:
        root = Path(tmp)
        video = make_video(root / "demo.mp4", frames)
        settings = _settings(root / "data")
        started = time.perf_counter()
        ray.init(address="local", num_cpus=cores, resources={STREAM_SLOT: 1}, namespace=NAMESPACE,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
        init_s = time.perf_counter() - started
        try:
            local, actor = [], []
            for n in range(rounds):  # alternated, so that both see the same machine
                local.append(_local_run(settings, video, model, cores))
                actor.append(_actor_run(ray, settings, video, model, n))
        finally:
            ray.shutdown()
    best_local = max(r["fps"] for r in local)
    best_actor = max(r["fps"] for r in actor)
    ratio = best_actor / best_local if best_local else 0.0
    return {
        "workload": {"frames": frames, "model": model, "size": [640, 480], "cores": cores},
        "ray_init_s": round(init_s, 2),
        "local": [{k: round(v, 2) for k, v in r.items()} for r in local],
        "actor": [{k: round(v, 2) for k, v in r.items()} for r in actor],
        "local_fps": round(best_local, 1),
        "actor_fps": round(best_actor, 1),
        "ratio": round(ratio, 3),
        "goal": GOAL_OVERHEAD_RATIO,
        "ok": ratio >= GOAL_OVERHEAD_RATIO,
    }


def _first_result_after(view: Any, incarnation: str | None, deadline: float) -> str | None:
    """Wait for a result from an actor incarnation other than ``incarnation``; returns the new one."""
    seq = view.latest.top
    while time.monotonic() < deadline:
        got = view.latest.wait_next(seq, 0.5)
        current = view.latest.incarnation
        if got is not None:
            seq = got[0]
            if current != incarnation:
                return current
    return None


def recovery(*, tries: int = 3, timeout: float = 30.0) -> dict[str, Any]:
    """Seconds from a node's removal to the first new result of its moved stream (module docstring)."""
    from ray.cluster_utils import Cluster

    from aisp.cluster.remote_stream import RemoteStream
    from aisp.cluster.streams import _remote_class

    ray = _need_no_ray()
    node_args = {"num_cpus": 1, "resources": {STREAM_SLOT: 1}, "object_store_memory": 80 * 1024 * 1024}
    times: list[float] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="aisp-bench-recovery-") as tmp:
        settings = _settings(Path(tmp) / "data")
        started = time.perf_counter()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {STREAM_SLOT: 0},
                                                                 "include_dashboard": False})
        try:
            nodes = [cluster.add_node(**node_args) for _ in range(2)]
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False,
                     configure_logging=False)
            setup_s = time.perf_counter() - started
            sid = "bench-recovery"
            handle = _remote_class().options(**stream_actor_options(sid)).remote(
                {"id": sid, "source": "demo:live", "models": ["fake"]}, worker_settings(settings))
            view = RemoteStream(sid)
            try:
                for _ in range(tries):
                    deadline = time.monotonic() + timeout
                    before = _first_result_after(view, "", deadline)  # the running incarnation
                    node_id = ray.get(handle.ping.remote(), timeout=timeout)
                    victim = next(n for n in nodes if n.node_id == node_id)
                    removed = time.monotonic()
                    cluster.remove_node(victim)
                    nodes.remove(victim)
                    moved = _first_result_after(view, before, removed + timeout)
                    if moved is None:
                        failures.append(f"no result within {timeout:.0f} s")
                    else:
                        times.append(time.monotonic() - removed)
                    nodes.append(cluster.add_node(**node_args))
                    cluster.wait_for_nodes()
            finally:
                ray.kill(handle, no_restart=True)
        finally:
            ray.shutdown()
            cluster.shutdown()
    median = statistics.median(times) if times else None
    return {
        "tries": tries,
        "cluster_setup_s": round(setup_s, 2),
        "seconds": [round(t, 2) for t in times],
        "median_s": None if median is None else round(median, 2),
        "max_s": round(max(times), 2) if times else None,
        "failures": failures,
        "goal_s": GOAL_RECOVERY_S,
        "ok": median is not None and median < GOAL_RECOVERY_S and not failures,
    }
