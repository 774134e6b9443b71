"""The built-in models: the registry names that are part of AISP's public contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aisp.models.registry import register_model

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


def _min_confidence() -> float:
    from aisp.settings import get_settings

    return get_settings().min_detection_confidence


def _mp(name: str, build: Callable[[], Any], description: str) -> None:
    from aisp.models.mediapipe import model_files_size

    register_model(
        name,
        build,
        backend="mediapipe",
        thread_safe=False,
        description=description,
        requires=("mediapipe",),
        extra="mediapipe",
        size_hint=lambda: model_files_size(name),
    )


def _face_detection() -> Any:
    from aisp.models.mediapipe import FaceDetectionModel

    return FaceDetectionModel("face_detection", model_selection=0, min_detection_confidence=_min_confidence())


def _face_detection_full() -> Any:
    from aisp.models.mediapipe import FaceDetectionModel

    return FaceDetectionModel(
        "face_detection_full", model_selection=1, min_detection_confidence=_min_confidence()
    )


def _face_mesh() -> Any:
    from aisp.models.mediapipe import FaceMeshModel

    return FaceMeshModel("face_mesh", min_detection_confidence=_min_confidence())


def _selfie() -> Any:
    from aisp.models.mediapipe import SelfieSegmentationModel

    return SelfieSegmentationModel("selfie_segmentation")


def _pose() -> Any:
    from aisp.models.mediapipe import PoseModel

    return PoseModel("pose", min_detection_confidence=_min_confidence())


def _hands() -> Any:
    from aisp.models.mediapipe import HandsModel

    return HandsModel("hands", min_detection_confidence=_min_confidence())


def _motion() -> Any:
    from aisp.models.motion import MotionModel

    return MotionModel("motion")


def _fake() -> Any:
    from aisp.models.fake import FakeModel

    return FakeModel("fake")


def register_builtins() -> None:
    _mp("face_detection", _face_detection, "MediaPipe BlazeFace short range: boxes + 6 keypoints")
    _mp(
        "face_detection_full",
        _face_detection_full,
        "MediaPipe BlazeFace full range (small, far faces): boxes + 6 keypoints",
    )
    _mp("face_mesh", _face_mesh, "MediaPipe face mesh: 468 landmarks per face")
    _mp("selfie_segmentation", _selfie, "MediaPipe selfie segmentation: person mask")
    _mp("pose", _pose, "MediaPipe BlazePose: 33 body landmarks")
    _mp("hands", _hands, "MediaPipe hands: 21 landmarks per hand, handedness")
    register_model(
        "motion",
        _motion,
        backend="opencv",
        thread_safe=False,
        requires=("cv2",),
        description="OpenCV MOG2 background subtraction: moving-region boxes (stateful)",
        size_hint=lambda: 0,
    )
    register_model(
        "fake",
        _fake,
        backend="fake",
        thread_safe=True,
        size_hint=lambda: 1024,
        description="deterministic test model, no dependencies",
    )
