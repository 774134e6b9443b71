"""Sinks: where a stream's results go, in frame order.

Each stream has one sink thread that calls ``write()`` for every :class:`FrameResult`, in
frame order, so a sink needs no locking of its own against the pipeline. ``write()`` must not
block for long. ``close()`` flushes and is idempotent; the engine calls it on stop, on Ctrl-C
and on error. A sink with ``needs_image = True`` gets ``result.annotated`` (RGB) filled in.

    Sink               base class
    ├── ListSink       the fake: keeps every result in a list
    ├── CallbackSink   calls a function
    ├── LatestResultSink  the latest result, with waiting for the next one (WebSocket)
    ├── MJPEGSink      the latest annotated frame as JPEG bytes (MJPEG over HTTP)
    ├── JsonlSink      one JSON line per frame
    └── VideoSink      annotated mp4 (H.264 through PyAV, else mp4v through OpenCV)
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from aisp.pipeline.frame_types import FrameResult

__all__ = [
    "Sink", "ListSink", "CallbackSink", "LatestResultSink", "MJPEGSink", "JsonlSink", "VideoSink",
    "FRAGMENTED_MP4", "fit_into",
]

log = logging.getLogger("aisp.pipeline")


class Sink(ABC):
    """Base class of the sinks (an I/O boundary; :class:`ListSink` is its fake)."""

    needs_image: bool = False

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources; called once before the first write."""

    @abstractmethod
    def write(self, result: FrameResult) -> None:
        ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release; idempotent."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ListSink(Sink):
    def __init__(self, *, needs_image: bool = False) -> None:
        self.needs_image = needs_image
        self.results: list[FrameResult] = []
        self.opened = False
        self.closed = False

    def open(self) -> None:
        self.opened = True

    def write(self, result: FrameResult) -> None:
        self.results.append(result)

    def close(self) -> None:
        self.closed = True


class CallbackSink(Sink):
    def __init__(self, fn: Callable[[FrameResult], Any], *, needs_image: bool = False) -> None:
        self._fn = fn
        self.needs_image = needs_image

    def write(self, result: FrameResult) -> None:
        self._fn(result)


