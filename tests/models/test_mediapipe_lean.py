"""The lean call path into MediaPipe graphs (aisp.models._mp_graph): same outputs as process()."""

from __future__ import annotations

import logging
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from aisp.models import ModelRegistry

mp = pytest.importorskip("mediapipe")

#: Models built fresh for each test (no cache), with the default ModelConfig.
UNCACHED = ModelRegistry()

MODELS = ["face_detection", "face_detection_full", "face_mesh", "selfie_segmentation", "pose", "hands"]
RAW = {
    "face_detection": lambda: mp.solutions.face_detection.FaceDetection,
    "face_detection_full": lambda: mp.solutions.face_detection.FaceDetection,
    "face_mesh": lambda: mp.solutions.face_mesh.FaceMesh,
    "selfie_segmentation": lambda: mp.solutions.selfie_segmentation.SelfieSegmentation,
    "pose": lambda: mp.solutions.pose.Pose,
    "hands": lambda: mp.solutions.hands.Hands,
}


def _frames(photos: dict[str, np.ndarray]) -> list[np.ndarray]:
    astro = photos["astronaut"]
    return [
        astro,
        photos["camera"],
        photos["coffee"],
        astro[:, ::-1],  # a non-contiguous view: checked and copied once, then referenced
        astro[40:400, 60:500],  # a crop: non-contiguous too
        np.ascontiguousarray(astro[::2, ::2]),
    ]


_FIELDS = ("xyxy", "confidence", "class_id", "keypoints", "points", "visibility", "scores", "data")


def _assert_same(ours: Any, expected: dict[str, Any]) -> None:
    """Every array AISP returns is bit-identical to the one converted from process()'s output."""
    for key, exp in expected.items():
        got = getattr(ours, key)
        assert type(got) is type(exp), key
        for field in _FIELDS:
            a, b = getattr(got, field, None), getattr(exp, field, None)
            assert (a is None) == (b is None), (key, field)
            if a is not None:
                assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b), (key, field)
        assert getattr(got, "labels", None) == getattr(exp, "labels", None), key


@pytest.mark.parametrize("name", MODELS)
def test_lean_path_matches_process_exactly(photos, name: str) -> None:
    from aisp.models._frame_check import check_frame

    model = UNCACHED.load(name, cache=False)
    try:
        assert model._runner is not None and model._runner.reference
        with RAW[name]()(**model.options) as raw:
            for frame in _frames(photos):
                f = check_frame(frame)
                expected = model._convert(raw.process(f), f)
                _assert_same(model.infer(frame), expected)
        assert model._runner.reference and not model._runner._kept  # the graph let go of each frame
    finally:
        model.close()


def test_face_detection_lean_path_finds_faces(photos) -> None:
    """Not only equal to process(): the parity above compares real findings."""
    model = UNCACHED.load("face_detection", cache=False)
    try:
        assert model.infer(photos["astronaut"]).num_detections == 1
        assert model.infer(photos["camera"]).num_detections == 1
    finally:
        model.close()


def test_caller_frame_untouched_and_not_retained(photos) -> None:
    model = UNCACHED.load("selfie_segmentation", cache=False)
    try:
        frame = photos["astronaut"].copy()
        before = frame.copy()
        refs = sys.getrefcount(frame)
        first = model.infer(frame).mask.data.copy()
        for _ in range(3):
            model.infer(frame)
        assert np.array_equal(frame, before) and frame.flags.writeable
        assert sys.getrefcount(frame) == refs  # no reference left behind in the graph
        frame[:] = 0  # the caller may reuse its buffer; the next result follows the new pixels
        assert not np.array_equal(model.infer(frame).mask.data, first)
    finally:
        model.close()


def test_process_and_lean_path_share_timestamps(photos) -> None:
    """Mixing the two paths keeps timestamps increasing (the graph refuses a step back)."""
    model = UNCACHED.load("face_detection", cache=False)
    try:
        frame = photos["astronaut"]
        t0 = model._solution._simulated_timestamp
        model.infer(frame)
        assert model._solution._simulated_timestamp == t0 + 33333
        assert model._solution.process(frame).detections
        assert model.infer(frame).num_detections == 1
        assert model._solution._simulated_timestamp == t0 + 3 * 33333
    finally:
        model.close()


