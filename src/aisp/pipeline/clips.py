"""Event clips: a pre-roll ring of encoded video per stream, and MP4 clips cut from it.

:class:`ClipRecorder` is a :class:`~aisp.pipeline.encode.PacketConsumer` attached for as long as
the stream runs with a ``record`` rule. It keeps the encoded packets since the last keyframe
before ``now - pre_seconds`` (bounded by ``max_ring_bytes`` too), so memory holds compressed
video, never raw frames.

An event that the stream's :class:`ClipRule` selects (:meth:`ClipRecorder.on_event`, called from
the event bus's thread) asks for a clip from ``pre_seconds`` before the event to ``post_seconds``
after it. On the encoder thread, the clip's file starts at the ring's last keyframe at or before
``event - pre_seconds`` (H.264 can only start at a keyframe) and an MP4 edit list starts playback
exactly at ``event - pre_seconds``; it takes every packet until ``post_seconds`` after the last
matching event or the last matching detection, whichever is later:

- an event that arrives while a clip is still being written extends it (overlapping events
  merge into one clip);
- :meth:`ClipRecorder.on_frame` (the stream's sink thread, every frame) notes the capture time
  of each frame that holds a detection the rule selects (its ``labels``, and with ``zones`` an
  object of this frame inside one of those zones), so an object that stays in view without
  new events keeps the clip open. It does this only while a clip is open or requested; otherwise
  it returns after two attribute reads. A rule that selects only ``stream`` events has no
  detections to follow.

A clip is at most ``max_seconds`` long. Clips are muxed straight to ``.mp4.part`` files (no
re-encoding) and indexed in a :class:`~aisp.pipeline.clip_index.ClipLibrary`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aisp.errors import ValidationError
from aisp.events import EVENT_TYPES, Event
from aisp.events.model import new_event_id
from aisp.pipeline.clip_index import ClipLibrary
from aisp.pipeline.encode import TIME_BASE, EncodedPacket, VideoFormat
from aisp.pipeline.frame_types import FrameResult

__all__ = ["ClipRule", "ClipRecorder", "DEFAULT_CLIP_TYPES"]

log = logging.getLogger("aisp.pipeline.clips")

#: Event types that record a clip when a rule names none (state changes of the stream do not).
DEFAULT_CLIP_TYPES = tuple(sorted(EVENT_TYPES - {"stream"}))


def _names(value: Any, fieldname: str, allowed: Iterable[str] | None = None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValidationError(f"record.{fieldname} must be a list of strings", field=f"record.{fieldname}",
                              value=value, expected="a list of strings")
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > 128:
            raise ValidationError(f"record.{fieldname} entries must be non-empty strings of at most 128 "
                                  "characters", field=f"record.{fieldname}", value=item,
                                  expected="a non-empty string")
        if allowed is not None and item not in allowed:
            raise ValidationError(f"record.{fieldname}: unknown event type {item!r}",
                                  field=f"record.{fieldname}", value=item, expected=sorted(allowed))
        out.append(item)
    return tuple(out)


def _seconds(value: Any, fieldname: str, default: float, maximum: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= maximum:
        raise ValidationError(f"record.{fieldname} must be a number of seconds in 0..{maximum:g}",
                              field=f"record.{fieldname}", value=value, expected=f"0..{maximum:g}")
    return float(value)


@dataclass(frozen=True)
class ClipRule:
    """Which events of a stream record a clip (every listed filter must match), and the margins."""

    types: tuple[str, ...] = DEFAULT_CLIP_TYPES
    labels: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    pre_seconds: float = 5.0
    post_seconds: float = 5.0

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> ClipRule:
        if not isinstance(data, Mapping):
            raise ValidationError("record must be an object", field="record", value=data,
                                  expected="{types?, labels?, zones?, pre_seconds?, post_seconds?}")
        unknown = set(data) - {"types", "labels", "zones", "pre_seconds", "post_seconds"}
        if unknown:
            raise ValidationError(f"record: unknown field(s) {sorted(unknown)}", field="record",
                                  value=sorted(unknown),
                                  expected="types, labels, zones, pre_seconds, post_seconds")
        return cls(types=_names(data.get("types"), "types", EVENT_TYPES) or DEFAULT_CLIP_TYPES,
                   labels=_names(data.get("labels"), "labels"), zones=_names(data.get("zones"), "zones"),
                   pre_seconds=_seconds(data.get("pre_seconds"), "pre_seconds", 5.0, 60.0),
                   post_seconds=_seconds(data.get("post_seconds"), "post_seconds", 5.0, 300.0))

    def matches(self, event: Event) -> bool:
        return (event.type in self.types and (not self.labels or event.label in self.labels)
                and (not self.zones or event.zone in self.zones))

    @property
    def follows_detections(self) -> bool:
        """Whether detections extend a clip: the rule selects some event about objects."""
        return any(t != "stream" for t in self.types)

    def matches_frame(self, result: FrameResult) -> bool:
        """Whether ``result`` holds a detection this rule selects: one of ``labels`` (any label
        when none are given) and, when ``zones`` are given, inside one of them on this frame
        (``result.zones``; names of lines have no inside and never match)."""
        labels = self.labels
        if self.zones:
            inside = result.zones
            if not inside:
                return False
            for name in self.zones:
                per = inside.get(name)
                if per and (not labels or any(per.get(label) for label in labels)):
                    return True
            return False
        for res in result.results.values():
            dets = res.detections
            if dets is None or not len(dets):
                continue
            if not labels:
                return True
            if any(name in labels for name in dets.label_names):  # as events name them
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"types": list(self.types), "labels": list(self.labels), "zones": list(self.zones),
                "pre_seconds": self.pre_seconds, "post_seconds": self.post_seconds}


@dataclass
class _Clip:
    id: str
    end: float  # engine clock: stop after the packet captured past this
    start_pts: int
    container: Any
    stream: Any
    events: list[str] = field(default_factory=list)
    frames: int = 0
    last_pts: int = 0
    first_captured: float = 0.0


class ClipRecorder:
    """One stream's pre-roll ring and clip writer (see the module doc)."""

    NAME = "clips"

    def __init__(self, stream_id: str, rule: ClipRule, library: ClipLibrary, *, max_seconds: float = 300.0,
                 max_ring_bytes: int = 32 << 20, clock: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], float] = time.time) -> None:
        self.stream_id = stream_id
        self.rule = rule
        self.library = library
        self.max_seconds = max_seconds
        self.max_ring_bytes = max_ring_bytes
        self.clock, self.wallclock = clock, wallclock
        self._ring: deque[EncodedPacket] = deque()
        self._ring_bytes = 0
        self._fmt: VideoFormat | None = None
        self._lock = threading.Lock()
        self._pending: list[tuple[float, str]] = []
        self._clip: _Clip | None = None
        self._follow = rule.follows_detections
        #: capture time of the last frame with a matching detection (written by the sink thread
        #: while a clip is open or requested, read by the encoder thread: one float, no lock)
        self._seen = -math.inf
        self.clips_written = self.clips_failed = self.events_matched = self.ring_trimmed = 0

    # -- events (the event bus thread) ----------------------------------------------------------
    def on_event(self, event: Event) -> bool:
        """Bus callback: queue a clip request when ``event`` is this stream's and the rule selects it."""
        if event.stream_id != self.stream_id or not self.rule.matches(event):
            return False
        if event.captured_at is not None:
            at = float(event.captured_at)
        else:  # wall time -> engine clock
            at = self.clock() - (self.wallclock() - float(event.time))
        with self._lock:
            self._pending.append((at, event.id))
            self.events_matched += 1
        return True

    # -- detections (the stream's sink thread) ---------------------------------------------------
    def on_frame(self, result: FrameResult) -> None:
        """Every frame, in order: while a clip is open or requested, note the frame's capture time
        when it holds a detection that the rule selects (the clip then runs until ``post_seconds``
        after it). Nothing else happens when no clip is open."""
        if not self._follow or (self._clip is None and not self._pending):
            return
        if self.rule.matches_frame(result):
            self._seen = result.frame.captured_at

    # -- PacketConsumer (the encoder thread) -----------------------------------------------------
    def on_start(self, fmt: VideoFormat) -> None:
        self._fmt = fmt

    def on_packet(self, packet: EncodedPacket) -> None:
        self._ring.append(packet)
        self._ring_bytes += len(packet.data)
        self._trim(packet.captured_at)
        post = self.rule.post_seconds
        seen = self._seen
        clip = self._clip
        if clip is not None and seen + post > clip.end:
            clip.end = seen + post  # a matching detection was seen while the clip was open
        if clip is not None and (packet.captured_at > clip.end
                                 or (packet.keyframe and packet.captured_at - clip.first_captured
                                     >= self.max_seconds)):
            self._finish()
            clip = None
        with self._lock:
            pending, self._pending = self._pending, []
        wrote_ring = False
        for at, event_id in sorted(pending):
            clip = self._clip
            # detections since the event (seen while it was pending) count for its clip too
            end = max(at, seen) + post
            if clip is not None and at <= clip.end:
                clip.end = max(clip.end, end)
                clip.events.append(event_id)
                self.library.add_events(clip.id, [event_id])
                continue
            if clip is not None:
                self._finish()
            self._start(at, end, event_id)
            wrote_ring = self._clip is not None
        if self._clip is not None and not wrote_ring:
            self._write(self._clip, packet)

    def on_stop(self) -> None:
        """The encoder stopped: finish the clip being written; the ring restarts with the next encoder."""
        if self._clip is not None:
            self._finish()
        self._ring.clear()
        self._ring_bytes = 0

    # -- internals --------------------------------------------------------------------------------
    def _trim(self, now: float) -> None:
        """Keep the packets from the last keyframe at or before ``now - pre_seconds``, within the
        byte cap (whole GOPs are dropped from the front)."""
        horizon = now - self.rule.pre_seconds
        ring = self._ring
        while True:
            second_key = next((i for i, p in enumerate(ring) if i > 0 and p.keyframe), None)
            if second_key is None:
                return
            over = self._ring_bytes > self.max_ring_bytes
            if ring[second_key].captured_at > horizon and not over:
                return
            if over:
                self.ring_trimmed += 1
            for _ in range(second_key):
                self._ring_bytes -= len(ring.popleft().data)

    def _start(self, at: float, end: float, event_id: str) -> None:
        import av

        if self._fmt is None or not self._ring:
            return
        want = at - self.rule.pre_seconds
        keys = [i for i, p in enumerate(self._ring) if p.keyframe]
        if not keys:
            return
        before = [i for i in keys if self._ring[i].captured_at <= want]
        first = before[-1] if before else keys[0]
        start = self._ring[first]
        # the file starts at that keyframe; an MP4 edit list starts playback at ``want`` exactly
        # (the frames between are decoded, not shown), so the pre-roll is what was asked for
        offset = max(start.pts, int(round(want / float(TIME_BASE)))) if before else start.pts
        first_captured = offset * float(TIME_BASE) if before else start.captured_at
        wall = self.wallclock() - (self.clock() - first_captured)
        clip_id = new_event_id(wall)
        _rec, part = self.library.new_clip(clip_id, self.stream_id, wall, [event_id])
        try:
            container = av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"})
            stream = container.add_mux_stream("h264", width=self._fmt.width, height=self._fmt.height)
            stream.time_base = TIME_BASE
        except Exception:
            log.exception("stream %s: cannot open clip %s", self.stream_id, part.name)
            self.library.finish(clip_id, ended_at=wall, duration=0.0, frames=0, ok=False)
            self.clips_failed += 1
            return
        clip = _Clip(clip_id, end, offset, container, stream, [event_id], first_captured=first_captured)
        self._clip = clip
        log.info("stream %s: clip %s started (%.1f s pre-roll)", self.stream_id, clip_id, at - first_captured)
        for packet in list(self._ring)[first:]:
            self._write(clip, packet)

    def _write(self, clip: _Clip, packet: EncodedPacket) -> None:
        import av

        pkt = av.Packet(packet.data)
        pkt.pts, pkt.dts = packet.pts - clip.start_pts, packet.dts - clip.start_pts
        pkt.time_base, pkt.stream, pkt.is_keyframe = TIME_BASE, clip.stream, packet.keyframe
        try:
            clip.container.mux(pkt)
        except Exception:
            log.exception("stream %s: writing clip %s failed", self.stream_id, clip.id)
            self._finish(ok=False)
            return
        if packet.pts >= clip.start_pts:  # frames before the edit list's start are not shown
            clip.frames += 1
            clip.last_pts = packet.pts

    def _finish(self, ok: bool = True) -> None:
        clip, self._clip = self._clip, None
        if clip is None:
            return
        try:
            clip.container.close()
        except Exception:
            log.exception("stream %s: closing clip %s failed", self.stream_id, clip.id)
            ok = False
        span = max(0.0, (clip.last_pts - clip.start_pts) * float(TIME_BASE))
        duration = span + (span / (clip.frames - 1) if clip.frames > 1 else 0.0)
        started = self.wallclock() - (self.clock() - clip.first_captured)
        self.library.finish(clip.id, ended_at=started + duration, duration=round(duration, 3),
                            frames=clip.frames, ok=ok and clip.frames > 0)
        if ok and clip.frames > 0:
            self.clips_written += 1
            log.info("stream %s: clip %s written (%.1f s, %d frames, %d event(s))", self.stream_id, clip.id,
                     duration, clip.frames, len(clip.events))
        else:
            self.clips_failed += 1

    def stats(self) -> dict[str, Any]:
        try:  # read from another thread: a consistent enough view, never an error
            seconds = self._ring[-1].captured_at - self._ring[0].captured_at
        except IndexError:
            seconds = 0.0
        return {"ring_packets": len(self._ring), "ring_bytes": self._ring_bytes,
                "ring_seconds": round(seconds, 3),
                "recording": self._clip is not None, "clips_written": self.clips_written,
                "clips_failed": self.clips_failed, "events_matched": self.events_matched,
                "ring_trimmed": self.ring_trimmed, "rule": self.rule.to_dict()}
