"""A generated video of three coloured squares whose paths cross, and a detector that finds them
by colour (the "generated-shapes detector" of the tracking tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aisp.models.results import Detections

W, H, SIZE = 320, 240, 30
NAMES = ("red", "green", "blue")
COLORS = {"red": (230, 30, 30), "green": (30, 230, 30), "blue": (30, 30, 230)}  # RGB


def positions(i: int) -> dict[str, tuple[float, float]]:
    """Centre of each square on frame ``i`` (0..89): red goes right, green goes left on nearly the
    same row (they cross, green over red, around frame 44), blue goes down through both paths."""
    return {
        "red": (20 + 3.1 * i, 100.0),
        "green": (300 - 3.1 * i, 106.0),
        "blue": (160.0, 10 + 2.6 * i),
    }


def frame(i: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    for name in ("red", "blue", "green"):  # drawing order: green hides red where they overlap
        x, y = positions(i)[name]
        x1, y1 = int(round(x - SIZE / 2)), int(round(y - SIZE / 2))
        img[max(0, y1):max(0, y1 + SIZE), max(0, x1):max(0, x1 + SIZE)] = COLORS[name]
    return img


def frames(n: int = 90) -> list[np.ndarray]:
    return [frame(i) for i in range(n)]


def write_video(path: Path, n: int = 90, fps: int = 30) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"qscale": "2"}
        for img in frames(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def detect(img: np.ndarray) -> Detections:
    """One box per colour over its visible pixels (a colour hidden entirely gives no box). Every
    label is ``shape``, so the tracker cannot tell them apart by label; ``class_id`` is the colour's
    index in :data:`NAMES`, the ground truth the tests compare track ids with."""
    r, g, b = (img[:, :, c].astype(np.int16) for c in range(3))
    boxes, ids = [], []
    for k, name in enumerate(NAMES):
        c = {"red": r, "green": g, "blue": b}[name]
        others = (r + g + b) - c
        mask = (c > 150) & (others < 200)
        ys, xs = np.nonzero(mask)
        if len(xs) < 20:
            continue
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        ids.append(k)
    n = len(boxes)
    arr = np.asarray(boxes, np.float32).reshape(n, 4)
    return Detections(arr, np.full(n, 0.9, np.float32), np.asarray(ids, np.int32), None, ("shape",) * n)


def crossings(n: int = 90) -> int:
    """How many pairs of squares overlap at some frame (each pair crosses at most once here)."""
    pairs = set()
    for i in range(n):
        p = positions(i)
        for a in range(3):
            for b in range(a + 1, 3):
                (xa, ya), (xb, yb) = p[NAMES[a]], p[NAMES[b]]
                if abs(xa - xb) < SIZE and abs(ya - yb) < SIZE:
                    pairs.add((a, b))
    return len(pairs)


def identity_switches(assigned: list[dict[int, int]]) -> int:
    """``assigned[i]``: colour index -> track id on frame i (unconfirmed left out). A switch is a
    colour whose track id changes, or a track id that moves to another colour."""
    switches = 0
    last: dict[int, int] = {}
    owner: dict[int, int] = {}
    for frame_ids in assigned:
        for colour, tid in frame_ids.items():
            if colour in last and last[colour] != tid:
                switches += 1
            if tid in owner and owner[tid] != colour:
                switches += 1
            last[colour] = tid
            owner[tid] = colour
    return switches
