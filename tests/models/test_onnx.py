"""ONNX Runtime adapter on tiny models built with onnx.helper: loading, metadata, sidecars,
letterboxing, decoding, NMS, classifiers, batching, and bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aisp.errors import ConfigError, ModelLoadError
from aisp.models import ModelConfig, ModelRegistry
from tests.models._onnx_builders import build_classifier, build_detector

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from aisp.models.onnx import OnnxModel  # noqa: E402

META = {"names": "{0: 'person', 1: 'car'}", "imgsz": "[64, 64]", "task": "detect", "author": "Ultralytics"}
GREY = np.full((128, 256, 3), 128, np.uint8)
# Letterboxing 256x128 into 64x64: scale 0.25, 16 px of grey padding on top and bottom.
# Candidate 0 (cx 32, cy 32, 20 x 20) is (22, 22, 42, 42) in the network: in the frame
# ((22 - 0) / 0.25, (22 - 16) / 0.25, ...) = (88, 24, 168, 104).
PERSON_BOX = [88.0, 24.0, 168.0, 104.0]
CAR_BOX = [92.0, 24.0, 172.0, 104.0]


@pytest.fixture
def detector(tmp_path: Path) -> Path:
    return build_detector(tmp_path / "tiny.onnx", metadata=META)


def test_detector_with_ultralytics_metadata(detector: Path) -> None:
    model = OnnxModel(detector)
    assert model.task == "detect" and model.input_size == (64, 64) and model.class_names == ["person", "car"]
    assert model.thread_safe and not model.supports_batch and model.providers == ["CPUExecutionProvider"]
    assert model.size_bytes == detector.stat().st_size and model.name == f"onnx:{detector}"
    dets = model.infer(GREY).detections
    # NMS dropped the overlapping person box; the car box at the same place survives (class-aware);
    # the low-score candidate was filtered by confidence
    assert dets.labels == ("person", "car") and dets.class_id.tolist() == [0, 1]
    assert np.allclose(dets.xyxy, [PERSON_BOX, CAR_BOX], atol=0.01)
    pad_mean = (128 * 32 + 114 * 32) / 64 / 255  # half frame, half padding
    assert np.allclose(dets.confidence, np.array([0.9, 0.7]) * 2 * pad_mean, atol=1e-4)
    assert model.infer(np.zeros((128, 256, 3), np.uint8)).num_detections == 0  # black: all scores 0


def test_thresholds_are_options(detector: Path) -> None:
    loose = OnnxModel(detector, conf_threshold=0.1, iou_threshold=0.99)
    assert loose.infer(GREY).num_detections == 4  # nothing filtered, nothing suppressed
    one = OnnxModel(detector, conf_threshold=0.1, iou_threshold=0.99, max_det=1)
    assert one.infer(GREY).num_detections == 1


def test_min_detection_confidence_of_the_registry_config_is_the_default(detector: Path) -> None:
    registry = ModelRegistry(None, ModelConfig(min_detection_confidence=0.7))
    model = registry.load(f"onnx:{detector}")
    assert model.conf_threshold == 0.7
    assert model.infer(GREY).detections.labels == ("person",)  # the car (0.66) is below 0.7
    assert OnnxModel(detector).conf_threshold == ModelConfig().min_detection_confidence == 0.5


def test_transposed_output_layout(tmp_path: Path) -> None:
    path = build_detector(tmp_path / "t.onnx", metadata=META, transposed=True)
    dets = OnnxModel(path).infer(GREY).detections
    assert np.allclose(dets.xyxy, [PERSON_BOX, CAR_BOX], atol=0.01)


def test_dynamic_input_with_sidecars_and_batching(tmp_path: Path) -> None:
    path = build_detector(tmp_path / "dyn.onnx", input_shape=("batch", 3, "h", "w"))
    with pytest.raises(ModelLoadError, match="input size unknown") as info:
        OnnxModel(path)
    assert info.value.details["path"] == str(path)
    (tmp_path / "dyn.yaml").write_text("names:\n  - person\n  - car\nimgsz: 64\n", encoding="utf-8")
    model = OnnxModel(path)
    assert model.input_size == (64, 64) and model.class_names == ["person", "car"]
    assert model.sidecar_path == tmp_path / "dyn.yaml" and model.supports_batch
    results = model.infer_batch([np.zeros((128, 256, 3), np.uint8), GREY, GREY[:, :128]])
    assert [r.num_detections for r in results] == [0, 2, 2]
    assert np.allclose(results[1].detections.xyxy, [PERSON_BOX, CAR_BOX], atol=0.01)
    # a JSON sidecar wins over YAML (first in order) and may give [h, w]
    (tmp_path / "dyn.json").write_text(json.dumps({"names": {"0": "a", "1": "b"}, "imgsz": [64, 96]}))
    model = OnnxModel(path)
    assert model.input_size == (64, 96) and model.class_names == ["a", "b"]


def test_metadata_wins_over_sidecar(detector: Path) -> None:
    detector.with_suffix(".json").write_text(json.dumps({"names": ["x", "y"], "imgsz": 32}))
    model = OnnxModel(detector)
    assert model.class_names == ["person", "car"] and model.input_size == (64, 64)


def test_classifier_logits_and_probabilities(tmp_path: Path) -> None:
    logits = OnnxModel(build_classifier(tmp_path / "cls.onnx"), class_names=["white", "grey", "black"])
    assert logits.task == "classify" and logits.input_size == (32, 32)
    white = logits.infer(np.full((40, 60, 3), 255, np.uint8))
    black = logits.infer(np.zeros((40, 60, 3), np.uint8))
    assert white.classification.label == "white" and black.classification.label == "black"
    assert white.classification.probabilities.sum() == pytest.approx(1.0)
    assert white.detections is None and white.num_detections == 0
    grey = logits.infer(np.full((40, 60, 3), 128, np.uint8)).classification.probabilities
    expected = np.exp([10 * 2 * 128 / 255 - 10, 0.0, -10 * 2 * 128 / 255 + 10])
    assert np.allclose(grey, expected / expected.sum(), atol=1e-4)  # softmax applied by AISP
    probs = OnnxModel(
        build_classifier(tmp_path / "p.onnx", softmax=True, metadata={"names": "{0: 'w', 1: 'g', 2: 'b'}"})
    )
    same = probs.infer(np.full((40, 60, 3), 128, np.uint8)).classification
    assert np.allclose(same.probabilities, grey, atol=1e-4)  # already probabilities: kept as they are
    assert same.class_names == ("w", "g", "b")


def test_missing_and_corrupt_files(registry, tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelLoadError) as info:
        registry.load(f"onnx:{missing}", cache=False)
    assert str(missing) in info.value.message and info.value.details["path"] == str(missing)
    corrupt = tmp_path / "bad.onnx"
    corrupt.write_bytes(b"this is not a protobuf \x00\x01\x02" * 10)
    with pytest.raises(ModelLoadError) as info:
        registry.load(f"onnx:{corrupt}", cache=False)
    assert f"cannot load ONNX model '{corrupt}'" in info.value.message and info.value.path == str(corrupt)


@pytest.mark.parametrize(
    ("meta", "sidecar", "match"),
    [
        ({"names": "{0: 'a', 1: 'b', 2: 'c'}"}, None, "has 2 classes but its names list 3"),
        ({"names": "not a literal ["}, None, "'names' is not a list or dict literal"),
        ({"names": "{0: 'a', 2: 'b'}"}, None, "'names' indices must be 0..1"),
        ({"imgsz": "[0, 64]"}, None, "'imgsz' expected a positive int or"),
        ({}, "names: [unclosed\n", "cannot read the sidecar"),
        ({}, "- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_metadata_and_sidecars(tmp_path: Path, meta, sidecar, match: str) -> None:
    path = build_detector(tmp_path / "m.onnx", metadata=meta)
    if sidecar is not None:
        (tmp_path / "m.yml").write_text(sidecar, encoding="utf-8")
    with pytest.raises(ModelLoadError, match=match) as info:
        OnnxModel(path)
    assert info.value.details.get("model") == f"onnx:{path}"


def test_unsupported_output_shape(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["out"])],
        "ident",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "seg.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelLoadError, match=r"unsupported model: expected a detector output \[1, 4\+C, N\]"):
        OnnxModel(path)


def test_providers(detector: Path) -> None:
    from aisp.models._onnx_meta import resolve_providers

    assert resolve_providers(["auto"], ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert resolve_providers(["auto"], ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert resolve_providers(["cpu"], ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="onnx_providers: expected providers from"):
        resolve_providers(["cuda"], ["CPUExecutionProvider"])
    name = f"onnx:{detector}"
    cpu = ModelRegistry(None, ModelConfig(onnx_providers=("CPUExecutionProvider",)))
    assert cpu.load(name).providers == ["CPUExecutionProvider"]
    assert OnnxModel(detector, providers=["CPUExecutionProvider"]).providers == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ConfigError):
            ModelRegistry(None, ModelConfig(onnx_providers=("cuda",))).load(name)
        with pytest.raises(ConfigError):
            OnnxModel(detector, providers=["cuda"])


def test_onnx_through_the_registry_and_cache(registry, detector: Path) -> None:
    name = f"onnx:{detector}"
    model = registry.load(name)
    assert registry.load(name, instance="w1") is model  # sessions are shared between workers
    info = {i.name: i for i in registry.list()}[name]
    assert info.status == "loaded" and info.backend == "onnx" and info.size_bytes == detector.stat().st_size
