"""Annotated video out: one H.264 encoder per stream, its packets fanned out to consumers.

Stages of one stream's video output, used only while a consumer is attached::

    EncodeSink.write (sink thread)  --(bounded hand-off: the newest frames; older ones are
                                       dropped and counted when encoding lags)-->
    encoder thread (one per stream, while any consumer is attached):
        RGB -> I420 -> libx264 (zerolatency, a keyframe every ``keyframe_seconds``)
        -> every consumer's ``on_packet``: the HLS segmenter, the clip recorder (both mux in
           memory or to a local file), the push output (a bounded queue to its own thread)

Timestamps are the frames' capture times (the engine clock) on a 90 kHz time base, so the video's
time is the camera's time: a dropped frame leaves a gap, nothing is stretched. Packets carry the
SPS/PPS in-band on every keyframe, so any consumer can start at any keyframe (MPEG-TS, MP4, FLV and
RTSP muxers all take them as they are).

A consumer is attached with :meth:`VideoOutput.attach` and told ``on_start(fmt)`` before its
first packet and ``on_stop()`` when the encoder stops (the stream stopped, or it was detached).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from aisp.pipeline.frame_types import FrameResult
from aisp.pipeline.sinks import Sink
from aisp.settings import Settings

__all__ = [
    "TIME_BASE",
    "EncodedPacket",
    "VideoFormat",
    "PacketConsumer",
    "EncoderOptions",
    "H264Encoder",
    "VideoOutput",
    "VideoOutputStats",
    "EncodeSink",
]

log = logging.getLogger("aisp.pipeline.video")

#: Time base of every encoded packet (MPEG-TS's clock).
TIME_BASE = Fraction(1, 90_000)
_TICKS = 90_000
#: How long the encoder thread waits for a frame before it looks at its consumers again.
_IDLE_WAIT_S = 0.5


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """One encoded H.264 access unit (Annex B), with its 90 kHz ``pts``/``dts``."""

    data: bytes
    pts: int
    dts: int
    keyframe: bool
    captured_at: float  # engine clock of the frame's capture
    index: int  # the frame's index at the source

    @property
    def seconds(self) -> float:
        return self.pts / _TICKS


@dataclass(frozen=True, slots=True)
class VideoFormat:
    width: int
    height: int
    codec: str = "h264"


class PacketConsumer(Protocol):
    """What the encoder feeds. Called on the encoder thread: must not block for long."""

    def on_start(self, fmt: VideoFormat) -> None: ...

    def on_packet(self, packet: EncodedPacket) -> None: ...

    def on_stop(self) -> None: ...


@dataclass(frozen=True)
class EncoderOptions:
    preset: str = "ultrafast"
    crf: int = 26
    threads: int = 1
    keyframe_seconds: float = 1.0
    nominal_fps: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> EncoderOptions:
        return cls(preset=settings.video_preset, crf=settings.video_crf, threads=settings.video_threads,
                   keyframe_seconds=settings.video_keyframe_seconds)


class H264Encoder:
    """libx264 through PyAV: RGB frames in, :class:`EncodedPacket` out.

    A keyframe is forced every ``keyframe_seconds`` of capture time (the GOP follows the clock,
    not a frame count, so dropped frames do not stretch segments); B-frames are off
    (``tune=zerolatency``), so ``dts == pts`` order and no frame waits in the encoder.
    """

    def __init__(self, width: int, height: int, options: EncoderOptions) -> None:
        import av

        if width % 2 or height % 2:
            raise ValueError(f"H.264 4:2:0 needs even dimensions, got {width}x{height}")
        self.width, self.height = width, height
        self.options = options
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = TIME_BASE
        ctx.framerate = Fraction(options.nominal_fps, 1)
        # a fallback GOP; keyframes are forced by time below
        ctx.gop_size = max(1, round(options.keyframe_seconds * options.nominal_fps * 2))
        ctx.options = {"preset": options.preset, "tune": "zerolatency", "crf": str(options.crf),
                       "threads": str(options.threads), "sc_threshold": "0"}
        ctx.open()
        self._ctx = ctx
        self._av = av
        self._last_pts = -1
        self._next_key: float | None = None
        self._meta: deque[tuple[int, float, int]] = deque()  # pts -> (captured_at, index)

    def encode(self, image: np.ndarray, captured_at: float, index: int) -> list[EncodedPacket]:
        import cv2

        av = self._av
        pts = max(int(round(captured_at * _TICKS)), self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        frame.pts = pts
        frame.time_base = TIME_BASE
        if self._next_key is None or captured_at >= self._next_key:
            frame.pict_type = av.video.frame.PictureType.I
            step = self.options.keyframe_seconds
            # keep to a fixed grid (segments of equal length) unless frames stopped for a while
            late = self._next_key is None or captured_at - self._next_key > step
            self._next_key = captured_at + step if late else self._next_key + step
        self._meta.append((pts, captured_at, index))
        return self._packets(self._ctx.encode(frame))

    def flush(self) -> list[EncodedPacket]:
        try:
            return self._packets(self._ctx.encode(None))
        except self._av.error.EOFError:  # already flushed
            return []

    def _packets(self, packets: Any) -> list[EncodedPacket]:
        out = []
        for p in packets:
            captured_at, index = p.pts / _TICKS, -1
            while self._meta and self._meta[0][0] <= p.pts:
                pts, cap, idx = self._meta.popleft()
                if pts == p.pts:
                    captured_at, index = cap, idx
            out.append(EncodedPacket(bytes(p), int(p.pts), int(p.dts if p.dts is not None else p.pts),
                                     bool(p.is_keyframe), captured_at, index))
        return out


@dataclass(frozen=True)
class VideoOutputStats:
    active: bool
    consumers: list[str]
    frames_in: int
    frames_encoded: int
    frames_dropped: int
    packets: int
    bytes: int
    encode_ms_avg: float | None
    width: int | None
    height: int | None
    restarts: int

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class VideoOutput:
    """One stream's encoder and its consumers. Thread-safe; the encoder thread runs only while a
    consumer is attached and the stream delivers frames."""

    def __init__(self, stream_id: str, options: EncoderOptions, *, queue_frames: int = 4,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if queue_frames < 1:
            raise ValueError(f"queue_frames expected >= 1, got {queue_frames!r}")
        self.stream_id = stream_id
        self.options = options
        self.clock = clock
        self._queue: deque[tuple[np.ndarray, float, int]] = deque()
        self._queue_max = queue_frames
        self._cond = threading.Condition()
        self._consumers: dict[str, PacketConsumer] = {}
        self._thread: threading.Thread | None = None
        self._pauses = 0  # bumped by pause(): the thread restarts its encoder and consumers
        self._closed = False
        self._ticks: list[Callable[[float], None]] = []
        self.frames_in = self.frames_encoded = self.frames_dropped = 0
        self.packets = self.bytes = self.restarts = 0
        self._encode_s = 0.0
        self._fmt: VideoFormat | None = None

    # -- consumers ---------------------------------------------------------------------------
    def attach(self, name: str, consumer: PacketConsumer) -> None:
        """Feed ``consumer`` from the next keyframe on (it gets ``on_start`` first)."""
        with self._cond:
            if self._closed:
                return
            self._consumers[name] = consumer
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"aisp-encode-{self.stream_id}",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def detach(self, name: str) -> None:
        """Stop feeding ``name``; the encoder thread calls its ``on_stop`` (if it had started)."""
        with self._cond:
            if self._consumers.pop(name, None) is not None:
                self._cond.notify_all()

    def attached(self, name: str) -> bool:
        with self._cond:
            return name in self._consumers

    def add_tick(self, fn: Callable[[float], None]) -> None:
        """Call ``fn(now)`` on the encoder thread after each frame and each idle wait (idle checks)."""
        with self._cond:
            self._ticks.append(fn)

    @property
    def active(self) -> bool:
        with self._cond:
            return bool(self._consumers)

    # -- frames (the sink thread) ------------------------------------------------------------
    def submit(self, image: np.ndarray, captured_at: float, index: int) -> bool:
        """Hand a frame to the encoder; never blocks. False when nobody consumes video."""
        with self._cond:
            if not self._consumers:
                return False
            self.frames_in += 1
            if len(self._queue) >= self._queue_max:
                self._queue.popleft()
                self.frames_dropped += 1
            self._queue.append((image, captured_at, index))
            self._cond.notify_all()
        return True

    def pause(self) -> None:
        """The stream stopped: drop queued frames; the consumers get ``on_stop`` and are restarted
        (``on_start``) with the next frame, from a fresh encoder."""
        with self._cond:
            self._queue.clear()
            self._pauses += 1
            self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Detach everyone and stop the thread."""
        with self._cond:
            self._closed = True
            self._consumers.clear()
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def stats(self) -> VideoOutputStats:
        with self._cond:
            fmt = self._fmt
            return VideoOutputStats(
                active=bool(self._consumers), consumers=sorted(self._consumers),
                frames_in=self.frames_in, frames_encoded=self.frames_encoded,
                frames_dropped=self.frames_dropped, packets=self.packets, bytes=self.bytes,
                encode_ms_avg=round(self._encode_s / self.frames_encoded * 1000, 3)
                if self.frames_encoded else None,
                width=fmt.width if fmt else None, height=fmt.height if fmt else None,
                restarts=self.restarts)

    # -- the encoder thread ------------------------------------------------------------------
    def _run(self) -> None:
        encoder: H264Encoder | None = None
        started: dict[str, PacketConsumer] = {}
        seen_pauses = 0
        try:
            while True:
                with self._cond:
                    if not self._queue and self._consumers and seen_pauses == self._pauses:
                        self._cond.wait(_IDLE_WAIT_S)
                    current = dict(self._consumers)
                    item = self._queue.popleft() if self._queue and current else None
                    paused = seen_pauses != self._pauses
                    seen_pauses = self._pauses
                    ticks = list(self._ticks)
                    if not current:
                        self._thread = None  # a later attach starts a new thread
                for name, consumer in list(started.items()):
                    if paused or current.get(name) is not consumer:
                        self._stop_consumer(name, consumer)
                        del started[name]
                if paused or not current:
                    encoder = None  # the next frame starts a fresh encoder (and keyframe)
                    self._set_fmt(None)
                if not current:
                    return
                if item is not None:
                    encoder = self._encode(item, encoder, current, started)
                now = self.clock()
                for tick in ticks:
                    try:
                        tick(now)
                    except Exception:
                        log.exception("stream %s: video output tick failed", self.stream_id)
        except Exception:
            log.exception("stream %s: the video encoder failed; video out stops", self.stream_id)
            with self._cond:
                self._consumers.clear()
        finally:
            for name, consumer in started.items():
                self._stop_consumer(name, consumer)
            with self._cond:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _encode(self, item: tuple[np.ndarray, float, int], encoder: H264Encoder | None,
                current: dict[str, PacketConsumer], started: dict[str, PacketConsumer]) -> H264Encoder:
        image, captured_at, index = item
        height, width = image.shape[:2]
        width, height = width - width % 2, height - height % 2
        if encoder is None or (encoder.width, encoder.height) != (width, height):
            if encoder is not None:
                self.restarts += 1
            for name, consumer in list(started.items()):
                self._stop_consumer(name, consumer)
            started.clear()
            encoder = H264Encoder(width, height, self.options)
            self._set_fmt(VideoFormat(width, height))
            log.info("stream %s: encoding %dx%d H.264 (%s, crf %s, %s thread(s))", self.stream_id, width,
                     height, self.options.preset, self.options.crf, self.options.threads)
        if image.shape[0] != height or image.shape[1] != width:
            image = np.ascontiguousarray(image[:height, :width])
        t0 = time.perf_counter()
        packets = encoder.encode(image, captured_at, index)
        spent = time.perf_counter() - t0
        with self._cond:
            self.frames_encoded += 1
            self._encode_s += spent
            self.packets += len(packets)
            self.bytes += sum(len(p.data) for p in packets)
        fmt = VideoFormat(encoder.width, encoder.height)
        for packet in packets:
            for name, consumer in current.items():
                if name not in started:
                    if not packet.keyframe:
                        continue
                    try:
                        consumer.on_start(fmt)
                    except Exception:
                        log.exception("stream %s: video consumer %s failed to start", self.stream_id, name)
                        continue
                    started[name] = consumer
                try:
                    consumer.on_packet(packet)
                except Exception:
                    log.exception("stream %s: video consumer %s failed", self.stream_id, name)
        return encoder

    def _stop_consumer(self, name: str, consumer: PacketConsumer) -> None:
        try:
            consumer.on_stop()
        except Exception:
            log.exception("stream %s: video consumer %s failed to stop", self.stream_id, name)

    def _set_fmt(self, fmt: VideoFormat | None) -> None:
        with self._cond:
            self._fmt = fmt


class EncodeSink(Sink):
    """The pipeline's side of a :class:`VideoOutput`: hands each annotated frame over, never
    blocking (the hand-off is bounded; the encoder drops the oldest frames when it lags).
    ``on_frame`` (optional) sees every result first, on the sink thread (the clip recorder's
    detection watch); it must return at once."""

    needs_image = True

    def __init__(self, output: VideoOutput, on_frame: Callable[[FrameResult], None] | None = None) -> None:
        self.output = output
        self._on_frame = on_frame

    def write(self, result: FrameResult) -> None:
        if self._on_frame is not None:
            self._on_frame(result)
        image = result.annotated if result.annotated is not None else result.frame.image
        self.output.submit(image, result.frame.captured_at, result.frame.index)

    def close(self) -> None:
        self.output.pause()

    def __repr__(self) -> str:
        return f"EncodeSink({self.output.stream_id!r})"
