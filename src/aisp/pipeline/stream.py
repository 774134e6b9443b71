"""One stream: its spec, state machine, statistics, reorder buffer and built-in sinks."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aisp.errors import ValidationError
from aisp.pipeline.reorder import ReorderBuffer
from aisp.pipeline.sinks import LatestResultSink, MJPEGSink, Sink
from aisp.pipeline.sources import Source
from aisp.pipeline.stats import StreamStats
from aisp.pipeline.watchdog import STATES, TERMINAL_STATES, Watchdog

if TYPE_CHECKING:  # pragma: no cover
    from aisp.pipeline.scheduler import StreamQueue

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

    def to_dict(self) -> dict[str, Any]:
        source = self.source if isinstance(self.source, (str, int)) else getattr(self.source, "name", "?")
        return {"id": self.id, "source": source, "models": list(self.models), "priority": self.priority,
                "max_fps": self.max_fps, "every": self.every, "live": self.live}


class Stream:
    """A running stream. ``state`` is one of starting/running/reconnecting/stopped/failed."""

    def __init__(self, spec: StreamSpec, source: Source, sinks: list[Sink], stats: StreamStats,
                 watchdog: Watchdog, *, mjpeg: bool = True) -> None:
        self.id = spec.id
        self.spec = spec
        self.source = source
        self.latest = LatestResultSink()
        self.mjpeg: MJPEGSink | None = MJPEGSink() if mjpeg else None
        self.sinks: list[Sink] = [self.latest] + ([self.mjpeg] if self.mjpeg else []) + list(sinks)
        self.stats = stats
        self.watchdog = watchdog
        self.reorder = ReorderBuffer()
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
        with self._cond:
            if self._state in TERMINAL_STATES:
                return
            if error is not None:
                self.last_error = error
            if state != self._state:
                log.info("stream %s: %s -> %s%s", self.id, self._state, state, f" ({error})" if error else "")
                self._state = state
            self._cond.notify_all()

    def record_error(self, error: str) -> None:
        with self._cond:
            if self.last_error is None or not self._aborted:
                self.last_error = error
            self._cond.notify_all()

    @property
    def failed(self) -> bool:
        return self._aborted

    def wait_for_state(self, *states: str, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._state in states, timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the stream is stopped or failed (all results delivered, sinks closed)."""
        return self.wait_for_state(*TERMINAL_STATES, timeout=timeout)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    def snapshot(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "state": self.state, "last_error": self.last_error,
                "live": self.live, "reconnects": self.reconnects, "stats": self.stats.snapshot()}

    def __repr__(self) -> str:
        return f"Stream({self.id!r}, state={self.state!r})"
