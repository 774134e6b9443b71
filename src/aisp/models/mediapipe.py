"""MediaPipe adapters, one per bundled model, on the legacy ``mediapipe.solutions`` API.

MediaPipe 0.10.21 is the last release whose wheel ships these ``.tflite`` files, so nothing is
downloaded (``pose`` and ``hands`` use model complexity 1, the variants inside the wheel).

MediaPipe graphs are not thread-safe: each adapter has ``thread_safe = False`` and its own lock,
and workers load their own instance (``registry.load("face_detection", instance="w1")``). So by
default each graph runs its calculators on the thread that calls it, with no graph threads of
its own (``graph_threads=0``, from ``ModelConfig.mediapipe_graph_threads``;
:mod:`aisp.models._mp_threads` says why). Adapters take every option as a constructor argument
(defaults from ``ModelConfig()``) and read no settings. The graph
is built, and one warm-up inference run, inside :func:`aisp.logs.capture_native_output`, so
TF Lite / absl start-up noise goes to the ``aisp.native`` logger at DEBUG instead of stderr.

Inference drives the solution's graph through :mod:`aisp.models._mp_graph` (no per-call
namedtuple class, no image copy, only the output streams used), with the same outputs as
``process()``; where that path cannot be set up, the adapter calls ``process()``.

``mediapipe`` is imported when a model is constructed, never when this module is imported.
"""

from __future__ import annotations

import importlib.util
import os
from abc import abstractmethod
from typing import Any

import numpy as np

from aisp._lazy import require
from aisp.logs import capture_native_output, quiet_native_env
from aisp.models._mp_graph import make_runner
from aisp.models._mp_threads import graph_threads as graph_executor
from aisp.models.base import Model
from aisp.models.config import ModelConfig
from aisp.models.results import Detections, Landmarks, Mask

__all__ = [
    "MediaPipeModel",
    "FaceDetectionModel",
    "FaceMeshModel",
    "SelfieSegmentationModel",
    "PoseModel",
    "HandsModel",
    "MODEL_FILES",
    "model_files_size",
]

#: The wheel's model files each adapter uses (relative to ``mediapipe/modules``).
MODEL_FILES: dict[str, tuple[str, ...]] = {
    "face_detection": ("face_detection/face_detection_short_range.tflite",),
    "face_detection_full": ("face_detection/face_detection_full_range_sparse.tflite",),
    "face_mesh": ("face_detection/face_detection_short_range.tflite", "face_landmark/face_landmark.tflite"),
    "selfie_segmentation": ("selfie_segmentation/selfie_segmentation.tflite",),
    "pose": ("pose_detection/pose_detection.tflite", "pose_landmark/pose_landmark_full.tflite"),
    "hands": ("palm_detection/palm_detection_full.tflite", "hand_landmark/hand_landmark_full.tflite"),
}

_WARMUP = np.full((96, 128, 3), 127, np.uint8)
_DEFAULTS = ModelConfig()
QUIET_FIRST_CALLS = 100


def _modules_dir() -> str | None:
    """Where the mediapipe wheel keeps its models, found without importing mediapipe."""
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "modules")


def model_files_size(key: str) -> int | None:
    """Bytes on disk of the files behind ``key`` (None when mediapipe is not installed)."""
    base = _modules_dir()
    if base is None:
        return None
    total = 0
    for rel in MODEL_FILES.get(key, ()):
        try:
            total += os.path.getsize(os.path.join(base, rel))
        except OSError:
            return None
    return total