def test_tracking_mode_copies_frames_and_matches_raw(photos) -> None:
    """A graph that carries state across frames gets its own copy of each, as process() gives it."""
    from aisp.models.mediapipe import PoseModel

    model = PoseModel(static_image_mode=False)
    try:
        assert model._runner is not None and not model._runner.reference
        frames = [photos["astronaut"], photos["astronaut"][:, ::-1].copy(), photos["astronaut"]]
        with mp.solutions.pose.Pose(**model.options) as raw:
            raw.process(np.full((96, 128, 3), 127, np.uint8))  # the adapter's warm-up frame
            for frame in frames:
                _assert_same(model.infer(frame), model._convert(raw.process(frame), frame))
    finally:
        model.close()


def test_falls_back_to_process_when_lean_path_cannot_be_set_up(photos, caplog) -> None:
    from aisp.models.mediapipe import FaceDetectionModel

    class Odd(FaceDetectionModel):
        outputs = ("no_such_stream",)

    caplog.set_level(logging.DEBUG, logger="aisp.models")
    model = Odd()
    try:
        assert model._runner is None
        assert any("lean call path unavailable" in r.getMessage() for r in caplog.records)
        dets = model.infer(photos["astronaut"]).detections
        ref = UNCACHED.load("face_detection", cache=False)
        try:
            assert np.array_equal(dets.xyxy, ref.infer(photos["astronaut"]).detections.xyxy)
        finally:
            ref.close()
    finally:
        model.close()


def test_make_runner_refuses_unexpected_internals(caplog) -> None:
    from aisp.models._mp_graph import make_runner

    caplog.set_level(logging.DEBUG, logger="aisp.models")
    assert make_runner(object(), ("detections",)) is None
    two_inputs = SimpleNamespace(_input_stream_type_info={"a": None, "b": None}, _output_stream_type_info={})
    assert make_runner(two_inputs, ("detections",)) is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("AttributeError" in m for m in messages)
    assert any("expected one input stream, got ['a', 'b']" in m for m in messages)


