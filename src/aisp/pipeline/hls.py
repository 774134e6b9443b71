"""HLS from the encoded packets: MPEG-TS segments in a bounded in-memory ring, and the playlist.

:class:`HlsSegmenter` is a :class:`~aisp.pipeline.encode.PacketConsumer`. Each segment starts at a
keyframe (one every ``keyframe_seconds``, so a segment is one keyframe interval long) and is muxed
by PyAV's MPEG-TS muxer into memory. A segment is published (and shows in the playlist) once the
next keyframe closes it. The ring keeps ``segments`` segments for the playlist plus a few more,
so that a player that read the previous playlist can still fetch what it listed.

MPEG-TS, not fMP4: every HLS player (hls.js in Chromium, Safari, VLC, ffmpeg/ffprobe, Home
Assistant's stream component) plays it, and each segment is self-contained.

:class:`HlsSession` decides when HLS runs: a request ``touch()``es it, which attaches the segmenter
to the stream's :class:`~aisp.pipeline.encode.VideoOutput`; after ``idle_timeout`` seconds
without a request the encoder thread's tick detaches it (and the encoder stops when nobody else
needs it).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aisp.pipeline.encode import TIME_BASE, EncodedPacket, VideoFormat, VideoOutput

__all__ = ["HlsSegment", "HlsSegmenter", "HlsSession"]

log = logging.getLogger("aisp.pipeline.video")

#: Segments kept beyond the playlist window, for players that read an older playlist.
_SPARE = 3


@dataclass(frozen=True)
class HlsSegment:
    seq: int
    data: bytes
    duration: float  # seconds
    first_captured_at: float  # engine clock of the first frame
    published_at: float  # engine clock when it entered the playlist
    frames: int
    discontinuity: bool = False
    #: discontinuities up to and including this segment (EXT-X-DISCONTINUITY-SEQUENCE)
    discontinuity_seq: int = 0


class _TsWriter:
    """One MPEG-TS segment being muxed into memory."""

    def __init__(self, fmt: VideoFormat) -> None:
        import av

        self.buf = io.BytesIO()
        self.container = av.open(self.buf, "w", format="mpegts")
        self.stream = self.container.add_mux_stream("h264", width=fmt.width, height=fmt.height)
        self.stream.time_base = TIME_BASE
        self._av = av
        self.frames = 0
        self.first: EncodedPacket | None = None

    def write(self, packet: EncodedPacket) -> None:
        pkt = self._av.Packet(packet.data)
        pkt.pts, pkt.dts, pkt.time_base, pkt.stream = packet.pts, packet.dts, TIME_BASE, self.stream
        pkt.is_keyframe = packet.keyframe
        self.container.mux(pkt)
        self.frames += 1
        if self.first is None:
            self.first = packet

    def close(self) -> bytes:
        self.container.close()
        return self.buf.getvalue()


class HlsSegmenter:
    """Cuts packets into MPEG-TS segments at keyframes; serves the playlist and the segments."""

    def __init__(self, *, segments: int = 6, target_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if segments < 2:
            raise ValueError(f"segments expected >= 2, got {segments!r}")
        self.window = segments
        self.target_seconds = target_seconds
        self.clock = clock
        self._cond = threading.Condition()
        self._ring: deque[HlsSegment] = deque(maxlen=segments + _SPARE)
        self._seq = 0
        self._writer: _TsWriter | None = None
        self._fmt: VideoFormat | None = None
        self._discontinuity = False
        self._disc_count = 0
        self.published = 0
        self._closed = False

    # -- PacketConsumer (the encoder thread) -------------------------------------------------
    def on_start(self, fmt: VideoFormat) -> None:
        with self._cond:
            self._discontinuity = self._seq > 0  # a new encoder after a pause or a size change
            self._fmt = fmt
            self._closed = False

    def on_packet(self, packet: EncodedPacket) -> None:
        if packet.keyframe and self._writer is not None and self._writer.first is not None:
            self._publish(end_pts=packet.pts)
        if self._writer is None:
            if not packet.keyframe or self._fmt is None:
                return
            self._writer = _TsWriter(self._fmt)
        self._writer.write(packet)

    def on_stop(self) -> None:
        """The encoder stopped: the open segment is dropped (it has no end); the ring stays for
        players still reading it, until :meth:`reset`."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as exc:  # pragma: no cover - closing a memory muxer
                log.debug("closing an HLS segment failed: %s", exc)
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _publish(self, end_pts: int) -> None:
        writer, self._writer = self._writer, None
        assert writer is not None and writer.first is not None
        data = writer.close()
        duration = (end_pts - writer.first.pts) * float(TIME_BASE)
        with self._cond:
            self._disc_count += int(self._discontinuity)
            segment = HlsSegment(self._seq, data, duration, writer.first.captured_at, self.clock(),
                                 writer.frames, self._discontinuity, self._disc_count)
            self._discontinuity = False
            self._ring.append(segment)
            self._seq += 1
            self.published += 1
            self._cond.notify_all()

    # -- readers (request threads) ----------------------------------------------------------
    def reset(self) -> None:
        """Forget every segment (HLS stopped); a new session starts at sequence 0 again."""
        with self._cond:
            self._ring.clear()
            self._seq = 0
            self._discontinuity = False
            self._disc_count = 0

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the playlist lists at least one segment."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._ring), timeout)

    def segment(self, seq: int) -> HlsSegment | None:
        with self._cond:
            for seg in self._ring:
                if seg.seq == seq:
                    return seg
        return None

    def playlist(self, segment_uri: Callable[[int], str]) -> str | None:
        """The live media playlist (the newest ``window`` segments), or None before the first."""
        with self._cond:
            segments = list(self._ring)[-self.window:]
        if not segments:
            return None
        target = max(1, round(max(s.duration for s in segments)))  # EXTINF rounded <= target
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
                 f"#EXT-X-MEDIA-SEQUENCE:{segments[0].seq}",
                 f"#EXT-X-DISCONTINUITY-SEQUENCE:{segments[0].discontinuity_seq}"]
        for seg in segments:
            if seg.discontinuity and seg is not segments[0]:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f"#EXTINF:{seg.duration:.3f},")
            lines.append(segment_uri(seg.seq))
        return "\n".join(lines) + "\n"

    def stats(self) -> dict[str, Any]:
        with self._cond:
            ring = list(self._ring)
        return {"segments": len(ring), "published": self.published,
                "bytes": sum(len(s.data) for s in ring),
                "last_segment_seconds": round(ring[-1].duration, 3) if ring else None}