class MediaPipeModel(Model):
    """Base adapter: builds a ``mediapipe.solutions`` graph quietly and warms it up."""

    backend = "mediapipe"
    thread_safe = False
    files_key = ""
    #: The graph output streams :meth:`_convert` reads (the lean call path reads only these).
    outputs: tuple[str, ...] = ()
    #: Output streams whose protos :meth:`_convert` also takes serialised, with their proto type.
    serialized: dict[str, str] = {}

    def __init__(
        self,
        name: str,
        *,
        graph_threads: int = _DEFAULTS.mediapipe_graph_threads,
        log_level: str = _DEFAULTS.log_level,
        **options: Any,
    ) -> None:
        """``graph_threads``: where the graph runs its calculators, 0 on the calling thread or N on
        a pool of N threads (see :mod:`aisp.models._mp_threads`); ``log_level``: the process log
        level (below DEBUG, native start-up output is quietened); ``options`` go to the solution."""
        super().__init__(name)
        quiet_native_env(log_level)
        mp = require("mediapipe", model_name=name)
        self.options = options
        self._capture = capture_native_output
        with capture_native_output(), graph_executor(graph_threads) as applied:
            #: 0: calculators run on the calling thread; N: on N graph threads; None: MediaPipe's
            #: default (this MediaPipe's internals were not the ones expected)
            self.graph_threads: int | None = graph_threads if applied else None
            self._solution = self._build(mp.solutions, **options)
            # Tracking graphs keep state across frames: let them have their own copy of each.
            tracking = options.get("static_image_mode") is False
            self._runner = make_runner(
                self._solution, self.outputs, reference=not tracking, serialized=self.serialized
            )
            self._run = self._runner if self._runner is not None else self._solution.process
            self._convert(self._run(_WARMUP), _WARMUP)
        self.size_bytes = model_files_size(self.files_key or name) or 0
        # Some graphs log once (absl, to fd 2) on their first real finding, e.g. landmark
        # projection on a non-square frame. Calls stay captured until the first finding, for at
        # most this many calls; after that, inference runs with no redirection at all.
        self._quiet_calls_left = QUIET_FIRST_CALLS

    @abstractmethod
    def _build(self, solutions: Any, **options: Any) -> Any:
        """Create the ``mediapipe.solutions`` object for this model."""

    @abstractmethod
    def _convert(self, out: Any, frame: np.ndarray) -> dict[str, Any]:
        """Turn the graph's outputs into result parts (``detections``, ``landmarks``, ``mask``)."""

    def _predict(self, frame: np.ndarray) -> dict[str, Any]:
        if not self._quiet_calls_left:
            return self._convert(self._run(frame), frame)
        with self._capture():
            parts = self._convert(self._run(frame), frame)
        found = any(len(v) if hasattr(v, "__len__") else v is not None for v in parts.values())
        self._quiet_calls_left = 0 if found else self._quiet_calls_left - 1
        return parts

    def _close(self) -> None:
        self._solution.close()
        if self._runner is not None:
            self._runner.release()


class FaceDetectionModel(MediaPipeModel):
    """BlazeFace: boxes + 6 keypoints (eyes, nose tip, mouth, ear tragions). Selection 0 is the
    short-range model (faces within ~2 m), 1 the full-range sparse model (small, far faces)."""

    outputs = ("detections",)
    serialized = {"detections": "mediapipe.Detection"}

    def __init__(
        self,
        name: str = "face_detection",
        *,
        model_selection: int = 0,
        min_detection_confidence: float = _DEFAULTS.min_detection_confidence,
        graph_threads: int = _DEFAULTS.mediapipe_graph_threads,
        log_level: str = _DEFAULTS.log_level,
    ) -> None:
        self.files_key = "face_detection_full" if model_selection == 1 else "face_detection"
        self.network_input_side = 192 if model_selection == 1 else 128
        super().__init__(
            name,
            graph_threads=graph_threads,
            log_level=log_level,
            model_selection=model_selection,
            min_detection_confidence=min_detection_confidence,
        )

    def _build(self, solutions: Any, **options: Any) -> Any:
        return solutions.face_detection.FaceDetection(**options)

    def _convert(self, out: Any, frame: np.ndarray) -> dict[str, Any]:
        return {"detections": Detections.from_mediapipe(out.detections, frame.shape[1], frame.shape[0])}


class FaceMeshModel(MediaPipeModel):
    """468 face landmarks per face (static-image mode by default: frames from different streams
    share a worker's instance, so no tracking state is carried between frames)."""

    outputs = ("multi_face_landmarks",)
    serialized = {"multi_face_landmarks": "mediapipe.NormalizedLandmarkList"}

    files_key = "face_mesh"

    def __init__(
        self,
        name: str = "face_mesh",
        *,
        max_num_faces: int = 4,
        static_image_mode: bool = True,
        min_detection_confidence: float = _DEFAULTS.min_detection_confidence,
        graph_threads: int = _DEFAULTS.mediapipe_graph_threads,
        log_level: str = _DEFAULTS.log_level,
    ) -> None:
        super().__init__(
            name,
            graph_threads=graph_threads,
            log_level=log_level,
            max_num_faces=max_num_faces,
            static_image_mode=static_image_mode,
            refine_landmarks=False,
            min_detection_confidence=min_detection_confidence,
        )

    def _build(self, solutions: Any, **options: Any) -> Any:
        return solutions.face_mesh.FaceMesh(**options)

    def _convert(self, out: Any, frame: np.ndarray) -> dict[str, Any]:
        h, w = frame.shape[:2]
        return {
            "landmarks": Landmarks.from_mediapipe(
                out.multi_face_landmarks, w, h, kind="face_mesh", num_points=468
            )
        }