class _Latest:
    """A value with a sequence number and a condition to wait for the next one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._value: Any = None
        self._closed = False

    def set(self, value: Any) -> None:
        with self._cond:
            self._seq += 1
            self._value = value
            self._cond.notify_all()

    def get(self) -> Any:
        with self._cond:
            return self._value

    def snapshot(self) -> tuple[int, Any]:
        with self._cond:
            return self._seq, self._value

    @property
    def seq(self) -> int:
        with self._cond:
            return self._seq

    def wait_next(self, after_seq: int, timeout: float | None) -> tuple[int, Any] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after_seq or self._closed, timeout)
            if self._seq > after_seq and self._value is not None:
                return self._seq, self._value
            return None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False


class LatestResultSink(Sink):
    """Keeps the latest result; ``wait_next(after_seq, timeout)`` returns ``(seq, result)`` or None."""

    def __init__(self) -> None:
        self._latest = _Latest()

    def open(self) -> None:
        self._latest.reopen()

    def write(self, result: FrameResult) -> None:
        self._latest.set(result)

    def get(self) -> FrameResult | None:
        return self._latest.get()

    @property
    def seq(self) -> int:
        return self._latest.seq

    def wait_next(self, after_seq: int = 0, timeout: float | None = None) -> tuple[int, FrameResult] | None:
        return self._latest.wait_next(after_seq, timeout)

    def close(self) -> None:
        self._latest.close()


class MJPEGSink(Sink):
    """The latest annotated frame as JPEG bytes, for MJPEG over HTTP.

    ``write`` only keeps a reference to the result; the frame is annotated and encoded on
    demand, once per frame, by the first subscriber that asks for it, so a stream nobody watches
    costs nothing: it does not ask the workers for annotated frames (``needs_image`` is False),
    and uses ``result.annotated`` when another sink made the workers draw it anyway.
    """

    needs_image = False

    def __init__(self, *, quality: int = 80) -> None:
        if not 1 <= quality <= 100:
            raise ValueError(f"quality expected 1..100, got {quality!r}")
        self.quality = quality
        self._latest = _Latest()
        self._encode_lock = threading.Lock()
        self._encoded: tuple[int, bytes] | None = None
        self.encoded_frames = 0

    def open(self) -> None:
        self._latest.reopen()

    def write(self, result: FrameResult) -> None:
        self._latest.set(result)

    def _jpeg(self, seq: int, result: FrameResult) -> bytes:
        import cv2  # lazy, as everywhere in this module: sinks import without OpenCV

        from aisp.pipeline.workers import annotate_frame  # the drawing the workers make for sinks

        with self._encode_lock:
            if self._encoded is not None and self._encoded[0] == seq:
                return self._encoded[1]
            image = result.annotated
            if image is None:
                image = annotate_frame(result.frame.image, result.results.values())
            ok, buf = cv2.imencode(
                ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
            )
            if not ok:  # pragma: no cover - cv2 encodes any uint8 image
                raise RuntimeError("JPEG encoding failed")
            self._encoded = (seq, buf.tobytes())
            self.encoded_frames += 1
            return self._encoded[1]

    def latest_jpeg(self) -> bytes | None:
        seq, result = self._latest.snapshot()
        return None if result is None else self._jpeg(seq, result)

    @property
    def seq(self) -> int:
        return self._latest.seq

    def wait_next(self, after_seq: int = 0, timeout: float | None = None) -> tuple[int, bytes] | None:
        got = self._latest.wait_next(after_seq, timeout)
        if got is None:
            return None
        seq, result = got
        return seq, self._jpeg(seq, result)

    def close(self) -> None:
        self._latest.close()


class JsonlSink(Sink):
    """One JSON object per line and frame (``FrameResult.to_dict()``), flushed every ``flush_every``."""

    def __init__(self, path: str | os.PathLike[str], *, flush_every: int = 30) -> None:
        self.path = Path(path)
        self.flush_every = max(1, flush_every)
        self.lines = 0
        self._fh: Any = None
        self._closed = False

    def open(self) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8")

    def write(self, result: FrameResult) -> None:
        if self._fh is None:
            self.open()
        self._fh.write(json.dumps(result.to_dict(), separators=(",", ":"), default=_json_default) + "\n")
        self.lines += 1
        if self.lines % self.flush_every == 0:
            self._fh.flush()

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.flush()
            fh.close()

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"


def _json_default(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return str(value)


class VideoSink(Sink):
    """Annotated frames to an mp4: H.264 through PyAV when it is installed, else mp4v via OpenCV.

    The writer opens on the first frame (its size is the video's size); a later frame of another
    size (a folder of mixed images) is scaled into it, keeping its aspect ratio, with black bars.
    With PyAV the file is a fragmented MP4 with a keyframe at least every second
    (``movflags=frag_keyframe+empty_moov+default_base_moof``): each fragment is complete on disk
    when the next keyframe starts, so a process killed mid-video leaves a file that plays up to
    its last fragment (at most a second is lost).
    """

    needs_image = True

    def __init__(self, path: str | os.PathLike[str], fps: float = 30.0, *, backend: str = "auto") -> None:
        if fps <= 0:
            raise ValueError(f"fps expected > 0, got {fps!r}")
        if backend not in ("auto", "pyav", "opencv"):
            raise ValueError(f"backend expected 'auto', 'pyav' or 'opencv', got {backend!r}")
        self.path = Path(path)
        self.fps = fps
        self.backend = backend
        self.frames = 0
        self.resized = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the video
        self.codec: str | None = None
        self._container: Any = None
        self._stream: Any = None
        self._writer: Any = None

    def _open_writer(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        use_av = self.backend == "pyav" or (self.backend == "auto" and importlib.util.find_spec("av"))
        if use_av and width % 2 == 0 and height % 2 == 0:
            import av

            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            container = av.open(str(self.path), mode="w", options=dict(FRAGMENTED_MP4))
            rate = Fraction(self.fps).limit_denominator(1001)
            gop = max(1, int(self.fps))  # a keyframe, so a fragment, at least every second
            options = {"preset": "ultrafast", "crf": "23"} if codec == "libx264" else {}
            stream = container.add_stream(codec, rate=rate, options=options)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.gop_size = gop
            self._container, self._stream, self.codec = container, stream, codec
            return
        import cv2

        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
        if not writer.isOpened():
            raise OSError(f"cannot open video writer for {self.path}")
        self._writer, self.codec = writer, "mp4v"

    def write(self, result: FrameResult) -> None:
        import cv2

        image = result.annotated if result.annotated is not None else result.frame.image
        height, width = image.shape[:2]
        if self._container is None and self._writer is None:
            self._open_writer(width, height)
            self.size = (width, height)
        elif (width, height) != self.size:
            image = fit_into(image, *self.size)  # type: ignore[misc]
            self.resized += 1
        if self._container is not None:
            import av

            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            frame.pts = self.frames
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        else:
            self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            try:
                for packet in self._stream.encode(None):
                    container.mux(packet)
            finally:
                container.close()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()

    def __repr__(self) -> str:
        return f"VideoSink({str(self.path)!r}, fps={self.fps})"


#: muxer options of a fragmented MP4 (see :class:`VideoSink`); each packet is flushed to the file
#: as it is muxed, so a finished fragment is on disk, not in a buffer, when the process dies
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}


def fit_into(image: Any, width: int, height: int) -> Any:
    """``image`` scaled to fit ``width`` x ``height`` with its aspect ratio kept, centred on black."""
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (nw, nh), interpolation=interp)
    canvas = np.zeros((height, width, 3), dtype=image.dtype)
    top, left = (height - nh) // 2, (width - nw) // 2
    canvas[top:top + nh, left:left + nw] = scaled
    return canvas
