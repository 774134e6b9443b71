"""One stream: its spec, state machine, statistics, reorder buffer and built-in sinks.

A :class:`Stream` owns its lifecycle: every change of its state, its error and its stop and
reconnect requests goes through one of its methods, and the stages that run it (the reader,
the workers, the sink thread, the engine's monitor) call those methods, never its private
fields::

    request_stop()        stop reading (a user's stop, a shutdown, an abort)
    abort(reason)         fail now: the first reason wins, then request_stop()
    fail_at_end(reason)   end ``failed`` once the frames already read are out (a truncated file,
                          a sink that could not close), without stopping anything early
    request_reconnect()   the watchdog saw a stall: interrupt the source, the reader reconnects
    begin_reconnect() / reconnected()    the reader's side of a reconnect
    deliver(results)      workers hand results in (to the reorder buffer)
    finish()              the sink thread is done: ``stopped``, or ``failed`` after an abort
                          or a ``fail_at_end``

The engine hands in ``on_stop(stream)``, called by :meth:`request_stop`: it discards the queued
frames and closes the stream's queue, so that an abort raised by any stage drains the stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aisp.errors import ValidationError
from aisp.pipeline.event_producer import StreamAnalytics
from aisp.pipeline.frame_types import FrameResult
from aisp.pipeline.reorder import ReorderBuffer
from aisp.pipeline.scheduler import StreamQueue
from aisp.pipeline.sinks import LatestResultSink, MJPEGSink, Sink
from aisp.pipeline.sources import Source
from aisp.pipeline.stats import StreamMeter
from aisp.pipeline.watchdog import STATES, TERMINAL_STATES, Watchdog
from aisp.pipeline.zones import Line, Zone, parse_lines, parse_zones

__all__ = ["StreamSpec", "Stream"]

log = logging.getLogger("aisp.pipeline")


def _model_list(models: Any) -> list[str]:
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",")]
    names = [str(m).strip() for m in (models or []) if str(m).strip()]
    if not names:
        raise ValidationError(
            "a stream needs at least one model", field="models", value=models, expected="a model name"
        )
    if len(set(names)) != len(names):
        raise ValidationError("duplicate model names", field="models", value=names, expected="distinct names")
    return names


#: the keys of a stored stream definition that :class:`StreamSpec` takes (``start_frame`` is never
#: stored: it comes from a resume position)
DEFINITION_FIELDS = ("id", "source", "models", "priority", "max_fps", "every", "live", "track", "zones",
                     "lines")


@dataclass
class StreamSpec:
    """What to run: ``source`` (a spec for :func:`open_source` or a :class:`Source`) through ``models``."""

    id: str
    source: Any
    models: list[str] = field(default_factory=list)
    priority: int = 0
    max_fps: float | None = None
    every: int = 1
    live: bool | None = None
    start_frame: int = 0
    #: give each detection a stable track id (on whenever zones or lines are set)
    track: bool | None = None
    zones: list[Zone] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ValidationError("stream id must be a non-empty string", field="id", value=self.id,
                                  expected="a non-empty string")
        self.models = _model_list(self.models)
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise ValidationError("priority must be an integer", field="priority", value=self.priority,
                                  expected="an integer")
        if self.max_fps is not None and not self.max_fps > 0:
            raise ValidationError("max_fps must be > 0", field="max_fps", value=self.max_fps, expected="> 0")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValidationError("every must be an integer >= 1", field="every", value=self.every,
                                  expected="an integer >= 1")
        if not isinstance(self.start_frame, int) or self.start_frame < 0:
            raise ValidationError("start_frame must be >= 0", field="start_frame", value=self.start_frame,
                                  expected="an integer >= 0")
        self.zones = parse_zones([z.to_dict() if isinstance(z, Zone) else z for z in self.zones or []])
        self.lines = parse_lines([ln.to_dict() if isinstance(ln, Line) else ln for ln in self.lines or []])
        names = [z.name for z in self.zones] + [ln.name for ln in self.lines]
        dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if dup is not None:
            raise ValidationError(f"zone and line names must be unique across both, {dup!r} is used twice",
                                  field="lines" if dup in {ln.name for ln in self.lines} else "zones",
                                  value=dup, expected="unique names")
        if self.track is not None and not isinstance(self.track, bool):
            raise ValidationError("track must be true or false", field="track", value=self.track,
                                  expected="a boolean")
        if self.track is False and names:
            raise ValidationError("zones and lines need tracking; leave track unset or true", field="track",
                                  value=False, expected="true (zones or lines are set)")
        self.track = bool(self.track) or bool(names)

    def to_dict(self) -> dict[str, Any]:
        source = self.source if isinstance(self.source, (str, int)) else getattr(self.source, "name", "?")
        return {"id": self.id, "source": source, "models": list(self.models), "priority": self.priority,
                "max_fps": self.max_fps, "every": self.every, "live": self.live, "track": self.track,
                "zones": [z.to_dict() for z in self.zones], "lines": [ln.to_dict() for ln in self.lines]}


class Stream:
    """A running stream. ``state`` is one of starting/running/reconnecting/stopped/failed."""

    def __init__(self, spec: StreamSpec, source: Source, sinks: list[Sink], stats: StreamMeter,
                 watchdog: Watchdog, *, mjpeg: bool = True,
                 on_stop: Callable[[Stream], None] | None = None,
                 on_state: Callable[[Stream, str, str | None], None] | None = None,
                 analytics: StreamAnalytics | None = None) -> None:
        self.id = spec.id
        self.spec = spec
        self.source = source
        self.latest = LatestResultSink()
        self.mjpeg: MJPEGSink | None = MJPEGSink() if mjpeg else None
        self.sinks: list[Sink] = [self.latest] + ([self.mjpeg] if self.mjpeg else []) + list(sinks)
        self.stats = stats
        self.watchdog = watchdog
        self.reorder: ReorderBuffer[FrameResult] = ReorderBuffer()
        self.queue: StreamQueue | None = None
        self.needs_image = any(s.needs_image for s in self.sinks)
        self.last_error: str | None = None
        self.reconnects = 0
        self._state = "starting"
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._aborted = False
        self._fail_at_end = False
        self._reconnect_requested = threading.Event()
        self._on_stop = on_stop
        self._on_state = on_state
        #: tracking, zones and lines (None when the spec asks for none); run by the sink thread
        self.analytics = analytics
        self.threads: list[threading.Thread] = []

    @property
    def live(self) -> bool:
        return bool(self.source.live)

    @property
    def state(self) -> str:
        with self._cond:
            return self._state

    def set_state(self, state: str, error: str | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"state expected one of {STATES}, got {state!r}")
        changed = False
        with self._cond:
            if self._state in TERMINAL_STATES:
                return
            if error is not None:
                self.last_error = error
            if state != self._state:
                log.info("stream %s: %s -> %s%s", self.id, self._state, state, f" ({error})" if error else "")
                self._state = state
                changed = True
            self._cond.notify_all()
        if changed and self._on_state is not None:
            try:
                self._on_state(self, state, self.last_error if state in ("failed", "reconnecting") else None)
            except Exception:  # a listener must never break a state change
                log.exception("stream %s: state listener failed", self.id)

    def record_error(self, error: str) -> None:
        with self._cond:
            if self.last_error is None or not self._aborted:
                self.last_error = error
            self._cond.notify_all()

    @property
    def failed(self) -> bool:
        """True once the stream was aborted (it ends ``failed``)."""
        return self._aborted

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait_stop(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds for a stop request; True if one came."""
        return self._stop.wait(timeout)

    def request_stop(self) -> None:
        """Stop reading: a blocked read is interrupted and the queued frames are discarded
        (through the engine's ``on_stop``); frames in flight still reach the sinks."""
        self._stop.set()
        self.source.interrupt()
        if self._on_stop is not None:
            self._on_stop(self)

    def abort(self, reason: str) -> bool:
        """Fail the stream with ``reason`` (the first reason wins) and stop it; True the first time."""
        with self._cond:
            first = not self._aborted
            self._aborted = True
            if first:
                self.last_error = reason
            self._cond.notify_all()
        if first:
            log.error("stream %s failed: %s", self.id, reason)
        self.request_stop()
        return first

    def fail_at_end(self, reason: str | None = None) -> None:
        """End ``failed`` (with ``reason`` as the error, unless aborted) once the sinks are done."""
        with self._cond:
            self._fail_at_end = True
        if reason is not None:
            self.record_error(reason)

    @property
    def reconnect_requested(self) -> bool:
        return self._reconnect_requested.is_set()

    def request_reconnect(self, reason: str) -> None:
        """Ask the reader to reconnect (the watchdog saw a stall): a blocked read is interrupted."""
        self.set_state("reconnecting", error=reason)
        self._reconnect_requested.set()
        self.source.interrupt()

    def begin_reconnect(self, reason: str) -> None:
        """The reader starts reconnecting: the watchdog pauses, the request is taken."""
        self.watchdog.disarm()
        self._reconnect_requested.clear()
        self.set_state("reconnecting", error=reason)

    def reconnected(self) -> None:
        """The reader reconnected: count it, watch for stalls again, ``running``."""
        with self._cond:
            self.reconnects += 1
        self.watchdog.arm()
        self.set_state("running")

    def deliver(self, results: Sequence[FrameResult]) -> None:
        """Results from a worker, in any order (the reorder buffer puts them back in order)."""
        for result in results:
            self.reorder.push(result.frame.seq, result)

    def finish(self) -> None:
        """The sink thread ends the stream: ``failed`` after an abort or ``fail_at_end``, else ``stopped``."""
        with self._cond:
            failed = self._aborted or self._fail_at_end
        self.set_state("failed" if failed else "stopped")

    def wait_for_state(self, *states: str, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._state in states, timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the stream is stopped or failed (all results delivered, sinks closed)."""
        return self.wait_for_state(*TERMINAL_STATES, timeout=timeout)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    def analytics_stats(self) -> dict[str, Any]:
        """Zone counts, line counters and event counts (empty without analytics)."""
        if self.analytics is None:
            return {}
        return {**self.analytics.counts(), **self.analytics.stats()}

    def snapshot(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "state": self.state, "last_error": self.last_error,
                "live": self.live, "reconnects": self.reconnects,
                "stats": {**self.stats.snapshot().to_dict(), **self.analytics_stats()}}

    def __repr__(self) -> str:
        return f"Stream({self.id!r}, state={self.state!r})"
