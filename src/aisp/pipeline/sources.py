"""Frame sources: the base class, its in-memory fake, and :func:`open_source`.

A source yields RGB ``uint8`` images (converted once, here) with their timestamps::

    Source                 .open() .read() -> SourceFrame | None .close() .interrupt()
    ├── MemorySource       the fake: a list of images (finite, or looping when live)
    ├── VideoFileSource    mp4/mkv/avi/webm/gif... decoded by PyAV (OpenCV fallback)
    ├── ImageSource        one image, a folder or a glob of images
    ├── CameraSource       /dev/videoN or an index, via OpenCV (live)
    ├── UrlSource          rtsp:// and http(s):// (MJPEG, HLS) via PyAV (live)
    └── DemoSource         aisp.pipeline.demo: a face moving over a photo, known boxes

:func:`~aisp.pipeline.source_factory.open_source` turns a spec (a path, a URL, a camera,
``demo``) into one of these; it lives in its own module, above both this one and ``demo``, so
that neither imports the other back.

``read()`` returns None at the end of the source and raises :class:`SourceError` (with
``details["phase"]`` = "open" or "read") when it cannot go on. Live sources never end on
their own: None from a live source means it disconnected; the engine's watchdog reconnects.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from aisp.errors import SourceError
from aisp.netpolicy import redact_url
from aisp.pipeline.decode import Decoder, OpenCVDecoder, make_decoder

__all__ = [
    "SourceFrame",
    "Source",
    "MemorySource",
    "VideoFileSource",
    "ImageSource",
    "CameraSource",
    "UrlSource",
    "IMAGE_EXTENSIONS",
]

log = logging.getLogger("aisp.pipeline")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


class SourceFrame(NamedTuple):
    image: Any  # np.ndarray, RGB uint8 HxWx3
    pts: float | None


class Source(ABC):
    """Base class of every frame source (an I/O boundary; :class:`MemorySource` is its fake)."""

    #: True for cameras and network streams: the reader must never block on them.
    live: bool = False
    #: frames per second the source announces (None when unknown)
    fps: float | None = None
    #: number of frames, for files (None when unknown or endless)
    total_frames: int | None = None

    def __init__(self, name: str) -> None:
        self.name = name
        self.frames_read = 0

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire the device/file/connection. Raises SourceError(phase="open")."""

    @abstractmethod
    def read(self) -> SourceFrame | None:
        ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release everything; idempotent."""

    def interrupt(self) -> None:  # noqa: B027 - optional hook
        """Ask a blocked ``read()`` to return soon (watchdog stall); default: nothing to do."""

    def reconnect(self) -> None:
        self.close()
        self.open()

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[SourceFrame]:
        while True:
            item = self.read()
            if item is None:
                return
            yield item

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, live={self.live})"


class MemorySource(Source):
    """In-memory frames: the fake source for tests. ``live=True`` loops forever.

    ``fail_after=n`` raises a read error after n frames (a truncated file, a dropped link).
    """

    def __init__(
        self,
        images: Sequence[Any],
        *,
        live: bool = False,
        fps: float | None = 30.0,
        name: str = "memory",
        fail_after: int | None = None,
    ) -> None:
        super().__init__(name)
        if not images:
            raise SourceError("memory source needs at least one image", source=name,
                              details={"phase": "open"})
        self._images = list(images)
        self.live = live
        self.fps = fps
        self.total_frames = None if live else len(self._images)
        self.fail_after = fail_after
        self.opened = 0
        self.closed = 0
        self._pos = 0

    def open(self) -> None:
        self.opened += 1

    def read(self) -> SourceFrame | None:
        if self.fail_after is not None and self.frames_read >= self.fail_after:
            raise SourceError(
                f"{self.name}: read failed after {self.frames_read} frames",
                source=self.name,
                details={"phase": "read", "frames_read": self.frames_read},
            )
        if self._pos >= len(self._images):
            if not self.live:
                return None
            self._pos = 0
        image = self._images[self._pos]
        pts = self.frames_read / self.fps if self.fps else None
        self._pos += 1
        self.frames_read += 1
        return SourceFrame(image, pts)

    def close(self) -> None:
        self.closed += 1


class _DecoderSource(Source):
    """A source backed by a :class:`Decoder` (files and URLs)."""

    def __init__(self, name: str, decoder: Decoder) -> None:
        super().__init__(name)
        self._decoder = decoder
        self._frames: Iterator[tuple[Any, float | None]] | None = None
        self._ended = False

    @property
    def decoder_name(self) -> str:
        return self._decoder.name

    def open(self) -> None:
        self._decoder.open()
        self.fps = self._decoder.fps
        self._frames = self._decoder.frames()
        self._ended = False

    def read(self) -> SourceFrame | None:
        if self._ended:
            return None
        if self._frames is None:
            raise SourceError(f"{self.name}: source is not open", source=self.name, details={"phase": "read"})
        try:
            image, pts = next(self._frames)
        except StopIteration:
            self._frames = None
            self._ended = True
            self._check_complete()
            return None
        except SourceError as exc:
            exc.details.setdefault("frames_read", self.frames_read)
            self._frames = None
            raise
        self.frames_read += 1
        return SourceFrame(image, pts)

    def _check_complete(self) -> None:
        """Hook for files: raise when the container ended before the frames it announced."""

    def close(self) -> None:
        self._frames = None
        self._decoder.close()


class VideoFileSource(_DecoderSource):
    """A video file. Every frame, in order; a file that ends early is reported as an error."""

    def __init__(self, path: str | os.PathLike[str], *, decoder: str = "auto",
                 options: dict[str, str] | None = None) -> None:
        path = Path(path)
        super().__init__(str(path), make_decoder(str(path), prefer=decoder, options=options))
        self.path = path

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(
                f"video file not found: {self.path}", source=str(self.path), details={"phase": "open"}
            )
        super().open()
        self.total_frames = self._decoder.expected_frames

    def _check_complete(self) -> None:
        expected = self.total_frames
        # Containers round their frame count; a shortfall of more than 1 frame is a truncation.
        if expected is not None and self.frames_read < expected - 1:
            raise SourceError(
                f"{self.path}: video ended after {self.frames_read} of {expected} frames "
                "(truncated or corrupt)",
                source=str(self.path),
                details={"phase": "read", "frames_read": self.frames_read, "expected_frames": expected},
            )


class ImageSource(Source):
    """One image or a sorted list of images (a folder or a glob). Finite, never live."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, name: str | None = None, fps: float = 1.0):
        super().__init__(name or (str(paths[0]) if len(paths) == 1 else f"{len(paths)} images"))
        if not paths:
            raise SourceError(f"no images in {self.name}", source=self.name, details={"phase": "open"})
        self.paths = [Path(p) for p in paths]
        self.total_frames = len(self.paths)
        self.fps = fps
        self._pos = 0

    def open(self) -> None:
        self._pos = 0
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise SourceError(
                f"image file not found: {missing[0]}", source=missing[0], details={"phase": "open"}
            )

    def read(self) -> SourceFrame | None:
        import cv2

        if self._pos >= len(self.paths):
            return None
        path = self.paths[self._pos]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SourceError(
                f"cannot decode image {path} (expected a JPEG/PNG/BMP/WebP/TIFF file)",
                source=str(path),
                details={"phase": "read", "frames_read": self.frames_read},
            )
        pts = self._pos / self.fps if self.fps else None
        self._pos += 1
        self.frames_read += 1
        return SourceFrame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), pts)


