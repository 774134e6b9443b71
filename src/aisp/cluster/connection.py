"""Joining (or starting) a Ray cluster, from ``AISP_RAY_ADDRESS``, and what the driver sees of it.

``AISP_RAY_ADDRESS``:

- empty: no Ray. Nothing under :mod:`aisp.cluster` is imported and Ray is never imported.
- ``local``: start a one-node Ray in this process (``ray.init``) with ``stream_slot`` resources.
- ``auto``, ``host:port`` or ``ray://host:port``: join that cluster (``ray start --head`` ...).

Everything AISP places on the cluster lives in the ``aisp`` namespace. A cluster of more than one
node needs one database that every node reaches: :func:`check_store` refuses SQLite there, with an
error that names ``AISP_DATABASE_URL``.

Each node builds its own services from the driver's :class:`~aisp.settings.Settings` (see
:func:`worker_settings`), never from process globals of the driver.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aisp._lazy import require
from aisp.errors import ClusterError, ConfigError
from aisp.settings import Settings

__all__ = [
    "NAMESPACE",
    "STREAM_SLOT",
    "NodeInfo",
    "RayConnection",
    "check_store",
    "joins_cluster",
    "local_stream_slots",
    "probe_address",
    "worker_settings",
]

log = logging.getLogger("aisp.cluster")

#: the Ray namespace of every named actor and deployment of AISP
NAMESPACE = "aisp"
#: the custom resource one stream actor takes: a node declares how many streams it runs
STREAM_SLOT = "stream_slot"
#: streams per core a local Ray declares by default (a 2-core machine runs ~6 camera streams)
_STREAMS_PER_CORE = 3
#: how long the cluster's address may take to accept a TCP connection before ``ray.init``: Ray's
#: own connect retries an unreachable GCS for minutes, which would hold the "cluster" start-up step
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class NodeInfo:
    """One Ray node as ``GET /api/cluster`` shows it (streams and tasks are added there)."""

    node_id: str
    address: str
    alive: bool
    resources: dict[str, float] = field(default_factory=dict)
    is_head: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "address": self.address, "alive": self.alive,
                "resources": dict(self.resources), "is_head": self.is_head}


def joins_cluster(settings: Settings) -> bool:
    """True when the address joins a cluster that may have other machines (not ``local``)."""
    return settings.ray_address not in ("", "local")


def _is_sqlite(settings: Settings) -> bool:
    return settings.resolved_database_url.startswith("sqlite")


def check_store(settings: Settings, *, alive_nodes: int | None = None) -> None:
    """Refuse SQLite in multi-node mode: when joining a cluster, or when more than one node is alive.

    Every node writes events and task progress to the one database; a SQLite file on the driver's
    disk is not reachable from the others.
    """
    if not settings.ray_address or not _is_sqlite(settings):
        return
    if joins_cluster(settings) or (alive_nodes or 0) > 1:
        why = (f"{alive_nodes} nodes are alive" if (alive_nodes or 0) > 1
               else f"AISP_RAY_ADDRESS={settings.ray_address!r} joins a cluster")
        raise ConfigError(
            f"multi-node mode needs a shared database ({why}), and SQLite is a file on one machine: "
            "set AISP_DATABASE_URL to a PostgreSQL URL every node can reach "
            "(postgresql+psycopg://user:pass@host/db), or use AISP_RAY_ADDRESS=local on one machine.",
            field="database_url",
            value="sqlite",
            expected="a PostgreSQL URL when AISP_RAY_ADDRESS joins a cluster",
        )


def _bootstrap_address(address: str) -> str | None:
    """``host:port`` of a cluster address; ``auto`` as Ray resolves it (``RAY_ADDRESS``, then the
    cluster last started on this machine), None when Ray cannot tell (``ray.init`` then says why)."""
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            return canonicalize_bootstrap_address(address)
        except Exception:  # noqa: BLE001 - a private helper: without it, no probe
            return None
    return address[len("ray://"):] if address.startswith("ray://") else address


def probe_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`~aisp.errors.ClusterError` when the cluster's port does not accept a TCP
    connection within ``timeout`` (Ray itself would retry for minutes). A loopback host is tried
    on this machine's address too, as Ray does (``ray start --head`` binds to the node's IP)."""
    target = _bootstrap_address(address)
    if not target:
        return
    host, _, port = target.rpartition(":")
    hosts = [host.strip("[]")]
    if hosts[0] in ("localhost", "127.0.0.1", "::1"):
        try:
            from ray.util import get_node_ip_address

            hosts.append(get_node_ip_address())
        except Exception:  # noqa: BLE001 - no other address to try
            pass
    errors = []
    for h in hosts:
        try:
            with socket.create_connection((h, int(port)), timeout=timeout):
                return
        except OSError as exc:
            errors.append(f"{h}:{port}: {exc.strerror or type(exc).__name__}")
    raise ClusterError(
        f"cannot reach the Ray cluster at AISP_RAY_ADDRESS={address!r} ({'; '.join(errors)}, "
        f"within {timeout:g} s): start it with `ray start --head`, or fix AISP_RAY_ADDRESS",
        address=address,
    )


