"""``FramesReplica``: one Ray Serve replica of ``POST /api/frames/process``, on one node.

A replica is a small AISP of its own: it builds its runtime (model cache with AISP's TTL and
eviction, model registry) from the driver's settings (:func:`aisp.cluster.worker_settings`),
with a CPU plan for the CPUs of the node it landed on, not the driver's, prewarms
``AISP_PREWARM`` (and the per-thread instances the frames route uses), and answers each request
with :func:`aisp.api.frame_processing.process_image` on an :class:`~aisp.api.context.AppContext`
of its own: the same header check, megapixel budget, bounded inference pool, dynamic batching and
JSON body as on one machine, so a client cannot tell the answers apart (except by the
``X-AISP-Replica`` header).

Errors cross back as values (:class:`ReplicaReply` with ``error`` set), not as exceptions: Ray
would pickle an :class:`~aisp.errors.AISPError` by its message alone and lose its status, name and
details (and some subclasses cannot be rebuilt from a message at all). The driver turns them back
into an error with the same status and body (:func:`aisp.cluster.frames.remote_error`).

This module is imported on the nodes (Serve unpickles the class by reference): AISP must be
installed there, the same version as the driver.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aisp.errors import AISPError
from aisp.settings import Settings

__all__ = ["FramesReplica", "ReplicaReply", "node_cpus"]

log = logging.getLogger("aisp.cluster")


@dataclass
class ReplicaReply:
    """What a replica sends back: the answer, or the unified error's fields."""

    node_id: str
    pid: int
    body: bytes = b""
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    #: model name -> inference ms, for the driver's ``aisp_inference_seconds{origin="serve"}``
    inference_ms: dict[str, float] = field(default_factory=dict)
    #: ``{"status", "name", "message", "details"}`` of the AISPError raised, None on success
    error: dict[str, Any] | None = None


def node_cpus(node_id: str) -> int:
    """The CPUs Ray sees on ``node_id`` (at least 1): the replica's CPU plan is for its node."""
    import ray

    for n in ray.nodes():
        if n.get("NodeID") == node_id:
            return max(1, int((n.get("Resources") or {}).get("CPU", 1)))
    return 1


def _inference_ms(body: bytes, media_type: str) -> dict[str, float]:
    """The per-model times of a JSON answer (an annotated JPEG has only the total in a header)."""
    if media_type != "application/json":
        return {}
    try:
        return {str(k): float(v) for k, v in json.loads(body).get("inference_ms", {}).items()}
    except (ValueError, AttributeError):  # pragma: no cover - the body is ours
        return {}


class FramesReplica:
    """The deployment's class (wrapped by ``serve.deployment`` in :mod:`aisp.cluster.frames`)."""

    def __init__(self, settings: Settings, cwd: str | None = None) -> None:
        import ray

        from aisp.api.context import AppContext
        from aisp.api.modelops import prewarm_api_instances, prewarm_models
        from aisp.cluster.connection import worker_settings
        from aisp.runtime import build

        t0 = time.perf_counter()
        if cwd and os.path.isdir(cwd):
            # ``onnx:<relative path>`` names resolve against the working directory, as in the API
            # process that checked them; this worker process is the replica's alone
            os.chdir(cwd)
        self.node_id = ray.get_runtime_context().get_node_id()
        self.pid = os.getpid()
        cores = node_cpus(self.node_id)
        # the driver's settings without Ray, planned for this node's CPUs; its inference pool
        # follows the plan (cores + 1, at most 4) unless the driver set inference_threads itself
        own = worker_settings(settings, cpu_cores=cores)
        self.ctx = AppContext(own)
        self.ctx.runtime = build(own, store=False, plan=self.ctx.cpu_plan)
        loaded, failed = prewarm_models(self.ctx.runtime, list(own.prewarm))
        if failed:
            log.error("frames replica: prewarm failed for %s", sorted(failed))
        pool = self.ctx.inference
        assert pool is not None  # the context creates it
        prewarm_api_instances(self.ctx.runtime.models, loaded, pool.threads, capacity=own.cache_max_size)
        log.info("frames replica on node %s (pid %s, %d CPUs, %d threads) ready in %.0f ms",
                 self.node_id[:12], self.pid, cores, pool.threads, (time.perf_counter() - t0) * 1000)

    async def process(self, data: bytes, names: Sequence[str], annotate: bool,
                      reduced_decode: bool | None) -> ReplicaReply:
        from aisp.api.frame_processing import process_image

        try:
            answer = await process_image(self.ctx, data, list(names), annotate=annotate,
                                         reduced_decode=reduced_decode)
        except AISPError as exc:
            return ReplicaReply(self.node_id, self.pid, error={
                "status": exc.status_code, "name": exc.name, "message": exc.message,
                "details": dict(exc.details)})
        return ReplicaReply(self.node_id, self.pid, answer.body, answer.media_type, dict(answer.headers),
                            inference_ms=_inference_ms(answer.body, answer.media_type))

    async def check_health(self) -> None:
        """Serve's periodic health check: a replica whose inference pool is gone is replaced."""
        if self.ctx.inference is None or self.ctx.runtime is None:
            raise RuntimeError("the frames replica has no runtime")

    def __del__(self) -> None:
        """Serve calls this when it stops the replica: release the models and the pool's threads."""
        ctx = getattr(self, "ctx", None)
        if ctx is None:
            return
        try:
            if ctx.inference is not None:
                ctx.inference.shutdown()
            if ctx.runtime is not None:
                ctx.runtime.close(timeout=5.0)
        except Exception:  # noqa: BLE001 - a replica going away must not raise
            log.debug("frames replica: closing its runtime failed", exc_info=True)