class CameraSource(_DecoderSource):
    """A camera (``/dev/videoN`` or an index) through OpenCV. Live."""

    live = True

    def __init__(self, device: int | str, *, read_timeout: float | None = 5.0) -> None:
        target: int | str = device
        if isinstance(device, str) and device.startswith("/dev/video") and device[10:].isdigit():
            target = int(device[10:])
        super().__init__(str(device), OpenCVDecoder(target, timeout=read_timeout))


class UrlSource(_DecoderSource):
    """A network stream: RTSP, HTTP(S) MJPEG or HLS, through PyAV (OpenCV fallback). Live by default.

    ``read_timeout`` bounds how long a read may block, so that a stalled server shows up as an
    error the watchdog turns into a reconnect.
    """

    def __init__(self, url: str, *, live: bool = True, read_timeout: float = 10.0, decoder: str = "auto",
                 options: dict[str, str] | None = None):
        opts: dict[str, str] = dict(options or {})
        if url.startswith(("rtsp://", "rtsps://")):
            opts.setdefault("rtsp_transport", "tcp")
        # the name is what logs and errors show: never the camera's password
        decoder_ = make_decoder(url, prefer=decoder, options=opts, timeout=read_timeout)
        super().__init__(redact_url(url), decoder_)
        self.live = live

    def open(self) -> None:
        super().open()
        self.total_frames = None if self.live else self._decoder.expected_frames
