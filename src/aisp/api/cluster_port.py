"""What the API needs from a cluster (``AISP_RAY_ADDRESS`` set), as a protocol.

The API never imports Ray or :mod:`aisp.cluster`: ``aisp serve`` (and the tests) build an
:class:`aisp.cluster.ClusterService` and hand it to :func:`aisp.api.create_app` as ``cluster=``. The
lifespan opens it after the store (it needs the shared database) and before the streams are
restored, and closes it before the runtime. With no cluster, ``AppContext.cluster`` is None and
every route works on this machine alone.

Each part is None until the service has it:

- ``streams``: streams run as Ray actors (the stream manager places them there;
  :class:`ClusterStreamsPort`);
- ``tasks``: batch tasks split over the nodes;
- ``frames``: ``POST /api/frames/process`` served by a Ray Serve deployment (a
  :class:`FramesPort`). The API keeps auth, the gate, the upload limit, the model-name check and
  the image's header check (format, pixel count, truncation), then hands the encoded bytes to
  :meth:`FramesPort.process`; decoding and inference happen on a replica. None: this process
  answers (``AISP_RAY_FRAMES=local``, or the deployment is not up yet).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aisp.api.context import AppContext
    from aisp.api.frame_processing import FrameAnswer
    from aisp.pipeline.job import JobSummary


__all__ = ["ClusterPort", "ClusterStreamsPort", "ClusterTasksPort", "FramesPort"]



class ClusterStreamsPort(Protocol):
    """``ClusterPort.streams``: streams run as actors on the cluster's nodes.

    The store holds each stream's definition and desired state, as on one machine; the stream
    manager saves it there, then calls :meth:`apply` to make the cluster match. What the routers
    read of a stream (``state``, ``last_error``, ``done``, ``stats.snapshot()``,
    ``analytics_stats()``, ``spec``, ``latest``/``mjpeg`` with ``wait_next(seq, timeout)``,
    ``node_id``) comes from :meth:`view`.
    """

    def apply(self, stream_id: str, *, fresh: bool = False) -> None:
        """Match the stored definition now: an actor if it should run (``fresh``: started again from
        frame 0), none if it is stopped or deleted. Returns once the actor answers."""

    def view(self, stream_id: str) -> Any:
        """The stream as the routers read it (one object per stream; follows the actor's moves)."""

    def info(self, stream_id: str) -> dict[str, Any]:
        """``state``, ``last_error``, ``stats``, ``analytics``, ``spec`` and ``node_id`` in one call."""

    def set_zones(self, stream_id: str, zones: list[dict[str, Any]], lines: list[dict[str, Any]],
                  spec: dict[str, Any]) -> None:
        """Apply new zones and lines to the running stream (the store already has them)."""

    def reconcile(self) -> dict[str, list[str]]:
        """One pass of the supervisor over every stream: ``{"created": [...], "removed": [...]}``."""

    def close(self) -> None:
        """Stop the supervisor (and the actors, unless they are kept: the default)."""

class ClusterTasksPort(Protocol):
    """Batch tasks split over the nodes (``ClusterPort.tasks``); the task runner's side.

    The runner keeps its queue, its store updates, its cancel and retry, and the folding and
    joining of the outputs; only the running of a task's frames goes to the cluster.
    """

    def accepts(self, source: str) -> bool:
        """True when the cluster splits this source (a video file the source policy allows)."""

    def run_task(self, task_id: str, source: str, models: list[str], *, task_dir: Path, start: int = 0,
                 every: int = 1, max_fps: float | None = None, video: bool = True,
                 cancel: threading.Event | None = None,
                 on_progress: Callable[[int, int | None, float], None] | None = None,
                 stall_timeout: float | None = None) -> JobSummary:
        """Process frames ``start..`` over the nodes; write this attempt's events part and video
        segments into ``task_dir`` in frame order, as a local attempt does. ``on_progress`` gets
        the frames of the finished ranges. Raises ``SourceError`` when the source cannot be read."""

    def by_node(self) -> dict[str, list[str]]:
        """node id -> ids of the tasks running ranges there."""

    def close(self) -> None:
        """Stop the workers."""


class FramesPort(Protocol):
    async def process(self, data: bytes, names: Sequence[str], *, annotate: bool,
                      reduced_decode: bool | None) -> FrameAnswer:
        """The answer of ``POST /api/frames/process`` for these checked names and image bytes, from
        a replica. Raises :class:`aisp.errors.AISPError` (the replica's own error, same status and
        body as on one machine; 503 ``OVERLOADED`` when no replica can take it)."""
        ...


class ClusterPort(Protocol):
    streams: Any
    tasks: Any
    frames: Any

    def open(self, ctx: AppContext) -> None:
        """Connect (``ray.init``), check the store, start the parts. Raises on failure."""

    def close(self) -> None:
        """Stop what this process started on the cluster; disconnect."""

    def describe(self) -> dict[str, Any]:
        """The body of ``GET /api/cluster``: ``{"nodes": [...]}``."""
