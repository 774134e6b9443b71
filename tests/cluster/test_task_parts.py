"""The parts of a split task that need no cluster: the plan, the range source, the merger."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aisp.cluster.range_source import RangeSource
from aisp.cluster.task_merge import STAGING, RangeMerger
from aisp.cluster.task_plan import FrameRange, VideoIndex, plan_ranges
from aisp.cluster.task_worker import RangeResult
from aisp.pipeline.sources import MemorySource


@pytest.mark.parametrize(("index", "workers", "kwargs", "expect"), [
    (VideoIndex(100, tuple(range(0, 100, 10))), 2, {}, [0, 20, 40, 50, 70, 80]),
    (VideoIndex(100, (0,)), 4, {}, [0]),  # one keyframe: one range
    (VideoIndex(100, ()), 4, {}, [0]),  # no keyframe known: one range
    (VideoIndex(100, tuple(range(0, 100, 10))), 1, {"per_worker": 1}, [0]),
    (VideoIndex(5, tuple(range(5))), 4, {}, [0, 1, 2, 3, 4]),  # never more ranges than frames
    (VideoIndex(100, tuple(range(0, 100, 10))), 2, {"start": 95}, [95]),  # resumed near the end
    (VideoIndex(100, tuple(range(0, 100, 10))), 2, {"start": 100}, []),  # nothing left
])
def test_plan_starts(index: VideoIndex, workers: int, kwargs: dict[str, Any], expect: list[int]) -> None:
    ranges = plan_ranges(index, workers, **kwargs)
    assert [r.start for r in ranges] == expect
    assert [r.index for r in ranges] == list(range(len(ranges)))
    if ranges:
        assert ranges[-1].end is None
        assert all(a.end == b.start for a, b in zip(ranges, ranges[1:], strict=False))


@pytest.mark.parametrize(("args", "kwargs", "raises"), [
    ((0,), {}, pytest.raises(ValueError, match="workers")),
    ((1,), {"every": 0}, pytest.raises(ValueError, match="every")),
    ((1,), {"start": -1}, pytest.raises(ValueError, match="start")),
    ((1,), {}, nullcontext()),
])
def test_plan_refuses_bad_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], raises: Any) -> None:
    with raises:
        plan_ranges(VideoIndex(10, (0, 5)), *args, **kwargs)


def test_a_range_without_a_frame_of_the_grid_is_folded_into_the_one_before() -> None:
    # keyframes every 2 frames, every=5: [2, 4) holds no frame of the grid 0, 5, 10, ...
    ranges = plan_ranges(VideoIndex(12, (0, 2, 4, 6, 8, 10)), 3, per_worker=2, every=5)
    assert all(r.first % 5 == 0 and r.start <= r.first and (r.end is None or r.first < r.end) for r in ranges)
    with pytest.raises(ValueError, match="bad frame range"):
        FrameRange(0, 4, 5, 6)


def test_range_source_stops_at_end_and_keeps_global_indexes() -> None:
    images = [np.full((4, 4, 3), i, np.uint8) for i in range(10)]
    source = RangeSource(MemorySource(images), 7)
    source.open()
    assert source.total_frames == 7 and source.seek(3) == 3
    got = []
    while (item := source.read()) is not None:
        got.append(int(item.image[0, 0, 0]))
    assert got == [3, 4, 5, 6] and source.frames_read == 7
    tail = RangeSource(MemorySource(images), None)
    tail.open()
    tail.seek(8)
    assert [int(f.image[0, 0, 0]) for f in tail] == [8, 9] and tail.total_frames == 10


def _result(index: int, frames: int, *, cancelled: bool = False) -> RangeResult:
    lines = b"".join(b'{"index":%d}\n' % (index * 10 + i) for i in range(frames))
    return RangeResult("t", index, frames, lines, b"video-%d" % index, cancelled=cancelled)


def test_merger_accepts_each_range_once_and_writes_in_frame_order(tmp_path: Path) -> None:
    merger = RangeMerger(tmp_path, 0, 3, [0, 10, 20])
    assert merger.accept(_result(2, 3)) and merger.accept(_result(1, 2))
    assert not (tmp_path / "events.part-000000000.jsonl").exists()  # range 0 missing: nothing promoted
    assert merger.frames == 5 and merger.saved_frames == 0
    assert not merger.accept(_result(1, 2))  # a redo that raced the first result: dropped
    assert not merger.accept(_result(0, 4, cancelled=True))  # a partial range is never accepted
    assert merger.accept(_result(0, 4)) and merger.done and merger.saved_frames == 9
    lines = (tmp_path / "events.part-000000000.jsonl").read_text().splitlines()
    assert lines == [f'{{"index":{i}}}' for i in (0, 1, 2, 3, 10, 11, 20, 21, 22)]
    assert sorted(p.name for p in tmp_path.glob("annotated.part-*.mp4")) == [
        "annotated.part-000000000.mp4", "annotated.part-000000010.mp4", "annotated.part-000000020.mp4"]
    merger.close()
    assert not (tmp_path / STAGING).exists()


def _bframe_video(path: Path, n: int, gop: int) -> Path:
    """MPEG-4 with B-frames (decode order differs from presentation order) and a counter per frame."""
    av = pytest.importorskip("av")
    from aisp.bench.onnx_workload import stamp_counter

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = 2
        for i in range(n):
            img = np.full((240, 320, 3), (i * 3) % 200, np.uint8)
            stamp_counter(img, i)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("gop", [7, 12])
def test_ranges_read_back_to_back_give_every_frame_once_with_b_frames(tmp_path: Path, gop: int) -> None:
    from aisp.bench.onnx_workload import read_counter
    from aisp.cluster.task_plan import scan_video
    from aisp.pipeline.decode import safe_options
    from aisp.pipeline.sources import VideoFileSource

    path = _bframe_video(tmp_path / "b.avi", 60, gop)
    index = scan_video(str(path))
    assert index.frames == 60 and index.keyframes[0] == 0 and len(index.keyframes) > 3
    seen: list[int] = []
    for r in plan_ranges(index, 3):
        source = RangeSource(VideoFileSource(path, decoder="pyav", options=safe_options(str(path))), r.end)
        source.open()
        try:
            assert source.seek(r.first) == r.first
            seen += [read_counter(item.image) for item in source]
        finally:
            source.close()
    assert seen == list(range(60))
