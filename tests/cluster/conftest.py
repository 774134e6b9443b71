"""A real multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``), for the cluster
tests. Never ``ray stop``: it would kill every Ray process on the host, other users' too.

``ray_cluster`` is module-scoped: a head and two more nodes, one CPU and two ``stream_slot`` each,
with this process connected as the driver (namespace ``aisp``). A test that removes a node adds a
replacement (``add_node``) so the next test sees three nodes again.
"""

from __future__ import annotations

import os

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")

NODE_ARGS = {"num_cpus": 1, "resources": {"stream_slot": 2}, "object_store_memory": 80 * 1024 * 1024}


def start_cluster(nodes: int = 3):
    """A connected ``Cluster`` of ``nodes`` nodes (the head included)."""
    from ray.cluster_utils import Cluster

    from aisp.cluster import NAMESPACE

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token file on a test machine
    cluster = Cluster(initialize_head=True, head_node_args={**NODE_ARGS, "include_dashboard": False})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**NODE_ARGS)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster) -> None:
    try:
        ray.shutdown()
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def ray_cluster():
    cluster = start_cluster(3)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
