"""ONNX Runtime adapter: the user's detector or classifier file (``onnx:<path>``).

* Detector: the YOLOv8/YOLO11 export layout, one output ``[1, 4+C, N]`` (``cx, cy, w, h`` in
  network pixels, then C class scores). Frames are letterboxed to the input size; boxes are
  confidence-filtered, class-aware NMS'd and mapped back to frame pixels.
* Classifier: one output ``[1, C]``, softmaxed unless it already holds probabilities. Frames are
  resized (shorter side) and centre-cropped to the input size.

Inputs are ``[B, 3, H, W]`` float (0..1). The task, input size and class names come from the
model's metadata (Ultralytics writes ``task``, ``imgsz`` and ``names``), else from a sidecar JSON
or YAML next to the file, else from the graph's static shapes. Execution providers and the
confidence floor are constructor arguments (``providers``, ``conf_threshold``; defaults from
``ModelConfig()``: ``auto``, i.e. CUDA when present, else CPU, and 0.5); the registry passes its
config's ``onnx_providers`` and ``min_detection_confidence``, and the session's threads
(``intra_op_num_threads``, ``inter_op_num_threads``, ``allow_spinning``) from the CPU budget
(:mod:`aisp.cpu_budget`). Nothing here reads settings.

Decoding is split along the module boundary: :mod:`aisp.models._yolo_postprocess` turns the raw
output into arrays (boxes, confidences, class ids); :meth:`Detections.from_yolo` wraps them.

ONNX Runtime sessions may be called from several threads at once, so these models are shared
(``thread_safe = True``). A dynamic batch dimension enables real batching in ``infer_batch``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aisp._lazy import require
from aisp.errors import ModelLoadError
from aisp.models._onnx_meta import merged_metadata, read_sidecar, resolve_providers
from aisp.models._yolo_postprocess import center_crop_resize, letterbox, to_probabilities
from aisp.models.base import Model
from aisp.models.config import ModelConfig
from aisp.models.results import Classification, Detections

__all__ = ["OnnxModel"]

logger = logging.getLogger("aisp.models")

_DEFAULTS = ModelConfig()
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxModel(Model):
    """A detector or classifier run by ONNX Runtime."""

    backend = "onnx"
    thread_safe = True

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        providers: Sequence[str] = _DEFAULTS.onnx_providers,
        conf_threshold: float = _DEFAULTS.min_detection_confidence,
        iou_threshold: float = 0.45,
        max_det: int = 300,
        task: str | None = None,
        class_names: list[str] | None = None,
        input_size: tuple[int, int] | None = None,
        intra_op_num_threads: int | None = None,
        inter_op_num_threads: int | None = None,
        allow_spinning: bool | None = None,
    ) -> None:
        self.path = Path(path)
        super().__init__(name or f"onnx:{path}")
        if not self.path.is_file():
            raise ModelLoadError(
                f"ONNX model file not found: '{self.path}'", model_name=self.name, path=str(self.path)
            )
        ort = require("onnxruntime", model_name=self.name)
        self.providers = resolve_providers(providers, ort.get_available_providers())
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if intra_op_num_threads:
            opts.intra_op_num_threads = intra_op_num_threads
        if inter_op_num_threads:
            opts.inter_op_num_threads = inter_op_num_threads
        if allow_spinning is not None:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        self.session_threads = {"intra_op": intra_op_num_threads or 0, "inter_op": inter_op_num_threads or 0,
                                "spinning": allow_spinning}
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=opts, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelLoadError(
                f"cannot load ONNX model '{self.path}': {_first_line(exc)}",
                model_name=self.name,
                path=str(self.path),
            ) from exc
        self.size_bytes = self.path.stat().st_size
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.max_det = max_det
        self._configure(task, class_names, input_size)
        self._warm_up()

    # --- loading ------------------------------------------------------------------------------
    def _fail(self, message: str) -> ModelLoadError:
        return ModelLoadError(
            f"ONNX model '{self.path}': {message}", model_name=self.name, path=str(self.path)
        )

    def _configure(
        self, task: str | None, class_names: list[str] | None, input_size: tuple[int, int] | None
    ) -> None:
        sess = self._session
        meta = dict(sess.get_modelmeta().custom_metadata_map or {})
        sidecar, sidecar_path = read_sidecar(self.path, self.name)
        info = merged_metadata(meta, sidecar, self.path, sidecar_path, self.name)
        self.metadata = meta
        self.sidecar_path = sidecar_path

        inp = sess.get_inputs()[0]
        shape = list(inp.shape)
        if len(shape) != 4 or _static(shape[1]) not in (3, None):
            raise self._fail(f"expected one image input shaped [B, 3, H, W], got {inp.name} {shape}")
        self._input_name = inp.name
        self._input_dtype = _FLOAT_TYPES.get(inp.type)
        if self._input_dtype is None:
            raise self._fail(f"expected a float input tensor, got {inp.type}")
        size = input_size or info["imgsz"]
        static_hw = (_static(shape[2]), _static(shape[3]))
        if None not in static_hw:
            size = static_hw  # the graph decides
        if size is None:
            raise self._fail(
                "input size unknown: the input is dynamic and neither the metadata nor a "
                "sidecar (.json/.yaml next to the file) gives 'imgsz'"
            )
        self.input_size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.supports_batch = _static(shape[0]) is None

        out = sess.get_outputs()[0]
        self._output_name = out.name
        oshape = list(out.shape)
        task = (task or info["task"] or {3: "detect", 2: "classify"}.get(len(oshape), "")).lower()
        if task not in ("detect", "classify"):
            raise self._fail(
                f"unsupported model: expected a detector output [1, 4+C, N] or a classifier "
                f"output [1, C], got output {out.name} {oshape} (task {task or 'unknown'})"
            )
        self.task = task
        names = class_names or info["names"]
        if task == "detect":
            if len(oshape) != 3:
                raise self._fail(f"expected a detector output [1, 4+C, N], got {oshape}")
            d1, d2 = _static(oshape[1]), _static(oshape[2])
            if names and d2 == 4 + len(names) and d1 != d2:
                n_cls = len(names)  # the [1, N, 4+C] variant; transposed when decoding
            else:
                n_cls = d1 - 4 if d1 else (len(names) if names else None)
            if n_cls is not None and n_cls < 1:
                raise self._fail(f"expected a detector output [1, 4+C, N] with C >= 1, got {oshape}")
        else:
            if len(oshape) != 2:
                raise self._fail(f"expected a classifier output [1, C], got {oshape}")
            n_cls = _static(oshape[1]) or (len(names) if names else None)
        if names is not None and n_cls is not None and len(names) != n_cls:
            raise self._fail(f"the model has {n_cls} classes but its names list {len(names)}")
        self.num_classes = n_cls
        self.class_names: list[str] | None = names

    def _warm_up(self) -> None:
        try:
            self._predict(np.zeros((self.input_size[0], self.input_size[1], 3), np.uint8))
        except ModelLoadError:
            raise
        except Exception as exc:
            raise self._fail(f"first inference failed: {_first_line(exc)}") from exc

    # --- inference ----------------------------------------------------------------------------
    def _prepare(self, frame: np.ndarray) -> tuple[np.ndarray, float, tuple[float, float]]:
        if self.task == "detect":
            img, scale, pad = letterbox(frame, self.input_size)
        else:
            img, scale, pad = center_crop_resize(frame, self.input_size), 1.0, (0.0, 0.0)
        x = img.transpose(2, 0, 1).astype(self._input_dtype)
        x *= self._input_dtype(1.0 / 255.0)
        return x, scale, pad

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run([self._output_name], {self._input_name: batch})[0]

    def _decode(
        self, out: np.ndarray, frame: np.ndarray, scale: float, pad: tuple[float, float]
    ) -> dict[str, Any]:
        if self.task == "classify":
            return {"classification": Classification(to_probabilities(out), self.class_names)}
        out = out[None] if out.ndim == 2 else out
        if (
            self.num_classes is not None
            and out.shape[1] != 4 + self.num_classes
            and out.shape[2] == 4 + self.num_classes
        ):
            out = out.transpose(0, 2, 1)  # [1, N, 4+C] variant
        dets = Detections.from_yolo(
            out.astype(np.float32, copy=False),
            image_shape=frame.shape[:2],
            scale=scale,
            pad=pad,
            conf_threshold=self.conf_threshold,
            iou_threshold=self.iou_threshold,
            class_names=self.class_names,
            max_det=self.max_det,
        )
        return {"detections": dets}

    def _predict(self, frame: np.ndarray) -> dict[str, Any]:
        x, scale, pad = self._prepare(frame)
        out = self._run(x[None])
        return self._decode(out[0], frame, scale, pad)

    def _predict_batch(self, frames: list[np.ndarray]) -> list[dict[str, Any]]:
        prepared = [self._prepare(f) for f in frames]
        out = self._run(np.stack([p[0] for p in prepared]))
        if out.shape[0] != len(frames):
            raise self._fail(
                f"batch of {len(frames)} frames gave {out.shape[0]} outputs; expected one output per frame"
            )
        return [
            self._decode(out[i], f, p[1], p[2]) for i, (f, p) in enumerate(zip(frames, prepared, strict=True))
        ]

    def _close(self) -> None:
        # The session is shared by threads that may still be inside run(); it is freed with the
        # object once the cache and every caller have dropped it.
        logger.debug("closed ONNX model %s", self.name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
