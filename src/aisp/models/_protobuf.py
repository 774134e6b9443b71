"""Fast conversion of MediaPipe ``NormalizedLandmarkList`` and ``Detection`` protos.

Reading a freshly parsed proto field by field from Python is slow: every first access builds a
wrapper object, a noticeable share of the inference itself (``docs/models.md`` has the figures).
Serialising the message again is cheap, and
the bytes are easy to read.


Landmarks: the serialised list is regular: one length-delimited record per
landmark, each holding fixed32 floats with one-byte tags (x=0x0d, y=0x15, z=0x1d, visibility=0x25,
presence=0x2d). When every record has the same layout, numpy reads the floats straight out of
the bytes. Any other layout (a field left unset, an unexpected field) falls back to
the field-by-field path, so the result is always the same.

Detections: :func:`detection_fields` walks the wire format once for the score, the relative
bounding box and the keypoints' x, y, skipping every other field, and falls back to
attribute access for anything it does not expect.

Both also take :class:`Serialized` bytes, which the lean MediaPipe call path
(:mod:`aisp.models._mp_graph`) reads straight out of the output packet, skipping the Python proto
parse and the serialising again; anything unexpected is parsed into the proto and read as above.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

__all__ = ["Serialized", "landmark_array", "detection_fields"]


class Serialized(bytes):
    """A serialised MediaPipe proto (``Detection`` or ``NormalizedLandmarkList``) as bytes."""

    __slots__ = ()


_float = struct.Struct("<f").unpack_from

_TAGS = (0x0D, 0x15, 0x1D, 0x25, 0x2D)  # x, y, z, visibility, presence: fixed32, one-byte tags
#: record size -> (number of float fields, expected bytes at the tag columns, tag columns)
_LAYOUTS: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
for _n in (3, 4, 5):
    _stride = 2 + 5 * _n
    _cols = np.array([0, 1, *[2 + 5 * j for j in range(_n)]])
    _LAYOUTS[_stride] = (_n, np.array([0x0A, _stride - 2, *_TAGS[:_n]], np.uint8), _cols)


def _fast(message: Any, count: int) -> np.ndarray | None:
    try:
        raw = message.SerializeToString()
    except AttributeError:
        return None
    return _fast_bytes(raw, count)


def _fast_bytes(raw: bytes, count: int) -> np.ndarray | None:
    if count == 0 or len(raw) % count:
        return None
    stride = len(raw) // count
    layout = _LAYOUTS.get(stride)
    if layout is None:
        return None
    nf, expected, cols = layout
    u8 = np.frombuffer(raw, np.uint8).reshape(count, stride)
    if not (u8[:, cols] == expected).all():
        return None
    # every float of every record, as one strided view over the bytes (x at 3, y at 8, ...)
    floats = np.ndarray((count, nf), "<f4", raw, offset=3, strides=(stride, 5))
    out = np.zeros((count, 4), np.float32)
    out[:, : min(nf, 4)] = floats[:, :4]
    return out


def landmark_array(message: Any) -> np.ndarray:
    """A (k, 4) float32 array of x, y, z, visibility (0 where unset) for one landmark list."""
    if isinstance(message, Serialized):
        # First record: tag 0x0A, then its one-byte length (every regular layout is < 128).
        if len(message) > 1 and message[0] == 0x0A and message[1] < 0x80:
            stride = message[1] + 2
            if len(message) % stride == 0:
                out = _fast_bytes(message, len(message) // stride)
                if out is not None:
                    return out
        from mediapipe.framework.formats import landmark_pb2

        message = landmark_pb2.NormalizedLandmarkList.FromString(message)
    points = message.landmark
    count = len(points)
    out = _fast(message, count)
    if out is not None:
        return out
    return np.asarray([(p.x, p.y, p.z, p.visibility) for p in points], np.float32).reshape(count, 4)


def _varint(b: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        c = b[pos]
        pos += 1
        result |= (c & 0x7F) << shift
        if c < 0x80:
            return result, pos
        shift += 7


def _skip(b: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(b, pos)[1]
    if wire == 5:
        return pos + 4
    if wire == 1:
        return pos + 8
    raise ValueError(wire)


def _location(b: bytes, pos: int, end: int, kps: list[float]) -> tuple[float, float, float, float] | None:
    box = None
    while pos < end:
        tag = b[pos]
        pos += 1
        if tag >= 0x80:
            raise ValueError(tag)
        if tag & 7 != 2:
            pos = _skip(b, pos, tag & 7)
            continue
        length, pos = _varint(b, pos)
        field = tag >> 3
        if field == 3:  # relative_bounding_box: xmin, ymin, width, height (fixed32, in order)
            if length != 20 or (b[pos], b[pos + 5], b[pos + 10], b[pos + 15]) != (0x0D, 0x15, 0x1D, 0x25):
                raise ValueError("bounding box layout")
            box = (
                _float(b, pos + 1)[0],
                _float(b, pos + 6)[0],
                _float(b, pos + 11)[0],
                _float(b, pos + 16)[0],
            )
        elif field == 5:  # relative_keypoints: x, y first
            if length < 10 or b[pos] != 0x0D or b[pos + 5] != 0x15:
                raise ValueError("keypoint layout")
            kps.append(_float(b, pos + 1)[0])
            kps.append(_float(b, pos + 6)[0])
        pos += length
    return box


def _fast_detection(b: bytes) -> tuple[float, tuple[float, float, float, float], list[float]] | None:
    pos, n = 0, len(b)
    score: float | None = None
    box = None
    kps: list[float] = []
    while pos < n:
        tag = b[pos]
        pos += 1
        if tag >= 0x80:
            return None
        field, wire = tag >> 3, tag & 7
        if wire == 2:
            length, pos = _varint(b, pos)
            if field == 3 and score is None and length >= 4:  # packed scores
                score = _float(b, pos)[0]
            elif field == 4:  # location_data
                box = _location(b, pos, pos + length, kps)
            pos += length
        elif field == 3 and wire == 5:  # an unpacked score
            if score is None:
                score = _float(b, pos)[0]
            pos += 4
        else:
            pos = _skip(b, pos, wire)
    if box is None:
        return None
    return (0.0 if score is None else score), box, kps


def detection_fields(det: Any) -> tuple[float, tuple[float, float, float, float], list[float]]:
    """Score, relative box (xmin, ymin, width, height) and flat keypoints [x0, y0, x1, y1, ...]."""
    if isinstance(det, Serialized):
        try:
            fast = _fast_detection(det)
        except (ValueError, IndexError, struct.error):
            fast = None
        if fast is not None:
            return fast
        from mediapipe.framework.formats import detection_pb2

        det = detection_pb2.Detection.FromString(det)
    try:
        fast = _fast_detection(det.SerializeToString())
    except (AttributeError, ValueError, IndexError, struct.error):
        fast = None
    if fast is not None:
        return fast
    loc = det.location_data
    bb = loc.relative_bounding_box
    kps: list[float] = []
    for k in loc.relative_keypoints:
        kps.append(k.x)
        kps.append(k.y)
    return (det.score[0] if len(det.score) else 0.0), (bb.xmin, bb.ymin, bb.width, bb.height), kps
