"""Push the encoded stream to an RTSP or RTMP server (MediaMTX, go2rtc, nginx-rtmp) via PyAV.

Stages::

    encoder thread --on_packet--> bounded queue (full: the packet is dropped and counted)
                                   --> push thread: connect (RTSP over TCP, or RTMP/FLV), wait for
                                       a keyframe, mux; on any error close, back off
                                       (initial, 2x, ... max) and reconnect

The frame path never waits for the network: the encoder only appends to the queue. While the
server is away, packets are dropped (counted) and the thread retries with backoff. The URL's
password never reaches a log line or a status: the caller hands in ``display``, the URL as
:func:`aisp.netpolicy.redact_url` shows it, and error texts have the URL and password replaced.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aisp.pipeline.encode import TIME_BASE, EncodedPacket, VideoFormat

__all__ = ["PushOutput", "PushStats", "PUSH_SCHEMES"]

log = logging.getLogger("aisp.pipeline.video")

PUSH_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps")
_STOP = object()
_START = object()


@dataclass(frozen=True)
class PushStats:
    url: str  # redacted
    state: str  # idle | connecting | connected | backoff | stopped
    connected: bool
    sent: int
    dropped: int
    connects: int
    failures: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _container_args(url: str, timeout_s: float) -> tuple[str, dict[str, str]]:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in PUSH_SCHEMES:
        raise ValueError(f"push URL scheme expected one of {PUSH_SCHEMES}, got {scheme!r}")
    if scheme.startswith("rtsp"):  # socket I/O timeout, in microseconds
        return "rtsp", {"rtsp_transport": "tcp", "timeout": str(int(timeout_s * 1_000_000))}
    return "flv", {}  # RTMP: the open timeout comes from av.open(timeout=...)


class PushOutput:
    """A :class:`~aisp.pipeline.encode.PacketConsumer` that sends to one push URL."""

    def __init__(self, url: str, *, display: str, queue_packets: int = 90, timeout: float = 5.0,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fmt_name, self._options = _container_args(url, timeout)
        self._url = url
        self.redacted = display
        self._password = urlsplit(url).password or None
        self.timeout = timeout
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.clock = clock
        self._queue: queue.Queue[Any] = queue.Queue(queue_packets)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._fmt: VideoFormat | None = None
        self._state = "idle"
        self.sent = self.dropped = self.connects = self.failures = 0
        self.last_error: str | None = None

    # -- PacketConsumer (encoder thread) -----------------------------------------------------
    def on_start(self, fmt: VideoFormat) -> None:
        with self._lock:
            self._fmt = fmt
            if self._thread is None:
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="aisp-push", daemon=True)
                self._thread.start()

    def on_packet(self, packet: EncodedPacket) -> None:
        self._offer(packet)

    def on_stop(self) -> None:
        """The encoder stopped (stream stopped or paused): drop the connection; a restart reconnects."""
        self._offer(_START)

    def _offer(self, item: Any) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += 1

    def close(self, timeout: float | None = None) -> None:
        """Stop the push thread (waits up to ``timeout``, default the connect timeout + 1 s)."""
        with self._lock:
            thread, self._thread = self._thread, None
        self._stopping.set()
        self._wake.set()
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass
        if thread is not None:
            thread.join(self.timeout + 1.0 if timeout is None else timeout)
        self._set_state("stopped")

    # -- state ---------------------------------------------------------------------------------
    def _set_state(self, state: str, error: str | None = None) -> None:
        with self._lock:
            self._state = state
            if error is not None:
                self.last_error = error

    def stats(self) -> PushStats:
        with self._lock:
            return PushStats(self.redacted, self._state, self._state == "connected", self.sent,
                             self.dropped, self.connects, self.failures, self.last_error)

    # -- the push thread -----------------------------------------------------------------------
    def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stopping.is_set():
            container = None
            try:
                container, stream = self._connect()
                delay = self.backoff_initial
                self._pump(container, stream)
            except _Stopped:
                break
            except Exception as exc:  # any network or muxer error: back off and reconnect
                message = self._scrub(str(exc))
                with self._lock:
                    self.failures += 1
                self._set_state("backoff", message)
                log.warning("push to %s failed: %s; retrying in %.1f s", self.redacted, message, delay)
            finally:
                if container is not None:
                    self._close_container(container)
            if self._stopping.is_set():
                break
            self._drain_for(delay)
            delay = min(self.backoff_max, delay * 2)
        self._set_state("stopped")

    def _connect(self) -> tuple[Any, Any]:
        import av

        self._set_state("connecting")
        self._wait_keyframe()  # connect only when there is something to send
        with self._lock:
            fmt = self._fmt
        assert fmt is not None
        container = av.open(self._url, "w", format=self.fmt_name, options=dict(self._options),
                            timeout=(self.timeout, self.timeout))
        try:
            stream = container.add_mux_stream("h264", width=fmt.width, height=fmt.height)
            stream.time_base = TIME_BASE
            container.start_encoding()
        except BaseException:
            self._close_container(container)
            raise
        with self._lock:
            self.connects += 1
        self._set_state("connected")
        log.info("pushing %dx%d H.264 to %s", fmt.width, fmt.height, self.redacted)
        return container, stream

    def _wait_keyframe(self) -> None:
        """Discard queued packets until a keyframe (kept in ``_pending``) or a stop."""
        self._pending: EncodedPacket | None = None
        while not self._stopping.is_set():
            try:
                item = self._queue.get(timeout=0.25)
            except queue.Empty:
                continue
            if item is _STOP:
                raise _Stopped
            if isinstance(item, EncodedPacket):
                if item.keyframe:
                    self._pending = item
                    return
                with self._lock:
                    self.dropped += 1
        raise _Stopped

    def _pump(self, container: Any, stream: Any) -> None:
        import av

        first_pts: int | None = None
        item: Any = self._pending
        while True:
            if item is _STOP:
                raise _Stopped
            if item is _START:  # the encoder restarted: reconnect with the new parameters
                return
            if isinstance(item, EncodedPacket):
                if first_pts is None:
                    first_pts = item.pts
                pkt = av.Packet(item.data)
                pkt.pts, pkt.dts = item.pts - first_pts, item.dts - first_pts
                pkt.time_base, pkt.stream, pkt.is_keyframe = TIME_BASE, stream, item.keyframe
                container.mux(pkt)
                with self._lock:
                    self.sent += 1
            item = self._next()

    def _next(self) -> Any:
        while True:
            try:
                return self._queue.get(timeout=0.25)
            except queue.Empty:
                if self._stopping.is_set():
                    return _STOP

    def _drain_for(self, seconds: float) -> None:
        """Wait ``seconds`` (or until stopped), dropping what the encoder queues meanwhile."""
        deadline = self.clock() + seconds
        while not self._stopping.is_set():
            left = deadline - self.clock()
            if left <= 0:
                return
            try:
                item = self._queue.get(timeout=min(left, 0.25))
            except queue.Empty:
                continue
            if item is _STOP:
                return
            if isinstance(item, EncodedPacket):
                with self._lock:
                    self.dropped += 1

    def _scrub(self, text: str) -> str:
        """An error text with the URL shown redacted and the password nowhere."""
        text = text.replace(self._url, self.redacted)
        return text.replace(self._password, "***") if self._password else text

    def _close_container(self, container: Any) -> None:
        try:
            container.close()
        except Exception as exc:  # the server is gone: nothing to flush to
            log.debug("push to %s: close failed: %s", self.redacted, self._scrub(str(exc)))
        self._set_state("idle" if not self._stopping.is_set() else "stopped")


class _Stopped(Exception):
    """Internal: the push output is closing."""
