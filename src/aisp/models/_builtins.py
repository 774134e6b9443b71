"""The built-in models: the registry names that are part of AISP's public contract.

Each factory receives the registry's :class:`~aisp.models.config.ModelConfig` (the specs are
registered with ``takes_config=True``); none reads the process settings. The adapter modules are
imported here at the top: none of them imports its backend (mediapipe, onnxruntime, cv2) before a
model is built.
"""

from __future__ import annotations

from aisp.models.base import Model
from aisp.models.config import ModelConfig
from aisp.models.fake import FakeModel
from aisp.models.mediapipe import (
    FaceDetectionModel,
    FaceMeshModel,
    HandsModel,
    MediaPipeModel,
    PoseModel,
    SelfieSegmentationModel,
    model_files_size,
)
from aisp.models.motion import MotionModel
from aisp.models.specs import register_model

__all__ = ["register_builtins", "BUILTIN_NAMES"]

BUILTIN_NAMES = (
    "face_detection",
    "face_detection_full",
    "face_mesh",
    "selfie_segmentation",
    "pose",
    "hands",
    "motion",
    "fake",
)


def _mp(
    name: str, cls: type[MediaPipeModel], description: str, *, detector: bool = True, **options: float
) -> None:
    """Register a MediaPipe model: ``cls(name, **options)`` with the config's graph threads and
    log level, and its detection threshold when the graph has one (``detector``)."""

    def build(config: ModelConfig) -> Model:
        threshold = {"min_detection_confidence": config.min_detection_confidence} if detector else {}
        return cls(name, graph_threads=config.mediapipe_graph_threads, log_level=config.log_level,
                   **options, **threshold)

    register_model(
        name,
        build,
        backend="mediapipe",
        thread_safe=False,
        description=description,
        requires=("mediapipe",),
        extra="mediapipe",
        size_hint=lambda: model_files_size(name),
        takes_config=True,
    )


def _motion(config: ModelConfig) -> Model:
    return MotionModel("motion")


def _fake(config: ModelConfig) -> Model:
    return FakeModel("fake", cost_ms=config.fake_cost_ms)


def register_builtins() -> None:
    _mp("face_detection", FaceDetectionModel, "MediaPipe BlazeFace short range: boxes + 6 keypoints",
        model_selection=0)
    _mp("face_detection_full", FaceDetectionModel,
        "MediaPipe BlazeFace full range (small, far faces): boxes + 6 keypoints", model_selection=1)
    _mp("face_mesh", FaceMeshModel, "MediaPipe face mesh: 468 landmarks per face")
    _mp("selfie_segmentation", SelfieSegmentationModel, "MediaPipe selfie segmentation: person mask",
        detector=False)
    _mp("pose", PoseModel, "MediaPipe BlazePose: 33 body landmarks")
    _mp("hands", HandsModel, "MediaPipe hands: 21 landmarks per hand, handedness")
    register_model(
        "motion",
        _motion,
        backend="opencv",
        thread_safe=False,
        requires=("cv2",),
        description="OpenCV MOG2 background subtraction: moving-region boxes (stateful)",
        size_hint=lambda: 0,
        takes_config=True,
    )
    register_model(
        "fake",
        _fake,
        backend="fake",
        thread_safe=True,
        size_hint=lambda: 1024,
        description="deterministic test model, no dependencies",
        takes_config=True,
    )
