"""What an ONNX model file says about itself: task, input size, class names, providers.

Read from the model's ``metadata_props`` first (Ultralytics exports write ``names`` as a Python
dict literal such as ``"{0: 'person', 1: 'bicycle'}"``, ``imgsz`` as ``"[640, 640]"`` and ``task``),
then from a sidecar file next to the model with the same stem (``model.json``, ``model.yaml`` or
``model.yml``) holding the same keys; the metadata wins where both say something.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aisp.errors import ConfigError, ModelLoadError

__all__ = ["read_sidecar", "parse_names", "parse_imgsz", "resolve_providers", "merged_metadata"]

SIDECAR_SUFFIXES = (".json", ".yaml", ".yml")

_SHORT_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
}


def read_sidecar(model_path: Path, model_name: str) -> tuple[dict[str, Any], Path | None]:
    """The first sidecar found next to ``model_path`` (parsed), or ``({}, None)``."""
    for suffix in SIDECAR_SUFFIXES:
        side = model_path.with_suffix(suffix)
        if not side.is_file():
            continue
        try:
            text = side.read_text(encoding="utf-8")
            if suffix == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:  # OSError, UnicodeDecodeError, ValueError, yaml.YAMLError
            raise ModelLoadError(
                f"cannot read the sidecar '{side}' of ONNX model '{model_path}': {exc}",
                model_name=model_name,
                path=str(side),
            ) from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ModelLoadError(
                f"sidecar '{side}': expected a mapping with keys names/imgsz/task, got {type(data).__name__}",
                model_name=model_name,
                path=str(side),
            )
        return data, side
    return {}, None


def parse_names(value: Any, where: str, model_name: str) -> list[str] | None:
    """Class names from a list, a ``{index: name}`` mapping, or their text forms."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise ModelLoadError(
                    f"{where}: 'names' is not a list or dict literal: {text[:80]!r}", model_name=model_name
                ) from exc
    if isinstance(value, Mapping):
        try:
            items = sorted((int(k), str(v)) for k, v in value.items())
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(
                f"{where}: 'names' keys must be class indices, got {list(value)[:5]}", model_name=model_name
            ) from exc
        if [k for k, _ in items] != list(range(len(items))):
            raise ModelLoadError(
                f"{where}: 'names' indices must be 0..{len(items) - 1}, got {[k for k, _ in items]}",
                model_name=model_name,
            )
        return [v for _, v in items]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [str(v) for v in value]
    raise ModelLoadError(
        f"{where}: 'names' must be a list or a mapping, got {type(value).__name__}", model_name=model_name
    )


def parse_imgsz(value: Any, where: str, model_name: str) -> tuple[int, int] | None:
    """``640``, ``[640, 640]`` or their text forms to (height, width)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError) as exc:
            raise ModelLoadError(
                f"{where}: 'imgsz' is not a number or [h, w]: {value!r}", model_name=model_name
            ) from exc
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value, value]
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = [value[0], value[0]]
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ModelLoadError(
        f"{where}: 'imgsz' expected a positive int or [h, w], got {value!r}", model_name=model_name
    )


def merged_metadata(
    meta: Mapping[str, str],
    sidecar: Mapping[str, Any],
    model_path: Path,
    sidecar_path: Path | None,
    model_name: str,
) -> dict[str, Any]:
    """Task, imgsz and names: metadata first, sidecar second."""
    where_meta = f"metadata of '{model_path}'"
    where_side = f"sidecar '{sidecar_path}'"
    names = parse_names(meta.get("names"), where_meta, model_name)
    if names is None:
        names = parse_names(sidecar.get("names"), where_side, model_name)
    imgsz = parse_imgsz(meta.get("imgsz"), where_meta, model_name)
    if imgsz is None:
        imgsz = parse_imgsz(sidecar.get("imgsz", sidecar.get("input_size")), where_side, model_name)
    task = meta.get("task") or sidecar.get("task")
    if task is not None:
        task = str(task).strip().lower()
        if task in ("detection", "detector"):
            task = "detect"
        if task in ("classification", "classifier"):
            task = "classify"
    return {"names": names, "imgsz": imgsz, "task": task}


def resolve_providers(requested: Sequence[str], available: Sequence[str]) -> list[str]:
    """``ModelConfig.onnx_providers`` to ONNX Runtime provider names.

    ``auto`` means CUDA when ONNX Runtime has it, else CPU. Short names (``cpu``, ``cuda``, ...)
    are accepted. A provider ONNX Runtime does not have is a :class:`ConfigError`.
    """
    out: list[str] = []
    for item in requested or ["auto"]:
        key = item.strip()
        if key.lower() == "auto":
            names = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
            names.append("CPUExecutionProvider")
        else:
            names = [_SHORT_PROVIDERS.get(key.lower(), key)]
        for name in names:
            if name not in available:
                raise ConfigError(
                    f"onnx_providers: expected providers from {sorted(available)} or 'auto', got {item!r}",
                    field="onnx_providers",
                    value=item,
                    expected=f"one of {sorted(available)} or 'auto'",
                )
            if name not in out:
                out.append(name)
    return out
