""":class:`StreamSupervisor`: reconciles the desired streams in the store with the running actors.

The store's ``streams`` table says which streams should run (``desired_state``). A pass
(:meth:`ClusterStreams.reconcile <aisp.cluster.streams.ClusterStreams.reconcile>`) creates the
actor of every stream that should run and has none (resuming from its stored position), and stops
and kills the actor of every stream that was stopped or deleted. It runs every ``interval``
seconds on a thread of the API process, and on demand (:meth:`trigger`; the API applies one
stream's change directly, so a ``POST /api/streams`` answers with the stream placed).

Why a thread in the API process and not a detached ``aisp:supervisor`` actor: the API is the only
writer of the desired state, so it knows when to reconcile; a node's loss is handled by Ray
itself (``max_restarts=-1`` restarts the actors elsewhere, no supervisor needed); and a pass is a
store query plus one ``list_named_actors`` call (a few milliseconds, measured in
``docs/cluster.md``). An actor would need a database connection, a node slot and a restart policy
of its own, and the API would still have to call it and wait. With the API down, running streams
keep running and moving; only changes wait for it. Several API processes may each run one:
actors are created with ``get_if_exists`` and a pass is idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["StreamSupervisor"]

log = logging.getLogger("aisp.cluster")


class StreamSupervisor:
    """Runs ``reconcile()`` every ``interval`` seconds and when triggered, on one daemon thread."""

    def __init__(self, reconcile: Callable[[], Any], *, interval: float = 5.0) -> None:
        self._reconcile = reconcile
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.last_pass_ms: float | None = None
        self.last_error: str | None = None

    def start(self) -> StreamSupervisor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="aisp-stream-supervisor", daemon=True)
            self._thread.start()
        return self

    def trigger(self) -> None:
        """Run a pass now (asynchronously)."""
        self._wake.set()

    def run_once(self) -> Any:
        started = time.perf_counter()
        try:
            result = self._reconcile()
            self.last_error = None
            return result
        except Exception as exc:  # the store or the cluster is briefly away: the next pass retries
            self.last_error = str(exc)
            log.warning("stream supervisor: pass failed: %s", exc)
            return None
        finally:
            self.passes += 1
            self.last_pass_ms = (time.perf_counter() - started) * 1000.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.run_once()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
