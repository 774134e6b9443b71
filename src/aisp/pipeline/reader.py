"""Stage 1 of a stream: read + decode, with the watchdog's reconnects for live sources.

One reader thread per stream runs :func:`read_loop`: it reads frames (RGB, converted once by
the source), stamps them with the engine clock, applies ``start_frame``/``every``/``max_fps``,
and puts them on the stream's bounded queue (blocking for files, dropping for live sources).
A live source that fails, ends or stalls is reconnected with exponential backoff
(:class:`~aisp.pipeline.watchdog.Backoff`); a file that fails mid-way keeps what was read and
the stream ends ``failed`` with the reason. The queue is always closed on the way out.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aisp.pipeline.frame_types import Frame
from aisp.pipeline.stream import Stream
from aisp.pipeline.watchdog import Backoff

if TYPE_CHECKING:  # pragma: no cover
    from aisp.pipeline.engine import Engine

__all__ = ["read_loop", "open_live", "reconnect", "describe"]

log = logging.getLogger("aisp.pipeline")


def describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"


def read_loop(engine: Engine, stream: Stream) -> None:
    spec, source, queue = stream.spec, stream.source, stream.queue
    assert queue is not None
    try:
        if source.live and not open_live(engine, stream):
            return
        stream.watchdog.arm()
        stream.set_state("running")
        index = 0
        next_due: float | None = None
        while not stream._stop.is_set():
            try:
                item = source.read()
            except Exception as exc:
                if stream._stop.is_set():
                    break
                if not source.live:  # a file: keep what was read, report the error at the end
                    stream.record_error(describe(exc))
                    stream._fail_at_end = True
                    log.warning("stream %s: %s", stream.id, describe(exc))
                    break
                if not reconnect(engine, stream, describe(exc)):
                    break
                continue
            if stream._reconnect_requested.is_set():
                if stream._stop.is_set() or not reconnect(engine, stream, stream.last_error or "stalled"):
                    break
                continue
            if item is None:
                if not source.live or stream._stop.is_set():
                    break
                if not reconnect(engine, stream, "the source ended (disconnected)"):
                    break
                continue
            now = engine.clock()
            stream.watchdog.on_frame(now)
            stream.stats.record_input(now)
            i, index = index, index + 1
            if i < spec.start_frame or (i - spec.start_frame) % spec.every:
                continue
            if spec.max_fps:
                t = now if source.live or item.pts is None else item.pts
                if next_due is not None and t < next_due - 1e-6:
                    continue
                step = 1.0 / spec.max_fps
                next_due = t + step if next_due is None or t - next_due > step else next_due + step
            dropped = engine.scheduler.put(queue, Frame(stream.id, i, item.pts, now, item.image))
            if dropped:
                stream.stats.record_drop(dropped)
    except BaseException as exc:  # a bug or a source error while opening: fail the stream
        engine._abort(stream, describe(exc))
        if not isinstance(exc, Exception):
            raise
    finally:
        stream.watchdog.disarm()
        try:
            source.close()
        except Exception as exc:
            log.warning("stream %s: closing the source failed: %s", stream.id, exc)
        engine.scheduler.close(queue)

def open_live(engine: Engine, stream: Stream) -> bool:
    try:
        stream.source.open()
        return True
    except Exception as exc:
        log.warning("stream %s: cannot open %s: %s", stream.id, stream.source.name, describe(exc))
        return reconnect(engine, stream, describe(exc))

def reconnect(engine: Engine, stream: Stream, reason: str) -> bool:
    """Reconnect a live source with exponential backoff; False when stopped or given up."""
    s = engine.settings
    stream.watchdog.disarm()
    stream._reconnect_requested.clear()
    stream.set_state("reconnecting", error=reason)
    backoff = Backoff(s.reconnect_initial_delay_seconds, s.reconnect_max_delay_seconds,
                      s.reconnect_max_attempts)
    last = reason
    while not backoff.exhausted:
        if stream._stop.wait(backoff.next_delay()):
            return False
        try:
            stream.source.reconnect()
        except Exception as exc:
            last = describe(exc)
            stream.record_error(last)
            log.info("stream %s: reconnect attempt %d/%d failed: %s", stream.id, backoff.attempts,
                     backoff.max_attempts, last)
            continue
        stream.reconnects += 1
        stream.watchdog.arm()
        stream.set_state("running")
        return True
    engine._abort(stream, f"gave up after {backoff.attempts} reconnect attempts: {last}")
    return False
