""":class:`RemoteStream`: a stream actor as the API's routers see a local stream.

The routers of ``/api/streams`` read ``state``, ``last_error``, ``done``, ``stats.snapshot()``,
``analytics_stats()`` and ``spec``, and follow ``latest`` (WebSocket) and ``mjpeg`` with
``wait_next(seq, timeout) -> (seq, value) | None``. This proxy gives them that surface over the
actor: ``wait_next`` is a blocking ``ray.get`` with a timeout (on the routers' watcher thread), so
only the latest result, or the latest JPEG while someone watches, crosses the network.

The proxy follows its actor across restarts on other nodes: the handle stays valid (Ray restarts
the same actor), calls made while it moves time out and return None, and a new incarnation's
sequence numbers (which start again at 1) are shifted past the ones already handed out, so a
viewer's ``seq`` keeps growing and it is never stuck waiting for a number the new actor will take
minutes to reach. The rest (state, statistics) is read with one ``info`` call, cached for
``info_ttl`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from aisp.cluster.connection import NAMESPACE
from aisp.cluster.stream_actor import actor_name
from aisp.pipeline.stats import LatencySummary, StreamStats

__all__ = ["RemoteStream", "ResultView", "stats_from_dict"]

log = logging.getLogger("aisp.cluster")


class ResultView(dict):  # type: ignore[type-arg]
    """A result as the actor sent it (``FrameResult.to_dict()``); ``to_dict`` gives it back."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


def stats_from_dict(data: dict[str, Any]) -> StreamStats:
    if not data:
        return StreamStats()
    fields = dict(data)
    fields["latency_ms"] = LatencySummary(**fields.get("latency_ms", {}))
    fields["inference_ms"] = LatencySummary(**fields.get("inference_ms", {}))
    return StreamStats(**fields)


class _Stats:
    def __init__(self, data: dict[str, Any]) -> None:
        self._stats = stats_from_dict(data)

    def snapshot(self) -> StreamStats:
        return self._stats


class _Spec:
    """What the routers read of ``stream.spec``."""

    def __init__(self, data: dict[str, Any], stream_id: str) -> None:
        from aisp.pipeline.zones import parse_lines, parse_zones

        self.id = stream_id
        self.track = bool(data.get("track"))
        self.zones = parse_zones(data.get("zones") or [])
        self.lines = parse_lines(data.get("lines") or [])
        self.models = list(data.get("models") or [])


class _RemoteLatest:
    """``latest`` or ``mjpeg`` of a remote stream: ``wait_next`` across actor restarts."""

    def __init__(self, owner: RemoteStream, method: str, wrap: Callable[[Any], Any]) -> None:
        self._owner = owner
        self._method = method
        self._wrap = wrap
        self._lock = threading.Lock()
        self._incarnation: str | None = None
        self._base = 0  # added to the actor's seq: the seq handed out before its last restart
        self._top = 0  # the highest seq handed out

    @property
    def incarnation(self) -> str | None:
        """The actor incarnation the last answer came from (a new one after each restart)."""
        with self._lock:
            return self._incarnation

    @property
    def top(self) -> int:
        """The highest sequence number handed out so far."""
        with self._lock:
            return self._top

    def wait_next(self, after_seq: int = 0, timeout: float | None = None) -> tuple[int, Any] | None:
        import ray
        from ray.exceptions import GetTimeoutError, RayError

        wait = 1.0 if timeout is None else max(0.0, timeout)
        with self._lock:
            incarnation, local = self._incarnation, max(0, after_seq - self._base)
        handle = self._owner.handle()
        if handle is None:
            time.sleep(min(wait, 0.2))  # no actor (stopping or not placed yet): let the caller poll
            return None
        try:
            ref = getattr(handle, self._method).remote(local, wait, incarnation)
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception for an actor it no longer knows
            log.debug("stream %s: cannot call %s: %s", self._owner.stream_id, self._method, exc)
            self._owner.forget_handle()
            time.sleep(min(wait, 0.2))
            return None
        try:
            got = ray.get(ref, timeout=wait + 2.0)
        except GetTimeoutError:  # the actor is moving to another node: the wait was the timeout
            return None
        except RayError as exc:  # it died for good, or the call failed: look again, without spinning
            log.debug("stream %s: %s failed: %s", self._owner.stream_id, self._method, type(exc).__name__)
            self._owner.forget_handle(exc)
            time.sleep(min(wait, 0.2))
            return None
        new_incarnation, seq, value = got
        with self._lock:
            if new_incarnation != self._incarnation:
                self._incarnation, self._base = new_incarnation, self._top
            if value is None or seq <= 0:
                return None
            out = self._base + seq
            self._top = max(self._top, out)
        return out, self._wrap(value)


