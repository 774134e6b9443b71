"""Video decoding: PyAV (chosen) with an OpenCV fallback.

Frames are decoded with PyAV (threaded codec), taken out as planar YUV and converted to RGB once
with OpenCV's SIMD converter, the fastest of the paths compared in docs/pipeline.md ("Decoder
choice"); PyAV also gives exact presentation timestamps. When PyAV is not installed (it is the
``video`` extra), OpenCV decodes.

Sources given through the API open with :func:`safe_options`: an explicit FFmpeg
``protocol_whitelist`` for the source's scheme (a file opens only ``file``; an HTTP source only
HTTP(S) over TCP/TLS, and follows no redirect), so that a playlist, a concat script or a redirect
inside an allowed-looking source cannot make FFmpeg read local files or reach other protocols.
Error messages name the target with its URL password hidden (:func:`aisp.netpolicy.redact_url`).
"""

from __future__ import annotations

import importlib.util
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from aisp.errors import SourceError
from aisp.netpolicy import redact_url

__all__ = [
    "Decoder", "PyAVDecoder", "OpenCVDecoder", "available_decoders", "make_decoder", "yuv_frame_to_rgb",
    "safe_options", "PROTOCOL_WHITELISTS",
]

log = logging.getLogger("aisp.pipeline")


#: FFmpeg protocols a source may use, by its scheme ("file" for paths). Nested opens (HLS
#: segments, RTP over UDP, TLS under HTTPS) inherit the list; nothing else can be opened.
PROTOCOL_WHITELISTS: dict[str, str] = {
    "file": "file",
    "http": "http,https,tls,tcp,crypto",
    "https": "http,https,tls,tcp,crypto",
    "rtsp": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "rtsps": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "rtmp": "rtmp,rtmps,tcp,tls",
    "rtmps": "rtmp,rtmps,tcp,tls",
}


def safe_options(target: str) -> dict[str, str]:
    """The FFmpeg options an API-given ``target`` (a resolved path or a checked URL) opens with.

    Only these options reach FFmpeg: nothing from the caller. Raises ``SourceError`` for a
    scheme with no whitelist (the source policy refuses those first).
    """
    scheme = target.split("://", 1)[0].lower() if "://" in target else "file"
    # "file" is for plain (resolved) paths only: a file:// URL never reaches a decoder from the API
    allowed = None if scheme == "file" and "://" in target else PROTOCOL_WHITELISTS.get(scheme)
    if allowed is None:
        raise SourceError(f"no protocol whitelist for scheme {scheme!r}", source=redact_url(target),
                          details={"phase": "open"})
    options = {"protocol_whitelist": allowed}
    if scheme in ("http", "https"):
        options["max_redirects"] = "0"  # a redirect could lead to a host the policy refuses
    if scheme in ("rtsp", "rtsps"):
        options["rtsp_transport"] = "tcp"
    return options


def available_decoders() -> list[str]:
    names = []
    if importlib.util.find_spec("av") is not None:
        names.append("pyav")
    names.append("opencv")
    return names


def yuv_frame_to_rgb(frame: Any):  # av.VideoFrame -> np.ndarray
    """Fast RGB conversion of a PyAV frame (YUV 4:2:0 through OpenCV, else swscale)."""
    import cv2

    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")


class Decoder(ABC):
    """Opens a path or URL and yields ``(rgb image, pts seconds or None)``.

    ``expected_frames`` and ``fps`` are what the container announces (None when unknown).
    """

    name = "base"

    def __init__(self, target: str, *, options: dict[str, str] | None = None, timeout: float | None = None):
        self.target = target
        self.options = dict(options or {})
        self.timeout = timeout
        self.expected_frames: int | None = None
        self.fps: float | None = None
        self.width: int | None = None
        self.height: int | None = None
        #: the demuxer FFmpeg chose ("mov,mp4,...", "hls", "concat"); None when unknown
        self.format_name: str | None = None
        #: True when the container announces a duration or a frame count (finite media)
        self.finite: bool = False

    @abstractmethod
    def open(self) -> None:
        ...

    @abstractmethod
    def frames(self) -> Iterator[tuple[Any, float | None]]:
        ...

    @abstractmethod
    def close(self) -> None:
        ...


class PyAVDecoder(Decoder):
    name = "pyav"

    def __init__(self, target: str, **kwargs: Any) -> None:
        super().__init__(target, **kwargs)
        self._container: Any = None

    def open(self) -> None:
        import av

        kwargs: dict[str, Any] = {"options": self.options} if self.options else {}
        if self.timeout is not None:
            kwargs["timeout"] = (self.timeout, self.timeout)
        shown = redact_url(self.target)
        try:
            container = av.open(self.target, **kwargs)
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(
                f"cannot open {shown!r}: {_redact_exc(exc, self.target)}", source=shown,
                details={"phase": "open"},
            ) from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"{shown!r} has no video stream", source=shown, details={"phase": "open"})
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self._container = container
        self.expected_frames = int(stream.frames) if stream.frames else None
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.width = stream.codec_context.width or None
        self.height = stream.codec_context.height or None
        self.format_name = container.format.name if container.format is not None else None
        self.finite = bool(self.expected_frames) or bool(container.duration and container.duration > 0)

    def frames(self) -> Iterator[tuple[Any, float | None]]:
        import av

        container = self._container
        if container is None:
            raise RuntimeError("decoder is not open")
        stream = container.streams.video[0]
        try:
            for frame in container.decode(stream):
                pts = float(frame.time) if frame.time is not None else None
                yield yuv_frame_to_rgb(frame), pts
        except av.FFmpegError as exc:
            shown = redact_url(self.target)
            raise SourceError(
                f"error while decoding {shown!r}: {_redact_exc(exc, self.target)}", source=shown,
                details={"phase": "read"},
            ) from exc

    def close(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            container.close()


class OpenCVDecoder(Decoder):
    name = "opencv"

    def __init__(self, target: str | int, **kwargs: Any) -> None:
        super().__init__(str(target), **kwargs)
        self._source = target
        self._cap: Any = None

    def open(self) -> None:
        import cv2

        params: list[int] = []
        if self.timeout is not None:
            ms = int(self.timeout * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        cap = cv2.VideoCapture(self._source, cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            shown = redact_url(self.target)
            raise SourceError(f"cannot open {shown!r} with OpenCV", source=shown, details={"phase": "open"})
        self._cap = cap
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.expected_frames = count if count > 0 else None
        self.finite = self.expected_frames is not None
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if fps > 0 else None
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0) or None
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0) or None

    def frames(self) -> Iterator[tuple[Any, float | None]]:
        import cv2

        cap = self._cap
        if cap is None:
            raise RuntimeError("decoder is not open")
        while True:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                return
            msec = cap.get(cv2.CAP_PROP_POS_MSEC)
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (msec / 1000.0 if msec >= 0 else None)

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


def _redact_exc(exc: BaseException, target: str) -> str:
    """``str(exc)`` with the target's password hidden (FFmpeg errors quote the URL)."""
    text = str(exc)
    shown = redact_url(target)
    return text.replace(target, shown) if shown != target else text


def make_decoder(target: str, *, prefer: str = "auto", **kwargs: Any) -> Decoder:
    """The PyAV decoder when available (or asked for), else OpenCV."""
    names = available_decoders()
    if prefer not in ("auto", "pyav", "opencv"):
        raise ValueError(f"decoder expected 'auto', 'pyav' or 'opencv', got {prefer!r}")
    if prefer == "opencv" or "pyav" not in names:
        return OpenCVDecoder(target, **kwargs)
    return PyAVDecoder(target, **kwargs)
