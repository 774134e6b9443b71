"""The ONNX workload of ``aisp bench pipeline``: a small YOLO-layout detector built with the
``onnx`` helper API (no download) and a generated 640x480 mp4v video.

The model is three 3x3 stride-2 convolutions (16, 32 and 6 channels, ReLU between) on a
``[B, 3, 320, 320]`` input with a dynamic batch axis; its ``[B, 6, 40, 40]`` map is reshaped to the
YOLOv8 layout ``[B, 4+2, 1600]`` and squashed with a sigmoid, the box rows scaled to network
pixels. The weights come from a fixed seed, so every run and every process builds the same file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["build_yolo_like", "make_counter_video", "stamp_counter", "read_counter", "INPUT_SIDE"]

INPUT_SIDE = 320
#: the score rows' bias: a few detections per frame above the default 0.5 confidence floor
SCORE_BIAS = -0.8


def _init(name: str, value: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(value.astype(np.float32), name)


def build_yolo_like(path: Path, *, side: int = INPUT_SIDE, seed: int = 14) -> Path:
    """Write the benchmark detector to ``path`` (see the module doc); returns ``path``."""
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    chans = [3, 16, 32, 6]
    inits, nodes = [], []
    x = "images"
    for i in range(3):
        cin, cout = chans[i], chans[i + 1]
        w = rng.normal(0.0, (2.0 / (9 * cin)) ** 0.5, (cout, cin, 3, 3))
        b = np.zeros(cout) if i < 2 else np.array([0, 0, 0, 0, SCORE_BIAS, SCORE_BIAS])
        inits += [_init(f"w{i}", w), _init(f"b{i}", b)]
        y = f"conv{i}"
        nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [y], kernel_shape=[3, 3],
                                      strides=[2, 2], pads=[1, 1, 1, 1]))
        if i < 2:
            nodes.append(helper.make_node("Relu", [y], [f"relu{i}"]))
            y = f"relu{i}"
        x = y
    cells = (side // 8) ** 2
    inits += [
        onnx.numpy_helper.from_array(np.array([0, 6, cells], np.int64), "shape"),
        _init("scale", np.array([side, side, side / 4, side / 4, 1, 1]).reshape(1, 6, 1)),
    ]
    nodes += [
        helper.make_node("Reshape", [x, "shape"], ["flat"]),
        helper.make_node("Sigmoid", ["flat"], ["sig"]),
        helper.make_node("Mul", ["sig", "scale"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "bench_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, side, side])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 6, cells])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"task": "detect", "names": "{0: 'a', 1: 'b'}"})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_counter_video(path: Path, frames: int, *, size: tuple[int, int] = (640, 480), fps: int = 30,
                       codec: str = "mp4v") -> Path:
    """A ``frames``-frame video whose frame ``i`` carries ``i`` in its pixels (see
    :func:`aisp.bench.onnx_workload.read_counter`), written with OpenCV (``mp4v`` by default)."""
    import cv2

    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {codec} video to {path}")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h // 8, w // 8, 3), np.uint8)
    base = cv2.resize(base, (w, h), interpolation=cv2.INTER_LINEAR)
    try:
        for i in range(frames):
            img = np.roll(base, i * 3, axis=1)
            stamp_counter(img, i)
            writer.write(img)
    finally:
        writer.release()
    return path


_BITS = 16
_CELL = 16


def stamp_counter(img: np.ndarray, value: int) -> None:
    """Write ``value`` as 16 black/white 16x16 cells along the top row of ``img`` (in place)."""
    for bit in range(_BITS):
        on = (value >> bit) & 1
        img[:_CELL, bit * _CELL:(bit + 1) * _CELL] = 255 if on else 0


def read_counter(img: np.ndarray) -> int:
    """The value :func:`stamp_counter` wrote, read back after lossy compression."""
    value = 0
    for bit in range(_BITS):
        cell = img[4:_CELL - 4, bit * _CELL + 4:(bit + 1) * _CELL - 4]
        if float(cell.mean()) > 127:
            value |= 1 << bit
    return value
