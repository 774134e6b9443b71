"""``POST /api/frames/process`` on Ray Serve: the API keeps the ingress, replicas do the work.

Shape::

    client ─► AISP API (this process: gate, auth, upload limit, model names, image header)
                 │  encoded JPEG/PNG/WebP bytes + checked names (a DeploymentHandle call)
                 ▼
           Serve deployment "frames" (app "aisp-frames"), at most one replica per node
                 FramesReplica: its own runtime, cache, TTL, prewarm; decode + infer there

Why not Serve's own FastAPI ingress: measured on a 2-core machine it answered 73 req/s against
AISP's 338 for the same work (``RAY_NOTES.md``); its HTTP proxy is one more hop and a slower
server. Here Serve has no HTTP proxy at all (``proxy_location="Disabled"``): the AISP API is the
only ingress, and one handle call (a Ray actor call, ~1-3 ms on one node) is the only hop. Encoded
bytes cross, never decoded pixels: a 640x480 JPEG is ~30-60 KB against 921,600 bytes of RGB.

Placement: ``num_replicas`` = ``AISP_RAY_FRAMES_REPLICAS`` or one per alive node, with
``max_replicas_per_node=1`` so they spread (Serve packed three replicas with no CPU request onto
one node otherwise). Replicas ask Ray for no logical CPU (``num_cpus=0``): the nodes' CPUs stay
for the stream actors and batch task workers; each replica plans its threads for its node's
CPUs. ``min_replicas`` is never 0: a cold replica takes tens of seconds.

Errors: a replica's AISP error comes back with the same status and unified body as on one
machine (:func:`remote_error`); a replica that died, a full queue or a timeout is a 503
``OVERLOADED`` with ``Retry-After`` (Serve starts a replacement; the client retries).

Path choice (``AISP_RAY_FRAMES``, :func:`frames_path`): ``serve``, ``local`` (this process
answers, as without Ray), or ``auto`` = ``serve`` when more than one node is alive at start. On one
node the hop buys no capacity and costs latency (figures in ``docs/cluster.md``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aisp.api.frame_processing import FrameAnswer
from aisp.cluster.frames_replica import FramesReplica, ReplicaReply
from aisp.errors import AISPError, OverloadedError
from aisp.settings import Settings

if TYPE_CHECKING:
    from aisp.api.metrics import ApiMetrics

__all__ = ["APP_NAME", "DEPLOYMENT", "RemoteError", "ServeFrames", "frames_path", "remote_error"]

log = logging.getLogger("aisp.cluster")

#: the Serve application and deployment names (Serve's controller lives in its own ``serve``
#: namespace; the names hold no setting, so no secret)
APP_NAME = "aisp-frames"
DEPLOYMENT = "frames"
#: requests one replica works on at once: about its inference pool's capacity
MAX_ONGOING = 16
#: requests waiting in this process for a replica; past it, 503 OVERLOADED at once
MAX_QUEUED = 64
#: the longest a request may take on a replica before the API gives up with a 503
CALL_TIMEOUT_S = 60.0


def frames_path(settings: Settings, alive_nodes: int) -> str:
    """``"serve"`` or ``"local"`` for ``AISP_RAY_FRAMES`` and the nodes alive now."""
    if settings.ray_frames == "auto":
        return "serve" if alive_nodes > 1 else "local"
    return settings.ray_frames


class RemoteError(AISPError):
    """An AISP error raised on a replica, with the replica's status, name, message and details."""

    def __init__(self, status: int, name: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message, details=details)
        self.status_code = status
        self.name = name


def remote_error(error: dict[str, Any]) -> AISPError:
    return RemoteError(int(error["status"]), str(error["name"]), str(error["message"]),
                       dict(error.get("details") or {}))


def replica_settings(settings: Settings) -> Settings:
    """The settings a replica is built from (pickled into the deployment, which Serve keeps in its
    controller): nothing secret, since a replica opens no store and delivers no event. Paths are
    made absolute as the driver sees them (a replica's working directory is Ray's)."""
    from aisp.cluster.connection import worker_settings

    return worker_settings(settings, database_url=None, mqtt_url=None, data_dir=settings.data_dir.resolve(),
                           model_dir=settings.resolved_model_dir)