class HlsSession:
    """Starts HLS on a stream's first request and stops it after ``idle_timeout`` seconds without
    one (the check runs on the encoder thread's tick: no thread of its own)."""

    NAME = "hls"

    def __init__(self, output: VideoOutput, segmenter: HlsSegmenter, *, idle_timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.output = output
        self.segmenter = segmenter
        self.idle_timeout = idle_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._last_request: float | None = None
        self.starts = self.idle_stops = 0
        output.add_tick(self._tick)

    @property
    def running(self) -> bool:
        return self.output.attached(self.NAME)

    def touch(self) -> None:
        """A viewer asked for the playlist or a segment: start HLS if it is not running."""
        with self._lock:
            self._last_request = self.clock()
            start = not self.output.attached(self.NAME)
            if start:
                self.starts += 1
                self.segmenter.reset()
                self.output.attach(self.NAME, self.segmenter)
        if start:
            log.info("stream %s: HLS started", self.output.stream_id)

    def stop(self) -> None:
        with self._lock:
            self._last_request = None
            running = self.output.attached(self.NAME)
            self.output.detach(self.NAME)
        if running:
            log.info("stream %s: HLS stopped", self.output.stream_id)

    def _tick(self, now: float) -> None:
        with self._lock:
            last = self._last_request
            idle = last is not None and now - last > self.idle_timeout and self.output.attached(self.NAME)
            if idle:
                self._last_request = None
                self.idle_stops += 1
                self.output.detach(self.NAME)
        if idle:
            log.info("stream %s: HLS idle for %.0f s; stopped", self.output.stream_id, self.idle_timeout)
