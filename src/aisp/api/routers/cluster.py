"""``GET /api/cluster``: the Ray cluster's nodes, and which streams and tasks run where.

A read like the others (viewer keys may call it). Without a cluster (``AISP_RAY_ADDRESS`` empty)
it answers **404 NOT_FOUND** with ``details.setting = "ray_address"``: the resource does not exist
on a single-machine server, and a client (the dashboard) tells "no cluster" from "cluster down"
by the status alone. While the cluster is still connecting, or could not be reached, it answers
**503 CLUSTER_ERROR** with the start-up step's state (``/ready`` says the same).

The body comes from the cluster service (:meth:`aisp.api.cluster_port.ClusterPort.describe`),
which asks Ray (a blocking call: run off the event loop).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request

from aisp.api.context import AppContext
from aisp.api.reasons import public_reason
from aisp.api.schemas import ClusterResponse, error_responses
from aisp.errors import ClusterError, NotFoundError

__all__ = ["router"]

router = APIRouter(tags=["cluster"])


@router.get(
    "/api/cluster",
    response_model=ClusterResponse,
    summary="The Ray cluster: nodes (alive, resources) and the streams and tasks on each.",
    responses=error_responses(404),
)
async def cluster(request: Request) -> Any:
    ctx: AppContext = request.app.state.ctx
    port = ctx.cluster
    if port is None:
        raise NotFoundError(
            "this server runs on one machine: no Ray cluster is configured (setting ray_address, "
            "AISP_RAY_ADDRESS; see docs/cluster.md)",
            kind="cluster", details={"setting": "ray_address"},
        )
    state = ctx.components.get("cluster", "pending")
    if state != "done":
        error = ctx.errors.get("cluster")  # its type only: the text may hold the Ray address
        why = public_reason(error) if error else "still connecting"
        raise ClusterError(
            f"the cluster is not available ({state}: {why}); "
            "retry shortly",
            details={"component": "cluster", "state": state, "retry_after": 1},
        )
    return await anyio.to_thread.run_sync(port.describe)
