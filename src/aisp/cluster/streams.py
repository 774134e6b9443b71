""":class:`ClusterStreams`: the streams part of the cluster (``ClusterService.streams``).

The API's :class:`~aisp.api.stream_manager.StreamManager` keeps a stream's definition and desired
state in the store, as on one machine, then calls :meth:`apply` (the store is the truth, this
makes the cluster match it for one stream) and reads the stream through :meth:`view` (a
:class:`~aisp.cluster.remote_stream.RemoteStream`) and :meth:`info`. A
:class:`~aisp.cluster.supervisor.StreamSupervisor` runs :meth:`reconcile` for all of them
periodically.

When the API process shuts down (:meth:`close`), the stream actors keep running by default
(``keep_on_close=True``, what a production cluster wants: they are detached, and a restarted
API finds them by name); ``keep_on_close=False`` stops and kills them (tests, one-off runs).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from aisp.cluster.connection import NAMESPACE, worker_settings
from aisp.cluster.remote_stream import RemoteStream
from aisp.cluster.stream_actor import ACTOR_PREFIX, StreamActor, actor_name, stream_actor_options
from aisp.cluster.supervisor import StreamSupervisor
from aisp.errors import NotFoundError
from aisp.settings import Settings

if TYPE_CHECKING:
    from aisp.store import Store

__all__ = ["ClusterStreams"]

log = logging.getLogger("aisp.cluster")

_actor_class: Any = None


def _remote_class() -> Any:
    global _actor_class
    if _actor_class is None:
        import ray

        _actor_class = ray.remote(StreamActor)
    return _actor_class


class ClusterStreams:
    """Stream actors for the streams in ``store`` (see the module docstring)."""

    def __init__(self, settings: Settings, store: Store, *, interval: float = 5.0, keep_on_close: bool = True,
                 checkpoint_interval: float = 0.5, start_timeout: float = 60.0) -> None:
        self.settings = settings
        self.store = store
        self.keep_on_close = keep_on_close
        self.checkpoint_interval = checkpoint_interval
        self.start_timeout = start_timeout
        self._lock = threading.RLock()  # one change at a time: apply and the supervisor's passes
        self._views: dict[str, RemoteStream] = {}
        self.supervisor = StreamSupervisor(self.reconcile, interval=interval)

    def start(self) -> ClusterStreams:
        self.supervisor.run_once()  # streams that should run and lost their actor while no API ran
        self.supervisor.start()
        return self

    # --- actors ---------------------------------------------------------------------------------
    def actor_ids(self) -> set[str]:
        """Ids of the streams that have an actor on the cluster now."""
        import ray

        out = set()
        for entry in ray.util.list_named_actors(all_namespaces=True):
            name, ns = entry.get("name", ""), entry.get("namespace")
            if ns == NAMESPACE and name.startswith(ACTOR_PREFIX):
                out.add(name[len(ACTOR_PREFIX):])
        return out

    def _handle(self, stream_id: str) -> Any:
        import ray

        try:
            return ray.get_actor(actor_name(stream_id), namespace=NAMESPACE)
        except ValueError:
            return None

    def _spawn(self, spec: dict[str, Any], *, resume: bool) -> Any:
        settings = worker_settings(self.settings)
        handle = _remote_class().options(**stream_actor_options(spec["id"])).remote(
            spec, settings, resume=resume, checkpoint_interval=self.checkpoint_interval)
        log.info("stream %s: actor created (%s)", spec["id"], "resume" if resume else "from frame 0")
        return handle

    def _kill(self, stream_id: str, *, drain: bool = True) -> bool:
        """Stop (commit its checkpoint) and kill the stream's actor; True if there was one. Returns
        once the name is free, so that a new actor of the same stream can be created right after."""
        import ray

        handle = self._handle(stream_id)
        if handle is None:
            return False
        if drain:
            try:
                ray.get(handle.stop.remote(), timeout=self.settings.drain_timeout_seconds + 5.0)
            except Exception as exc:  # noqa: BLE001 - Ray's errors, the timeout, and Ray's bare
                # Exception when it no longer knows the actor (its node just died)
                log.warning("stream %s: stopping its actor failed (%s); killing it", stream_id, exc)
        ray.kill(handle, no_restart=True)
        deadline = time.monotonic() + 10.0
        gone = threading.Event()
        while self._handle(stream_id) is not None and time.monotonic() < deadline:
            gone.wait(0.05)
        with self._lock:
            self._views.pop(stream_id, None)
        log.info("stream %s: actor removed", stream_id)
        return True

    def _wait_ready(self, handle: Any, stream_id: str) -> None:
        import ray

        try:
            ray.get(handle.ping.remote(), timeout=self.start_timeout)
        except Exception as exc:  # noqa: BLE001 - see _kill
            log.warning("stream %s: its actor did not answer in %.0f s: %s", stream_id, self.start_timeout,
                        exc)

    # --- the API's side ------------------------------------------------------------------------
    def apply(self, stream_id: str, *, fresh: bool = False) -> None:
        """Make the cluster match the stored definition of ``stream_id`` now: an actor when it should
        run (``fresh``: a new one from frame 0, the user's start), none when stopped or deleted."""
        with self._lock:
            try:
                rec = self.store.streams.get(stream_id)
            except NotFoundError:
                rec = None
            if rec is None or rec.desired_state != "running":
                self._kill(stream_id)
                if rec is None:
                    self.store.stream_positions.clear(stream_id)
                return
            if fresh:
                self._kill(stream_id)
                self.store.stream_positions.clear(stream_id)
            handle = self._handle(stream_id)
            if handle is None:
                handle = self._spawn({**rec.spec, "id": stream_id}, resume=not fresh)
        self._wait_ready(handle, stream_id)

    def reconcile(self) -> dict[str, list[str]]:
        """One pass over every stream (see :mod:`aisp.cluster.supervisor`)."""
        with self._lock:
            desired = {rec.id: rec for rec in self.store.streams.list()}
            running = {sid for sid, rec in desired.items() if rec.desired_state == "running"}
            actors = self.actor_ids()
            created = sorted(running - actors)
            removed = sorted(actors - running)
            for sid in created:
                self._spawn({**desired[sid].spec, "id": sid}, resume=True)
            for sid in removed:
                self._kill(sid)
        if created or removed:
            log.info("stream supervisor: created %s, removed %s", created, removed)
        return {"created": created, "removed": removed}

    def view(self, stream_id: str) -> RemoteStream:
        """The proxy the routers use (one per stream, so that viewers share its sequence numbers)."""
        with self._lock:
            view = self._views.get(stream_id)
            if view is None:
                view = self._views[stream_id] = RemoteStream(stream_id)
            return view

    def info(self, stream_id: str) -> dict[str, Any]:
        """The actor's state, statistics, spec and node (``state`` stopped and no node without one)."""
        return self.view(stream_id).info()

    def set_zones(self, stream_id: str, zones: list[dict[str, Any]], lines: list[dict[str, Any]],
                  spec: dict[str, Any]) -> None:
        import ray

        handle = self._handle(stream_id)
        if handle is not None:
            ray.get(handle.set_zones.remote(zones, lines, {**spec, "id": stream_id}),
                    timeout=self.start_timeout)
            self.view(stream_id).info(refresh=True)

    def placements(self, timeout: float = 2.0) -> dict[str, str]:
        """``{stream id: node id}`` of every stream actor that answers within ``timeout``."""
        import ray

        refs = {}
        for sid in self.actor_ids():
            handle = self._handle(sid)
            if handle is None:
                continue
            try:
                refs[handle.ping.remote()] = sid
            except Exception:  # noqa: BLE001 - an actor Ray no longer knows (its node just died): not placed
                continue
        if not refs:
            return {}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        out = {}
        for ref in ready:
            try:
                out[refs[ref]] = ray.get(ref)
            except ray.exceptions.RayError:
                continue
        return out

    # --- shutdown -------------------------------------------------------------------------------
    def stop_all(self) -> list[str]:
        """Stop and kill every stream actor of the cluster (the definitions stay in the store)."""
        ids = sorted(self.actor_ids())
        for sid in ids:
            self._kill(sid)
        return ids

    def close(self) -> None:
        self.supervisor.stop()
        if not self.keep_on_close:
            self.stop_all()
