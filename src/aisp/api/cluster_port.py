"""What the API needs from a cluster (``AISP_RAY_ADDRESS`` set), as a protocol.

The API never imports Ray or :mod:`aisp.cluster`: ``aisp serve`` (and the tests) build an
:class:`aisp.cluster.ClusterService` and hand it to :func:`aisp.api.create_app` as ``cluster=``. The
lifespan opens it after the store (it needs the shared database) and before the streams are
restored, and closes it before the runtime. With no cluster, ``AppContext.cluster`` is None and
every route works on this machine alone.

Each part is None until the service has it:

- ``streams``: streams run as Ray actors (the stream manager places them there);
- ``tasks``: batch tasks split over the nodes;
- ``frames``: ``POST /api/frames/process`` served by a Ray Serve deployment (a
  :class:`FramesPort`). The API keeps auth, the gate, the upload limit, the model-name check and
  the image's header check (format, pixel count, truncation), then hands the encoded bytes to
  :meth:`FramesPort.process`; decoding and inference happen on a replica. None: this process
  answers (``AISP_RAY_FRAMES=local``, or the deployment is not up yet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aisp.api.context import AppContext
    from aisp.api.frame_processing import FrameAnswer

__all__ = ["ClusterPort", "FramesPort"]


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
