"""Resume by seeking: a file source started at frame N yields frames N, N+1, ... exactly once, in
order, whichever decoder, wherever the keyframes are (each frame carries its index in its pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aisp.bench.onnx_workload import make_counter_video, read_counter, stamp_counter
from aisp.pipeline import CallbackSink, run_job
from aisp.pipeline.decode import PyAVDecoder, start_pts
from aisp.pipeline.sources import ImageSource, MemorySource, VideoFileSource

av = pytest.importorskip("av")

N = 90


def _write_pyav(path: Path, n: int, *, gop: int, pts_of=lambda i: i, rate: int = 30, time_base=None) -> Path:
    """An mpeg4 video with a keyframe every ``gop`` frames; frame i's pts is ``pts_of(i)``."""
    from fractions import Fraction

    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (480 // 8, 640 // 8, 3), np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = gop
        if time_base is not None:
            stream.codec_context.time_base = Fraction(time_base)
        for i in range(n):
            img = np.ascontiguousarray(base[:240, :320])
            stamp_counter(img, i)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = pts_of(i)
            if time_base is not None:
                frame.time_base = Fraction(time_base)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _keyframes(path: Path) -> list[int]:
    """Indices (presentation order) of the keyframes."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        flags = [(f.pts, f.key_frame) for f in c.decode(s)]
    order = sorted(range(len(flags)), key=lambda i: flags[i][0])
    return [rank for rank, i in enumerate(order) if flags[i][1]]


def _read_all(source) -> list[int]:
    out = []
    while (item := source.read()) is not None:
        out.append(read_counter(item.image))
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("seek")
    return {
        "mp4v_opencv": make_counter_video(d / "cv.mp4", N, size=(320, 240)),
        "sparse": _write_pyav(d / "sparse.mp4", N, gop=1000),  # one keyframe, at frame 0
        "gop10": _write_pyav(d / "gop10.mkv", N, gop=10),
    }


def _targets(keys: list[int]) -> list[int]:
    k = next((k for k in keys if k > 0), N // 2)
    return sorted({1, k - 1, k, k + 1, N // 2, N - 2, N - 1})


@pytest.mark.parametrize("name", ["mp4v_opencv", "sparse", "gop10"])
@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
def test_every_frame_from_the_target_exactly_once_in_order(videos, name: str, decoder: str) -> None:
    path = videos[name]
    keys = _keyframes(path)
    for target in [0, *_targets(keys)]:
        source = VideoFileSource(path, decoder=decoder)
        source.open()
        try:
            assert source.seek(target) == target
            got = _read_all(source)
        finally:
            source.close()
        assert got == list(range(target, N)), (name, decoder, target, got[:5])
        if decoder == "pyav" and target:
            assert source._decoder.seek_mode == "seek"  # a keyframe seek, not a decode from the start


def test_gop10_has_keyframes_every_ten_frames(videos) -> None:
    assert _keyframes(videos["gop10"])[:3] == [0, 10, 20]  # the targets above hit, precede and follow them
    assert _keyframes(videos["sparse"]) == [0]


def test_seek_past_the_end_yields_nothing(videos) -> None:
    source = VideoFileSource(videos["gop10"])
    source.open()
    try:
        source.seek(N + 5)
        assert source.read() is None  # and no "truncated" error: the frames were skipped on purpose
    finally:
        source.close()


@pytest.mark.parametrize("pts_of", [
    lambda i: i * 33 + (i % 2) * 20,  # jitter: a variable frame rate
    lambda i: i * 33 if i < 10 else (i + 5) * 33,  # a five-frame hole in the timestamps
])
def test_the_nth_frame_is_the_nth_decoded_whatever_the_timestamps(tmp_path, pts_of) -> None:
    path = _write_pyav(tmp_path / "vfr.mkv", 40, gop=5, pts_of=pts_of, time_base="1/1000")
    for start in (10, 17, 39):
        dec = PyAVDecoder(str(path))
        dec.open()
        try:
            got = [read_counter(img) for img, _ in dec.frames(start=start)]
        finally:
            dec.close()
        assert got == list(range(start, 40))
        assert dec.seek_mode == "seek"


def test_start_pts_is_the_nth_presentation_timestamp(videos) -> None:
    with av.open(str(videos["gop10"])) as c:  # Matroska: millisecond ticks, 33.3 per frame
        s = c.streams.video[0]
        pts = sorted(f.pts for f in c.decode(s))
        assert [start_pts(c, s, i) for i in (0, 1, 37, N - 1)] == [pts[0], pts[1], pts[37], pts[N - 1]]
        assert not isinstance(start_pts(c, s, N), int)  # the end marker: no frame N


def test_run_job_with_start_frame_processes_each_remaining_frame_once(videos, settings) -> None:
    seen: list[tuple[int, int]] = []
    sink = CallbackSink(lambda r: seen.append((r.frame.index, read_counter(r.frame.image))))
    summary = run_job(str(videos["mp4v_opencv"]), "fake", start_frame=37, every=2, settings=settings,
                      sinks=[sink])
    expected = list(range(37, N, 2))
    assert summary.error is None and summary.frames == len(expected)
    assert [i for i, _ in seen] == expected and [c for _, c in seen] == expected
    assert summary.frames_total == len(expected)


def test_memory_and_image_sources_seek(tmp_path) -> None:
    import cv2

    images = [np.full((8, 8, 3), i, np.uint8) for i in range(10)]
    mem = MemorySource(images)
    mem.open()
    assert mem.seek(7) == 7 and [int(x.image[0, 0, 0]) for x in mem] == [7, 8, 9]
    paths = []
    for i in range(5):
        p = tmp_path / f"{i}.png"
        cv2.imwrite(str(p), np.full((8, 8, 3), i * 10, np.uint8))
        paths.append(p)
    src = ImageSource(paths)
    src.open()
    assert src.seek(3) == 3 and [int(x.image[0, 0, 0]) for x in src] == [30, 40]
    with pytest.raises(ValueError, match="frame index"):
        src.seek(-1)


def test_packets_without_timestamps_decode_from_the_start(videos, monkeypatch) -> None:
    import aisp.pipeline.decode as decode

    real = decode.start_pts

    def no_timestamps(container, stream, start):
        real(container, stream, start)  # reads packets as the real one does, then gives up
        return None

    monkeypatch.setattr(decode, "start_pts", no_timestamps)
    dec = PyAVDecoder(str(videos["gop10"]))
    dec.open()
    try:
        got = [read_counter(img) for img, _ in dec.frames(start=23)]
    finally:
        dec.close()
    assert got == list(range(23, N)) and dec.seek_mode == "skip"
