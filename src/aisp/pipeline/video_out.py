""":class:`StreamVideo`: everything one stream does with its annotated video, built from settings.

It owns the stream's :class:`~aisp.pipeline.encode.VideoOutput` (one encoder) and the consumers
that may hang on it:

- HLS (:class:`~aisp.pipeline.hls.HlsSession`): attached on a viewer's request, detached when idle;
  ``hls_enabled`` says whether viewers may start it;
- push (:class:`~aisp.pipeline.push.PushOutput`): attached for as long as the stream exists;
- clips (:class:`~aisp.pipeline.clips.ClipRecorder`): attached for as long as the stream exists,
  its pre-roll ring filled continuously; the sink shows it every frame's detections
  (:meth:`~aisp.pipeline.clips.ClipRecorder.on_frame`), which keep an open clip going.

It outlives the engine's stream objects: a stopped and restarted stream gets a new
:meth:`sink` each time and keeps its HLS ring, push connection state and clip counters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from aisp.events import Event
from aisp.pipeline.clip_index import ClipLibrary
from aisp.pipeline.clips import ClipRecorder, ClipRule
from aisp.pipeline.encode import EncoderOptions, EncodeSink, VideoOutput
from aisp.pipeline.hls import HlsSegmenter, HlsSession
from aisp.pipeline.push import PushOutput
from aisp.settings import Settings

__all__ = ["StreamVideo"]


class StreamVideo:
    PUSH = "push"

    def __init__(self, stream_id: str, settings: Settings, *, hls: bool = False, push: str | None = None,
                 push_display: str | None = None, record: ClipRule | None = None,
                 library: ClipLibrary | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream_id = stream_id
        self.settings = settings
        self.output = VideoOutput(stream_id, EncoderOptions.from_settings(settings),
                                  queue_frames=settings.video_queue_frames, clock=clock)
        self.segmenter = HlsSegmenter(segments=settings.hls_segments,
                                      target_seconds=settings.video_keyframe_seconds, clock=clock)
        self.hls = HlsSession(self.output, self.segmenter, idle_timeout=settings.hls_idle_timeout_seconds,
                              clock=clock)
        self._lock = threading.Lock()
        self.hls_enabled = hls
        self.push: PushOutput | None = None
        if push:
            # push_display: the URL as shown (redacted by the caller; the pipeline has no policy module)
            self.push = PushOutput(push, display=push_display or "(push target)",
                                   queue_packets=settings.push_queue_packets,
                                   timeout=settings.push_timeout_seconds,
                                   backoff_initial=settings.push_reconnect_initial_seconds,
                                   backoff_max=settings.push_reconnect_max_seconds)
            self.output.attach(self.PUSH, self.push)
        self.recorder: ClipRecorder | None = None
        if record is not None and library is not None:
            self.recorder = ClipRecorder(stream_id, record, library, max_seconds=settings.clip_max_seconds,
                                         max_ring_bytes=int(settings.clip_ring_max_mb * (1 << 20)),
                                         clock=clock)
            self.output.attach(ClipRecorder.NAME, self.recorder)

    def sink(self) -> EncodeSink:
        """A new sink for the engine's stream (one per start of the stream)."""
        return EncodeSink(self.output, self.recorder.on_frame if self.recorder is not None else None)

    def set_hls(self, enabled: bool) -> None:
        with self._lock:
            self.hls_enabled = enabled
        if enabled:
            self.hls.touch()
        else:
            self.hls.stop()

    def on_event(self, event: Event) -> None:
        if self.recorder is not None:
            self.recorder.on_event(event)

    def close(self) -> None:
        self.output.close()
        if self.push is not None:
            self.push.close()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"encoder": self.output.stats().to_dict(),
                               "hls": {"enabled": self.hls_enabled, "running": self.hls.running,
                                       **self.segmenter.stats()}}
        if self.push is not None:
            out["push"] = self.push.stats().to_dict()
        if self.recorder is not None:
            out["clips"] = self.recorder.stats()
        return out