#: Serve's controller: a detached named actor in Serve's own namespace
_CONTROLLER = {"name": "SERVE_CONTROLLER_ACTOR", "namespace": "serve"}


def _serve_running() -> bool:
    """Whether a Serve instance already runs on the cluster (``serve.status()`` cannot tell: it
    answers an empty status when there is none)."""
    import ray

    return _CONTROLLER in ray.util.list_named_actors(all_namespaces=True)


class ServeFrames:
    """The API's :class:`~aisp.api.cluster_port.FramesPort` on a Serve deployment."""

    def __init__(self, handle: Any, *, replicas: int, owns_serve: bool,
                 metrics: ApiMetrics | None = None) -> None:
        self.handle = handle
        self.replicas = replicas
        self.owns_serve = owns_serve
        self.metrics = metrics
        self.deploy_s = 0.0

    @classmethod
    def deploy(cls, settings: Settings, *, alive_nodes: int,
               metrics: ApiMetrics | None = None) -> ServeFrames:
        """Start Serve (no HTTP proxy) if it is not running, deploy the frames app and wait until
        every replica has built its runtime and prewarmed."""
        from ray import serve

        t0 = time.perf_counter()
        replicas = settings.ray_frames_replicas or max(1, alive_nodes)
        owns = not _serve_running()
        if owns:  # no HTTP proxy: the AISP API is the ingress (serve.run alone would start one per node)
            serve.start(proxy_location="Disabled")
        deployment = serve.deployment(
            FramesReplica,
            name=DEPLOYMENT,
            num_replicas=replicas,
            max_replicas_per_node=1,
            ray_actor_options={"num_cpus": 0},
            max_ongoing_requests=MAX_ONGOING,
            max_queued_requests=MAX_QUEUED,
            health_check_period_s=10,
            graceful_shutdown_timeout_s=5,
        )
        app = deployment.bind(replica_settings(settings), cwd=os.getcwd())
        serve.run(app, name=APP_NAME, route_prefix=None)
        handle = serve.get_deployment_handle(DEPLOYMENT, app_name=APP_NAME)
        frames = cls(handle, replicas=replicas, owns_serve=owns, metrics=metrics)
        frames.deploy_s = time.perf_counter() - t0
        log.info("frames: Serve app %s with %d replica(s) ready in %.1f s",
                 APP_NAME, replicas, frames.deploy_s)
        return frames

    async def process(self, data: bytes, names: Sequence[str], *, annotate: bool,
                      reduced_decode: bool | None) -> FrameAnswer:
        call = self.handle.process.remote(data, list(names), annotate, reduced_decode)
        try:
            reply: ReplicaReply = await asyncio.wait_for(_result(call), CALL_TIMEOUT_S)
        except asyncio.CancelledError:
            call.cancel()  # the client went away: the replica need not finish
            raise
        except Exception as exc:  # noqa: BLE001 - replica died, queue full, timeout: all a 503
            call.cancel()
            from ray.exceptions import RayTaskError

            if isinstance(exc, RayTaskError):  # the replica's code failed: a bug, a 500 (logged)
                raise RuntimeError(f"the frames replica failed: {type(exc).__name__}") from exc
            log.warning("frames: no replica answered: %s: %s", type(exc).__name__, exc)
            raise OverloadedError(
                f"no frames replica could take the request ({type(exc).__name__}); retry shortly",
                retry_after=1, details={"component": "frames"}) from None
        if reply.error is not None:
            raise remote_error(reply.error)
        if self.metrics is not None:
            for name, ms in reply.inference_ms.items():
                self.metrics.observe_inference(name, ms, "serve")
        headers = {**reply.headers, "X-AISP-Replica": f"{reply.node_id}/{reply.pid}"}
        return FrameAnswer(reply.body, reply.media_type, headers)

    def close(self) -> None:
        """Delete the frames app (its replicas release their models); stop Serve if this process
        started it, so no controller outlives the server."""
        from ray import serve

        t0 = time.perf_counter()
        try:
            serve.delete(APP_NAME)
        finally:
            if self.owns_serve:
                serve.shutdown()
        log.info("frames: Serve app %s deleted in %.1f s", APP_NAME, time.perf_counter() - t0)


async def _result(call: Any) -> ReplicaReply:
    return await call
