"""A lean call path into a ``mediapipe.solutions`` graph, beside ``SolutionBase.process()``.

``process()`` builds a new namedtuple *class* on every call, copies the image into the input
packet and reads every output stream, even those AISP never uses (the costs are measured in
docs/PERFORMANCE.md). This
runner drives the same ``CalculatorGraph`` the solution built, the same way ``process()`` does
(one image packet at the next simulated 30 fps timestamp, ``wait_until_idle()``, outputs read
with the solution's own ``_get_packet_content``), so outputs are identical, but:

* the image packet references the caller's C-contiguous uint8 RGB frame instead of copying it
  (through a private read-only view, so ``packet_creator`` takes its documented reference mode);
* only the output streams the adapter converts are read, into one reused namedtuple class;
* proto streams the adapter names in ``serialized`` come back as
  :class:`aisp.models._protobuf.Serialized` bytes, straight from the packet (the converters read
  those bytes directly), instead of being parsed into Python protos that the converters would
  serialise again. A packet of another proto type than expected is read with the usual getter.

Reference mode is safe while the graph lets go of the input packet before ``wait_until_idle()``
returns: the packet's deleter drops its reference to the view on a graph thread without the GIL,
so nothing else may touch that view's reference count meanwhile. That is why each call gets its
own view that only this runner holds. After each call the runner checks that the graph let go;
if it did not (a graph that keeps the frame, e.g. for tracking), that view is kept alive until
:meth:`release` (after the graph is closed) and every later call copies, as ``process()`` does.
Graphs in tracking mode (``static_image_mode=False``) copy from the start.

:func:`make_runner` returns None when the solution's internals are not what this expects (another
MediaPipe version): the adapter then keeps calling ``process()``.
"""

from __future__ import annotations

import collections
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from aisp.models._protobuf import Serialized

logger = logging.getLogger("aisp.models")

__all__ = ["GraphRunner", "make_runner"]

#: What ``SolutionBase.process()`` adds to the timestamp per call (a simulated 30 fps video).
TIMESTAMP_STEP_US = 33333


class GraphRunner:
    """Feeds one RGB frame to a solution's graph and returns the chosen output streams."""

    def __init__(
        self,
        solution: Any,
        input_stream: str,
        outputs: tuple[str, ...],
        *,
        reference: bool,
        readers: dict[str, Callable[[Any], Any]],
        create_packet: Any,
        srgb: Any,
    ) -> None:
        self._solution = solution
        self._graph = solution._graph
        self._graph_outputs: dict[str, Any] = solution._graph_outputs
        self._readers = [(name, readers[name]) for name in outputs]
        self._input_stream = input_stream
        self._create = create_packet
        self._srgb = srgb
        self.reference = reference
        self._kept: list[np.ndarray] = []
        self._outputs_cls = collections.namedtuple("SolutionOutputs", outputs)  # type: ignore[misc]

    def __call__(self, frame: np.ndarray) -> Any:
        """``frame``: uint8 (H, W, 3) RGB. Raises RuntimeError on a graph error, as process() does."""
        solution = self._solution
        timestamp = solution._simulated_timestamp + TIMESTAMP_STEP_US
        solution._simulated_timestamp = timestamp  # shared, so a later process() stays monotonic
        self._graph_outputs.clear()
        if self.reference and frame.flags.c_contiguous and frame.dtype == np.uint8:
            view = frame.view()
            view.flags.writeable = False
            try:
                self._graph.add_packet_to_input_stream(
                    stream=self._input_stream,
                    packet=self._create(view, image_format=self._srgb).at(timestamp),
                )
                self._graph.wait_until_idle()
            except BaseException:
                self._keep(view)  # a failed graph may still hold the packet: never free it early
                raise
            # The graph is idle: no graph thread touches the packet now. Two references left
            # (``view`` and getrefcount's argument) means the graph let go of the frame.
            if sys.getrefcount(view) > 2:
                self._keep(view)
        else:
            self._graph.add_packet_to_input_stream(
                stream=self._input_stream,
                packet=self._create(frame, image_format=self._srgb, copy=True).at(timestamp),
            )
            self._graph.wait_until_idle()
        found = self._graph_outputs
        return self._outputs_cls(
            *[read(found[name]) if name in found else None for name, read in self._readers]
        )

    def _keep(self, view: np.ndarray) -> None:
        self._kept.append(view)
        if self.reference:
            self.reference = False
            logger.debug("mediapipe graph keeps its input frame: copying frames from now on")

    def release(self) -> None:
        """Drop views the graph held on to; call only after the graph is closed."""
        self._kept.clear()


