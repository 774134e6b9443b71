"""Splitting a video task into frame ranges that start at keyframes.

::

    scan_video(path) ─► VideoIndex(frames, keyframes)      packets only: nothing is decoded
    plan_ranges(index, workers, start, every) ─► [FrameRange(index, start, end, first)]

A range that starts at a keyframe is decoded from its first frame without decoding anything
before it, so N workers decode N disjoint parts of the file and no frame is decoded twice. The
keyframe positions come from the container's packets (``packet.is_keyframe``), ranked by their
presentation timestamps, so a frame's index here is the index the pipeline gives it (the n-th
frame in presentation order; :func:`aisp.pipeline.decode.start_pts` counts the same way).

Sizing: about ``per_worker`` ranges for each worker slot of the cluster (default 3), cut at the
keyframe nearest to each ideal boundary. More ranges than workers means a slow node or a lost one
leaves a small part of the video to redo or to wait for (the straggler), at the cost of one seek
and one encoder start per range. A video with too few keyframes gets fewer ranges; one with none
after the start (or whose packets carry no timestamps) runs as one range.

``every`` keeps the first attempt's grid: a range's first processed frame (``first``) is the first
frame at or after its start with ``(frame - start) % every == 0``; a range holding no frame of the
grid is folded into the one before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aisp.errors import SourceError
from aisp.pipeline.decode import safe_options

__all__ = ["FrameRange", "VideoIndex", "plan_ranges", "scan_video", "single_range"]

#: ranges planned per worker slot: small stragglers, few seeks
DEFAULT_PER_WORKER = 3


@dataclass(frozen=True)
class VideoIndex:
    """What the container says without decoding: the frame count and the keyframe positions."""

    frames: int
    keyframes: tuple[int, ...]
    fps: float | None = None


@dataclass(frozen=True)
class FrameRange:
    """Source frames ``[start, end)`` (``end`` None: to the end of the file), processed from
    ``first`` on (``every``'s grid); ``index`` is the range's position in frame order."""

    index: int
    start: int
    end: int | None
    first: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.first < self.start or (self.end is not None and self.end <= self.first):
            raise ValueError(f"bad frame range {self!r}: expected 0 <= start <= first < end")


def scan_video(path: str) -> VideoIndex:
    """The frame count and keyframe indexes of the video file ``path`` (resolved by the source
    policy), from its packets. Opened with the same FFmpeg protocol whitelist as the pipeline."""
    import av

    try:
        with av.open(path, options=safe_options(path)) as container:
            if not container.streams.video:
                raise SourceError("the file has no video stream", source=path, details={"phase": "open"})
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            packets: list[tuple[int, bool]] = []
            timed = True
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                if packet.pts is None:
                    timed = False
                packets.append((packet.pts if packet.pts is not None else len(packets), packet.is_keyframe))
    except av.FFmpegError as exc:
        raise SourceError(f"cannot read the packets of the video: {exc}", source=path,
                          details={"phase": "open"}) from exc
    if not timed:  # no presentation order to rank by: no keyframe the pipeline can seek to exactly
        return VideoIndex(len(packets), (0,) if packets else (), float(rate) if rate else None)
    order = sorted(range(len(packets)), key=lambda i: packets[i][0])
    keys = tuple(rank for rank, i in enumerate(order) if packets[i][1])
    return VideoIndex(len(packets), keys, float(rate) if rate else None)


def _first_on_grid(frame: int, start: int, every: int) -> int:
    return start + math.ceil((frame - start) / every) * every


def single_range(start: int = 0) -> list[FrameRange]:
    """The whole video from ``start`` as one range (a task that must not be split)."""
    return [FrameRange(0, start, None, start)]


def plan_ranges(index: VideoIndex, workers: int, *, start: int = 0, every: int = 1,
                per_worker: int = DEFAULT_PER_WORKER) -> list[FrameRange]:
    """Ranges covering frames ``[start, index.frames)``, each (but the first) starting at a keyframe.

    Empty when nothing is left to process (``start`` at or past the end).
    """
    if workers < 1 or per_worker < 1 or every < 1 or start < 0:
        raise ValueError(f"expected workers, per_worker, every >= 1 and start >= 0, got "
                         f"{workers}, {per_worker}, {every}, {start}")
    total = index.frames
    if start >= total:
        return []
    wanted = max(1, min(workers * per_worker, total - start))
    candidates = [k for k in index.keyframes if start < k < total]
    bounds = [start]
    for j in range(1, wanted):
        # the ideal next boundary shares what is left evenly among the ranges left, so a cut
        # that the keyframes pushed early or late is made up by the next ones
        ideal = bounds[-1] + (total - bounds[-1]) / (wanted - j + 1)
        later = [k for k in candidates if k > bounds[-1]]
        if not later:
            break
        bounds.append(min(later, key=lambda k: (abs(k - ideal), k)))
    ranges: list[FrameRange] = []
    for i, a in enumerate(bounds):
        b = bounds[i + 1] if i + 1 < len(bounds) else None
        first = _first_on_grid(a, start, every)
        if (b is not None and first >= b) or first >= total:
            if ranges:  # no frame of the grid in [a, b): the range before takes it over
                prev = ranges.pop()
                ranges.append(FrameRange(prev.index, prev.start, b, prev.first))
            continue
        ranges.append(FrameRange(len(ranges), a, b, first))
    return ranges