class _KeepingGraph:
    """A graph that holds on to every input packet (as a tracking calculator might)."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self.packets: list[Any] = []
        self._outputs = outputs

    def add_packet_to_input_stream(self, stream: str, packet: Any) -> None:
        self.packets.append((stream, packet))

    def wait_until_idle(self) -> None:
        self._outputs["detections"] = "packet"


def test_runner_switches_to_copying_when_the_graph_keeps_frames() -> None:
    from mediapipe.python.solution_base import PacketDataType

    from aisp.models._mp_graph import make_runner

    outputs: dict[str, Any] = {}
    solution = SimpleNamespace(
        _input_stream_type_info={"image": PacketDataType.IMAGE},
        _output_stream_type_info={"detections": PacketDataType.PROTO_LIST},
        _graph=_KeepingGraph(outputs),
        _graph_outputs=outputs,
        _simulated_timestamp=0,
        _get_packet_content=lambda kind, packet: (kind, packet),
    )
    runner = make_runner(solution, ("detections",))
    assert runner is not None and runner.reference
    frame = np.zeros((8, 8, 3), np.uint8)
    out = runner(frame)
    assert out.detections == (PacketDataType.PROTO_LIST, "packet")
    assert not runner.reference and len(runner._kept) == 1  # the kept view stays alive
    runner(frame)
    assert len(runner._kept) == 1 and solution._simulated_timestamp == 2 * 33333
    assert [s for s, _ in solution._graph.packets] == ["image", "image"]
    solution._graph.packets.clear()
    runner.release()
    assert not runner._kept


@pytest.mark.parametrize(
    ("name", "stream", "photo"),
    [
        ("face_detection", "detections", "astronaut"),
        ("face_mesh", "multi_face_landmarks", "astronaut"),
        ("pose", "pose_landmarks", "astronaut"),
    ],
)
def test_protos_come_back_serialised(photos, name: str, stream: str, photo: str) -> None:
    from aisp.models._protobuf import Serialized

    model = UNCACHED.load(name, cache=False)
    try:
        value = getattr(model._runner(photos[photo]), stream)
        first = value if isinstance(value, bytes) else value[0]
        assert isinstance(first, Serialized) and len(first) > 20
    finally:
        model.close()


def test_reader_falls_back_to_the_getter_on_another_proto_type(photos) -> None:
    from mediapipe.framework.formats import detection_pb2, landmark_pb2
    from mediapipe.python import packet_creator, packet_getter
    from mediapipe.python.solution_base import PacketDataType

    from aisp.models._mp_graph import _reader
    from aisp.models._protobuf import Serialized

    model = UNCACHED.load("face_detection", cache=False)
    try:
        solution, lists = model._solution, PacketDataType.PROTO_LIST
        as_detections = _reader(solution, lists, "mediapipe.Detection", PacketDataType)
        as_landmarks = _reader(solution, lists, "mediapipe.NormalizedLandmarkList", PacketDataType)
        model._runner(photos["astronaut"])
        packet = model._runner._graph_outputs["detections"]  # a real output vector of Detection
        parsed = packet_getter.get_proto_list(packet)
        got = as_detections(packet)
        assert len(got) == 1 and all(isinstance(g, Serialized) for g in got)
        assert got == [d.SerializeToString() for d in parsed]
        other = as_landmarks(packet)  # not the expected type: parsed, as process() gives it
        assert other == parsed and isinstance(other[0], detection_pb2.Detection)
        model._runner(photos["coffee"])  # no face: an empty packet, None as from process()
        empty = model._runner._graph_outputs["detections"]
        assert as_detections(empty) is None and solution._get_packet_content(lists, empty) is None
    finally:
        model.close()
    lst = landmark_pb2.NormalizedLandmarkList()
    lst.landmark.add(x=0.25, y=0.5)
    det = detection_pb2.Detection(score=[0.5])
    one = _reader(solution, PacketDataType.PROTO, "mediapipe.NormalizedLandmarkList", PacketDataType)
    assert one(packet_creator.create_proto(lst)) == lst.SerializeToString()
    assert one(packet_creator.create_proto(det)) == det


def test_converters_read_serialised_protos_like_parsed_ones() -> None:
    from mediapipe.framework.formats import detection_pb2, landmark_pb2

    from aisp.models._protobuf import Serialized, detection_fields, landmark_array

    regular = landmark_pb2.NormalizedLandmarkList()
    for i in range(5):
        regular.landmark.add(x=i / 10, y=0.5, z=0.1, visibility=0.9, presence=0.8)
    ragged = landmark_pb2.NormalizedLandmarkList()
    ragged.landmark.add(x=0.1, y=0.2, z=0.3)
    ragged.landmark.add(x=0.4, y=0.5)  # z unset: another layout, parsed instead
    for lst in (regular, ragged, landmark_pb2.NormalizedLandmarkList()):
        got = landmark_array(Serialized(lst.SerializeToString()))
        assert got.dtype == np.float32 and np.array_equal(got, landmark_array(lst))
    assert landmark_array(Serialized(regular.SerializeToString()))[4, 3] == pytest.approx(0.9)
    det = detection_pb2.Detection(score=[0.7])
    det.location_data.relative_bounding_box.xmin = 0.1
    det.location_data.relative_bounding_box.width = 0.2
    absolute = detection_pb2.Detection(score=[0.5])  # no relative box: parsed instead
    absolute.location_data.bounding_box.xmin = 10
    for d in (det, absolute):
        assert detection_fields(Serialized(d.SerializeToString())) == detection_fields(d)


class _FailingGraph(_KeepingGraph):
    def wait_until_idle(self) -> None:
        raise RuntimeError("CalculatorGraph::Run() failed: boom")


def test_runner_keeps_the_frame_when_the_graph_fails() -> None:
    from mediapipe.python.solution_base import PacketDataType

    from aisp.models._mp_graph import make_runner

    outputs: dict[str, Any] = {}
    solution = SimpleNamespace(
        _input_stream_type_info={"image": PacketDataType.IMAGE},
        _output_stream_type_info={"detections": PacketDataType.PROTO_LIST},
        _graph=_FailingGraph(outputs),
        _graph_outputs=outputs,
        _simulated_timestamp=0,
        _get_packet_content=lambda kind, packet: (kind, packet),
    )
    runner = make_runner(solution, ("detections",))
    assert runner is not None
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(RuntimeError, match="boom"):
        runner(frame)
    assert len(runner._kept) == 1 and runner._kept[0].base is frame and not runner.reference
    solution._graph.packets.clear()
    runner.release()
    assert not runner._kept
