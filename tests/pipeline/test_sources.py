"""Every source honours the same contract (a mixin run per implementation), plus each one's specifics."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from aisp.errors import SourceError
from aisp.pipeline.decode import OpenCVDecoder, PyAVDecoder, available_decoders, make_decoder
from aisp.pipeline.demo import DemoSource
from aisp.pipeline.source_factory import open_source
from aisp.pipeline.sources import (
    CameraSource,
    ImageSource,
    MemorySource,
    Source,
    UrlSource,
    VideoFileSource,
)
from tests.pipeline.helpers import make_images, write_video


class SourceContract:
    """Mixin: ``make(tmp_path)`` returns (an unopened finite source, its frame count)."""

    def make(self, tmp_path: Path) -> tuple[Source, int]:
        raise NotImplementedError

    def test_yields_rgb_uint8_frames_then_none(self, tmp_path: Path) -> None:
        source, n = self.make(tmp_path)
        with source:
            frames = list(source)
            assert source.read() is None
        assert len(frames) == n and source.frames_read == n
        for f in frames:
            assert f.image.dtype == np.uint8 and f.image.ndim == 3 and f.image.shape[2] == 3

    def test_timestamps_increase(self, tmp_path: Path) -> None:
        source, _ = self.make(tmp_path)
        with source:
            pts = [f.pts for f in source]
        assert all(p is not None for p in pts)
        assert pts == sorted(pts) and len(set(pts)) == len(pts)

    def test_is_finite_and_not_live(self, tmp_path: Path) -> None:
        source, n = self.make(tmp_path)
        source.open()
        try:
            assert source.live is False
            assert source.total_frames in (n, None)
        finally:
            source.close()
            source.close()  # idempotent


class TestMemorySource(SourceContract):
    def make(self, tmp_path):
        return MemorySource(make_images(5)), 5

    def test_live_loops_and_fail_after(self) -> None:
        src = MemorySource(make_images(2), live=True, fail_after=5)
        src.open()
        assert [int(src.read().image[0, 0, 0]) for _ in range(5)] == [0, 1, 0, 1, 0]
        with pytest.raises(SourceError, match="after 5 frames") as info:
            src.read()
        assert info.value.details["phase"] == "read"


class TestVideoFileSource(SourceContract):
    def make(self, tmp_path):
        return VideoFileSource(write_video(tmp_path / "v.mp4", n=12)), 12

    @pytest.mark.parametrize("decoder", available_decoders())
    def test_decoders_agree_on_pixels(self, tmp_path, decoder) -> None:
        path = write_video(tmp_path / "v.mp4", n=12)
        with VideoFileSource(path, decoder=decoder) as src:
            frames = list(src)
        assert len(frames) == 12
        means = [float(f.image.mean()) for f in frames]
        # frame i was written with brightness 8*i (lossy codec: within a few levels)
        assert means == pytest.approx([8.0 * i for i in range(12)], abs=4)
        assert frames[3].pts == pytest.approx(3 / 30, abs=1e-3)

    def test_truncated_file_reports_how_far_it_got(self, tmp_path) -> None:
        path = write_video(tmp_path / "v.mp4", n=60, faststart=True)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * 0.6)])
        src = VideoFileSource(path)
        src.open()
        got = 0
        with pytest.raises(SourceError, match="truncated or corrupt") as info:
            while src.read() is not None:
                got += 1
        src.close()
        assert 0 < got < 60
        assert info.value.details == {"phase": "read", "frames_read": got, "expected_frames": 60,
                                      "source": str(path)}

    def test_garbage_file_fails_at_open(self, tmp_path) -> None:
        path = tmp_path / "junk.mp4"
        path.write_bytes(b"\x00not a video" * 100)
        with pytest.raises(SourceError, match="cannot open") as info:
            VideoFileSource(path).open()
        assert info.value.details["phase"] == "open"


class TestImageSource(SourceContract):
    def make(self, tmp_path):
        paths = []
        for i, img in enumerate(make_images(3)):
            p = tmp_path / f"img{i}.png"
            cv2.imwrite(str(p), img)
            paths.append(p)
        return ImageSource(paths), 3

    def test_rgb_order(self, tmp_path) -> None:
        bgr = np.zeros((4, 4, 3), np.uint8)
        bgr[..., 2] = 200  # red in BGR
        cv2.imwrite(str(tmp_path / "red.png"), bgr)
        with ImageSource([tmp_path / "red.png"]) as src:
            assert tuple(src.read().image[0, 0]) == (200, 0, 0)

    def test_undecodable_image(self, tmp_path) -> None:
        (tmp_path / "bad.png").write_bytes(b"nope")
        with ImageSource([tmp_path / "bad.png"]) as src, pytest.raises(SourceError, match="cannot decode"):
            src.read()


class TestDemoSource(SourceContract):
    def make(self, tmp_path):
        return DemoSource(frames=4), 4

    def test_deterministic_640x480_with_ground_truth(self) -> None:
        a, b = DemoSource(), DemoSource()
        assert a.render(7).shape == (480, 640, 3)
        assert np.array_equal(a.render(7), b.render(7))
        assert not np.array_equal(a.render(7), a.render(8))
        for i in (0, 37, 120, 299):
            (x0, y0, x1, y1), = DemoSource.boxes_for(i)
            assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
            # the astronaut's face is where the box says: skin tones, not the coffee photo
            crop = a.render(i)[int(y0):int(y1), int(x0):int(x1)]
            ox, oy = DemoSource.sprite_origin(i)
            assert np.array_equal(crop, a._sprite[int(y0) - oy:int(y1) - oy, int(x0) - ox:int(x1) - ox])

    def test_live_is_endless_and_paced_by_the_injected_clock(self) -> None:
        now = [0.0]
        sleeps: list[float] = []

        def sleep(dt: float) -> None:
            sleeps.append(dt)
            now[0] += dt

        src = DemoSource(live=True, frames=2, clock=lambda: now[0], sleep=sleep)
        src.open()
        frames = [src.read() for _ in range(5)]  # more than `frames`: endless
        assert all(f is not None for f in frames) and src.total_frames is None
        assert sleeps == pytest.approx([1 / 30] * 4)
        assert frames[4].pts == pytest.approx(4 / 30)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [("demo", DemoSource), ("rtsp://127.0.0.1:1/x", UrlSource), ("http://127.0.0.1:1/mjpeg", UrlSource),
     ("/dev/video3", CameraSource), ("0", CameraSource), (2, CameraSource)],
)
def test_open_source_dispatch(spec, kind) -> None:
    src = open_source(spec)
    assert isinstance(src, kind)
    assert src.live is (kind is not DemoSource)


def test_open_source_files_folders_globs(tmp_path) -> None:
    for i, img in enumerate(make_images(3)):
        cv2.imwrite(str(tmp_path / f"f{i}.jpg"), img)
    video = write_video(tmp_path / "v.mp4", n=3)
    assert isinstance(open_source(str(video)), VideoFileSource)
    assert open_source(str(tmp_path)).total_frames == 3
    assert open_source(str(tmp_path / "f*.jpg")).total_frames == 3
    assert isinstance(open_source(tmp_path / "f0.jpg"), ImageSource)
    assert open_source("demo", live=True).live is True
    assert open_source(str(video), live=True).live is True


@pytest.mark.parametrize("spec", ["/no/such/file.mp4", "", "/no/such/*.png"])
def test_open_source_bad_specs_name_the_source(spec) -> None:
    with pytest.raises(SourceError) as info:
        open_source(spec)
    assert info.value.details["phase"] == "open"
    if spec:
        assert spec in info.value.message


def test_empty_folder(tmp_path) -> None:
    with pytest.raises(SourceError, match="no images in folder"):
        open_source(str(tmp_path))


def test_make_decoder_choices(tmp_path) -> None:
    assert isinstance(make_decoder("x.mp4", prefer="opencv"), OpenCVDecoder)
    if "pyav" in available_decoders():
        assert isinstance(make_decoder("x.mp4"), PyAVDecoder)
    with pytest.raises(ValueError, match="decoder expected"):
        make_decoder("x.mp4", prefer="gstreamer")


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "mpeg4"), (".avi", "mjpeg"), (".webm", "libvpx"),
                                               (".gif", "gif")])
def test_common_containers_decode_every_frame(tmp_path, suffix, codec) -> None:
    import av

    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = {"gif": "rgb8", "mjpeg": "yuvj420p"}.get(codec, "yuv420p")
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with open_source(str(path)) as src:
        frames = list(src)
    assert len(frames) == 8
    assert [round(float(f.image.mean()) / 30) for f in frames] == list(range(8))