class RemoteStream:
    """The proxy of the actor ``stream:<id>`` (see the module docstring)."""

    def __init__(self, stream_id: str, *, info_ttl: float = 0.5, call_timeout: float = 2.0) -> None:
        self.stream_id = stream_id
        self.id = stream_id
        self._info_ttl = info_ttl
        self._call_timeout = call_timeout
        self._lock = threading.Lock()
        self._handle: Any = None
        self._info: dict[str, Any] = {}
        self._info_at: float | None = None
        self.latest = _RemoteLatest(self, "wait_result", ResultView)
        self.mjpeg = _RemoteLatest(self, "wait_jpeg", bytes)

    # --- the actor ------------------------------------------------------------------------------
    def handle(self) -> Any:
        with self._lock:
            if self._handle is not None:
                return self._handle
        import ray

        try:
            handle = ray.get_actor(actor_name(self.stream_id), namespace=NAMESPACE)
        except ValueError:  # not (yet, or any more) on the cluster
            return None
        with self._lock:
            self._handle = handle
        return handle

    def forget_handle(self, exc: BaseException | None = None) -> None:
        """Look the actor up again next time when it died for good (killed and recreated)."""
        from ray.exceptions import ActorDiedError

        if exc is None or isinstance(exc, ActorDiedError):
            with self._lock:
                self._handle = None

    def info(self, *, refresh: bool = False) -> dict[str, Any]:
        """The actor's ``info()`` (cached ``info_ttl`` s). While the actor moves: the last one read,
        with state ``reconnecting`` (the stream is reconnecting on another node)."""
        now = time.monotonic()
        with self._lock:
            fresh = self._info_at is not None and now - self._info_at < self._info_ttl
            if fresh and not refresh:
                return dict(self._info)
        handle = self.handle()
        if handle is None:
            return {"state": "stopped", "node_id": None}
        import ray
        from ray.exceptions import GetTimeoutError, RayError

        try:
            info = ray.get(handle.info.remote(), timeout=self._call_timeout)
        except Exception as exc:  # noqa: BLE001 - Ray's errors, the timeout, or a bare Exception (an actor Ray forgot)
            self.forget_handle(exc if isinstance(exc, (GetTimeoutError, RayError)) else None)
            with self._lock:
                stale = dict(self._info)
            return {**stale, "state": "reconnecting", "last_error": "the stream's node was lost; restarting"}
        with self._lock:
            self._info, self._info_at = info, time.monotonic()
        return dict(info)

    # --- the surface of a local stream ----------------------------------------------------------
    @property
    def state(self) -> str:
        return str(self.info().get("state") or "starting")

    @property
    def last_error(self) -> str | None:
        return self.info().get("last_error")

    @property
    def done(self) -> bool:
        return self.state in ("stopped", "failed")

    @property
    def node_id(self) -> str | None:
        return self.info().get("node_id")

    @property
    def stats(self) -> _Stats:
        return _Stats(self.info().get("stats") or {})

    def analytics_stats(self) -> dict[str, Any]:
        return dict(self.info().get("analytics") or {})

    @property
    def spec(self) -> _Spec:
        return _Spec(self.info().get("spec") or {}, self.stream_id)

    def __repr__(self) -> str:
        return f"RemoteStream({self.stream_id!r})"