def local_stream_slots(settings: Settings, cpus: int) -> int:
    return settings.ray_stream_slots or max(1, cpus) * _STREAMS_PER_CORE


def worker_settings(settings: Settings, **overrides: Any) -> Settings:
    """The settings a node builds its services from: the driver's, without Ray (a node never joins
    a cluster itself), plus ``overrides``. Ray pickles the returned object to the node."""
    return settings.model_copy(update={"ray_address": "", **overrides})


class RayConnection:
    """This process's connection to the cluster (``ray.init``); :meth:`close` disconnects.

    Only one exists per process (Ray's driver is process-global). When Ray is already initialised
    (a test that started a ``ray.cluster_utils.Cluster`` and connected), that connection is reused
    and :meth:`close` leaves it open.
    """

    def __init__(self, settings: Settings, *, owned: bool, connect_s: float,
                 keeper: _LocalRayKeeper | None = None) -> None:
        self.settings = settings
        self.owned = owned
        self.connect_s = connect_s
        self._keeper = keeper

    @classmethod
    def connect(cls, settings: Settings) -> RayConnection:
        if not settings.ray_address:
            raise ConfigError("AISP_RAY_ADDRESS is empty: there is no cluster to connect to",
                              field="ray_address", value="", expected="local, auto, host:port or ray://host:port")
        # Ray's driver installs absl's failure signal handler for SIGTERM when ray.init runs off the
        # main thread (it does here: on the API's start-up thread), and that handler arms a 3 s
        # alarm that aborts the process: `aisp serve` died with SIGABRT in the middle of its
        # graceful shutdown (Serve app deletion, stream stops, store flush). Read when ray is
        # first imported, so set before.
        os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
        ray = require("ray")
        started = time.perf_counter()
        if ray.is_initialized():
            conn = cls(settings, owned=False, connect_s=0.0)
        else:
            kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False,
                                      "configure_logging": False}
            if settings.ray_address == "local":
                cpus = os.cpu_count() or 1
                # address="local": a new Ray of this process's own, even when another Ray runs on
                # this machine (ray.init() without an address would join that one, and refuse
                # num_cpus there)
                kwargs.update(address="local", num_cpus=cpus, include_dashboard=False,
                              resources={STREAM_SLOT: local_stream_slots(settings, cpus)})
                keeper: _LocalRayKeeper | None = _LocalRayKeeper.start(kwargs)
            else:
                kwargs["address"] = settings.ray_address
                probe_address(settings.ray_address)
                ray.init(**kwargs)
                keeper = None
            conn = cls(settings, owned=True, connect_s=time.perf_counter() - started, keeper=keeper)
        check_store(settings, alive_nodes=sum(1 for n in conn.nodes() if n.alive))
        log.info("ray: connected to %s in %.1f s (%d nodes alive)",
                 settings.ray_address, conn.connect_s, sum(1 for n in conn.nodes() if n.alive))
        return conn

    def nodes(self) -> list[NodeInfo]:
        """Every node Ray knows (dead ones too, with ``alive`` false), head first."""
        ray = require("ray")
        out = []
        for n in ray.nodes():
            resources = {k: float(v) for k, v in (n.get("Resources") or {}).items()
                         if not k.startswith("node:")}
            out.append(NodeInfo(
                node_id=n["NodeID"],
                address=str(n.get("NodeManagerAddress", "")),
                alive=bool(n.get("Alive")),
                resources=resources,
                is_head=any(k == "node:__internal_head__" for k in (n.get("Resources") or {})),
            ))
        return sorted(out, key=lambda n: (not n.is_head, not n.alive, n.node_id))

    def close(self) -> None:
        if self.owned:
            ray = require("ray")
            if ray.is_initialized():
                ray.shutdown()
            self.owned = False
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None


class _LocalRayKeeper:
    """The thread that started a local Ray (``AISP_RAY_ADDRESS=local``), kept alive until close.

    Ray starts its GCS and raylet with ``PR_SET_PDEATHSIG=SIGKILL``, and Linux sends that signal
    when the *thread* that forked them exits, not the process. The API connects on its short-lived
    start-up thread: a local Ray started there was killed the moment start-up finished (every later
    call then waited 60 s for a GCS that was gone and the process aborted). So ``ray.init`` runs on
    this thread, which then waits until :meth:`stop`.
    """

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self._kwargs = kwargs
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="aisp-ray-local", daemon=True)

    @classmethod
    def start(cls, kwargs: dict[str, Any]) -> _LocalRayKeeper:
        keeper = cls(kwargs)
        keeper._thread.start()
        keeper._ready.wait()
        if keeper._error is not None:
            raise keeper._error
        return keeper

    def _run(self) -> None:
        try:
            require("ray").init(**self._kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of start()
            self._error = exc
            return
        finally:
            self._ready.set()
        self._stopping.wait()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5.0)
