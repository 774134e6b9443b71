"""AISP on Ray: streams, batch tasks and the frames API across the nodes of a cluster.

Only imported when ``AISP_RAY_ADDRESS`` is set (``aisp serve`` builds the app through
:func:`create_cluster_app`); single-machine AISP never imports this package or Ray. See
``docs/cluster.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from aisp.settings import Settings

from aisp.cluster.connection import (
    NAMESPACE,
    STREAM_SLOT,
    NodeInfo,
    RayConnection,
    check_store,
    joins_cluster,
    worker_settings,
)
from aisp.cluster.service import ClusterService

__all__ = [
    "NAMESPACE",
    "STREAM_SLOT",
    "ClusterService",
    "NodeInfo",
    "RayConnection",
    "check_store",
    "create_cluster_app",
    "joins_cluster",
    "worker_settings",
]


def create_cluster_app(settings: Settings, **kwargs: Any) -> FastAPI:
    """The API app with its streams, tasks and frames on the Ray cluster of ``settings.ray_address``."""
    from aisp.api import create_app

    check_store(settings)  # SQLite with a cluster address: refused before anything starts
    return create_app(settings, cluster=ClusterService(settings), **kwargs)