def _reader(solution: Any, kind: Any, proto_type: str | None, types: Any) -> Callable[[Any], Any]:
    """How one output packet is read: ``process()``'s getter, or the serialised proto(s)."""
    from mediapipe.python._framework_bindings import _packet_getter as pg

    get = solution._get_packet_content
    if proto_type is None or kind not in (types.PROTO, types.PROTO_LIST):
        return lambda packet: get(kind, packet)
    if kind == types.PROTO:

        def read_one(packet: Any) -> Any:
            if packet.is_empty():
                return None
            if pg._get_proto_type_name(packet) != proto_type:
                return get(kind, packet)
            return Serialized(pg._get_serialized_proto(packet))

        return read_one

    def read_list(packet: Any) -> Any:
        if packet.is_empty():
            return None
        if pg._get_proto_vector_size(packet) == 0:
            return []
        if pg._get_proto_vector_element_type_name(packet) != proto_type:
            return get(kind, packet)
        return [Serialized(b) for b in pg._get_serialized_proto_list(packet)]

    return read_list


def make_runner(
    solution: Any,
    outputs: tuple[str, ...],
    *,
    reference: bool = True,
    serialized: Mapping[str, str] | None = None,
) -> GraphRunner | None:
    """A :class:`GraphRunner` over ``solution``'s graph, or None (with a debug log line) when its
    internals are not those of ``SolutionBase`` in mediapipe 0.10.x.

    ``serialized`` maps output streams to the full proto type name expected on them (e.g.
    ``"mediapipe.Detection"``); those come back as :class:`Serialized` bytes.
    """
    try:
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import _packet_getter as pg
        from mediapipe.python._framework_bindings import image_frame
        from mediapipe.python.solution_base import PacketDataType

        inputs = solution._input_stream_type_info
        types = solution._output_stream_type_info
        if len(inputs) != 1:
            raise ValueError(f"expected one input stream, got {list(inputs)}")
        ((input_stream, input_type),) = inputs.items()
        # process() makes the packet with create_<type>(data, image_format=SRGB): the same here.
        creators = {
            PacketDataType.IMAGE_FRAME: packet_creator.create_image_frame,
            PacketDataType.IMAGE: packet_creator.create_image,
        }
        if input_type not in creators:
            raise ValueError(f"expected an image input stream, got {input_type}")
        missing = [name for name in outputs if name not in types]
        if missing:
            raise ValueError(f"output streams {missing} not among {list(types)}")
        if not isinstance(solution._graph_outputs, dict) or not isinstance(
            solution._simulated_timestamp, int
        ):
            raise ValueError("unexpected SolutionBase state")
        for attr in ("add_packet_to_input_stream", "wait_until_idle"):
            if not callable(getattr(solution._graph, attr, None)):
                raise ValueError(f"CalculatorGraph has no {attr}()")
        if not callable(getattr(solution, "_get_packet_content", None)):
            raise ValueError("SolutionBase has no _get_packet_content()")
        serialized = dict(serialized or {})
        getters = (
            "_get_proto_type_name",
            "_get_serialized_proto",
            "_get_proto_vector_size",
            "_get_proto_vector_element_type_name",
            "_get_serialized_proto_list",
        )
        if serialized and not all(callable(getattr(pg, g, None)) for g in getters):
            logger.debug("mediapipe packet getters for serialised protos missing; parsing protos")
            serialized = {}
        readers = {
            name: _reader(solution, types[name], serialized.get(name), PacketDataType) for name in outputs
        }
        return GraphRunner(
            solution,
            input_stream,
            outputs,
            reference=reference,
            readers=readers,
            create_packet=creators[input_type],
            srgb=image_frame.ImageFormat.SRGB,
        )
    except Exception as exc:  # any surprise in another mediapipe version: use process()
        logger.debug(
            "mediapipe lean call path unavailable (%s: %s); using process()", type(exc).__name__, exc
        )
        return None