class SelfieSegmentationModel(MediaPipeModel):
    """Person segmentation: a soft (H, W) mask, same size as the frame."""

    outputs = ("segmentation_mask",)

    files_key = "selfie_segmentation"

    def __init__(
        self,
        name: str = "selfie_segmentation",
        *,
        model_selection: int = 0,
        threshold: float = 0.5,
        graph_threads: int = _DEFAULTS.mediapipe_graph_threads,
        log_level: str = _DEFAULTS.log_level,
    ) -> None:
        self.threshold = threshold
        super().__init__(
            name, graph_threads=graph_threads, log_level=log_level, model_selection=model_selection
        )

    def _build(self, solutions: Any, **options: Any) -> Any:
        return solutions.selfie_segmentation.SelfieSegmentation(**options)

    def _convert(self, out: Any, frame: np.ndarray) -> dict[str, Any]:
        # The graph's output is a view into a packet freed on the next call: copy it.
        data = np.array(out.segmentation_mask, dtype=np.float32, copy=True)
        return {"mask": Mask(data, self.threshold, "person")}


class PoseModel(MediaPipeModel):
    """BlazePose: 33 body landmarks with visibility (one person)."""

    outputs = ("pose_landmarks",)
    serialized = {"pose_landmarks": "mediapipe.NormalizedLandmarkList"}

    files_key = "pose"

    def __init__(
        self,
        name: str = "pose",
        *,
        static_image_mode: bool = True,
        min_detection_confidence: float = _DEFAULTS.min_detection_confidence,
        graph_threads: int = _DEFAULTS.mediapipe_graph_threads,
        log_level: str = _DEFAULTS.log_level,
    ) -> None:
        super().__init__(
            name,
            graph_threads=graph_threads,
            log_level=log_level,
            static_image_mode=static_image_mode,
            model_complexity=1,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
        )

    def _build(self, solutions: Any, **options: Any) -> Any:
        return solutions.pose.Pose(**options)

    def _convert(self, out: Any, frame: np.ndarray) -> dict[str, Any]:
        h, w = frame.shape[:2]
        lists = [out.pose_landmarks] if out.pose_landmarks is not None else None
        return {
            "landmarks": Landmarks.from_mediapipe(
                lists, w, h, kind="pose", num_points=33, with_visibility=True
            )
        }


class HandsModel(MediaPipeModel):
    """21 landmarks per hand with handedness ("Left"/"Right" as MediaPipe reports it, which
    assumes a mirrored, selfie-style image) and its score."""

    outputs = ("multi_hand_landmarks", "multi_handedness")
    serialized = {"multi_hand_landmarks": "mediapipe.NormalizedLandmarkList"}

    files_key = "hands"

    def __init__(
        self,
        name: str = "hands",
        *,
        max_num_hands: int = 2,
        static_image_mode: bool = True,
        min_detection_confidence: float = _DEFAULTS.min_detection_confidence,
        graph_threads: int = _DEFAULTS.mediapipe_graph_threads,
        log_level: str = _DEFAULTS.log_level,
    ) -> None:
        super().__init__(
            name,
            graph_threads=graph_threads,
            log_level=log_level,
            max_num_hands=max_num_hands,
            static_image_mode=static_image_mode,
            model_complexity=1,
            min_detection_confidence=min_detection_confidence,
        )

    def _build(self, solutions: Any, **options: Any) -> Any:
        return solutions.hands.Hands(**options)

    def _convert(self, out: Any, frame: np.ndarray) -> dict[str, Any]:
        h, w = frame.shape[:2]
        hands = out.multi_hand_landmarks
        labels = scores = None
        if hands:
            cls = [c.classification[0] for c in (out.multi_handedness or [])]
            if len(cls) == len(hands):
                labels = [c.label for c in cls]
                scores = [c.score for c in cls]
        return {
            "landmarks": Landmarks.from_mediapipe(
                hands, w, h, kind="hands", num_points=21, labels=labels, scores=scores
            )
        }
