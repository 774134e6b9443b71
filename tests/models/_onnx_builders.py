"""Tiny ONNX models built with ``onnx.helper`` (no download): a YOLO-layout detector and a
classifier whose outputs depend on the input's mean brightness, so the real preprocessing,
session, decoding and NMS code all run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Detector candidates in network pixels (cx, cy, w, h), their class and score at gain 1.
CANDIDATES = [
    ((32, 32, 20, 20), 0, 0.9),  # kept
    ((33, 32, 20, 20), 0, 0.8),  # same class, IoU ~0.9 with the first: suppressed by NMS
    ((33, 32, 20, 20), 1, 0.7),  # other class at the same place: kept (class-aware NMS)
    ((10, 10, 4, 4), 1, 0.3),  # below the confidence threshold
]


def _const(name: str, value: np.ndarray):
    from onnx import helper, numpy_helper

    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(value.astype(np.float32), name)
    )


def _gain_nodes(input_name: str, shape: list[int]):
    """gain = 2 * mean(input) per image, reshaped to ``shape``: 1.0 for mid-grey, 0 for black."""
    from onnx import helper, numpy_helper

    return [
        helper.make_node("ReduceMean", [input_name], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node(
            "Constant", [], ["gain_shape"], value=numpy_helper.from_array(np.array(shape, np.int64))
        ),
        helper.make_node("Reshape", ["mean", "gain_shape"], ["mean_r"]),
        _const("two", np.array(2.0)),
        helper.make_node("Mul", ["mean_r", "two"], ["gain"]),
    ]


def build_detector(
    path: Path,
    *,
    input_shape=(1, 3, 64, 64),
    metadata: dict[str, str] | None = None,
    transposed: bool = False,
    num_classes: int = 2,
) -> Path:
    import onnx
    from onnx import TensorProto, helper

    n = len(CANDIDATES)
    boxes = np.zeros((1, 4, n), np.float32)
    scores = np.zeros((1, num_classes, n), np.float32)
    for i, (box, cls, score) in enumerate(CANDIDATES):
        boxes[0, :, i] = box
        scores[0, cls, i] = score
    nodes = [
        *_gain_nodes("images", [-1, 1, 1]),
        _const("boxes", boxes),
        _const("scores", scores),
        _const("zero", np.array(0.0)),
        helper.make_node("Mul", ["gain", "zero"], ["zeros"]),
        helper.make_node("Add", ["boxes", "zeros"], ["boxes_b"]),  # broadcast to the batch
        helper.make_node("Mul", ["scores", "gain"], ["scaled"]),
        helper.make_node("Concat", ["boxes_b", "scaled"], ["out_cn" if transposed else "output0"], axis=1),
    ]
    out_shape = [1, 4 + num_classes, n]
    if transposed:
        nodes.append(helper.make_node("Transpose", ["out_cn"], ["output0"], perm=[0, 2, 1]))
        out_shape = [1, n, 4 + num_classes]
    graph = helper.make_graph(
        nodes,
        "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_classifier(
    path: Path, *, softmax: bool = False, input_shape=(1, 3, 32, 32), metadata: dict[str, str] | None = None
) -> Path:
    """logits = w * (2 * mean) + b with w = [10, 0, -10], b = [-10, 0, 10]: a white frame is
    class 0, a black one class 2, mid-grey nearly uniform."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        *_gain_nodes("images", [-1, 1]),
        _const("w", np.array([[10.0, 0.0, -10.0]])),
        _const("b", np.array([[-10.0, 0.0, 10.0]])),
        helper.make_node("Mul", ["gain", "w"], ["wx"]),
        helper.make_node("Add", ["wx", "b"], ["logits" if softmax else "output0"]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["output0"], axis=1))
    graph = helper.make_graph(
        nodes,
        "tiny_cls",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
