"""Stage 1 of a stream: read + decode, with the watchdog's reconnects for live sources.

One reader thread per stream runs :func:`read_loop`: it reads frames (RGB, converted once by
the source), stamps them with the engine clock, applies ``start_frame``/``every``/``max_fps``,
and puts them on the stream's bounded queue (blocking for files, dropping for live sources).
A live source that fails, ends or stalls is reconnected with exponential backoff
(:class:`~aisp.pipeline.watchdog.Backoff`); a file that fails mid-way keeps what was read and
the stream ends ``failed`` with the reason. The queue is always closed on the way out.

The reconnect budget is one per stream, not one per outage: a source that opens and then fails
again spends it, whether or not the open succeeded, and it is given back only once frames have
flowed for a healthy period (the longer of the longest backoff delay and the stall timeout).
So a server that accepts the connection and then drops it, over and over, ends the stream
``failed`` after ``reconnect_max_attempts`` instead of keeping it (or a task) alive forever.

The reader knows nothing of the engine: it is handed the stream (whose methods change its
state), the scheduler that holds the stream's queue, the engine's clock and a ``backoff()``
factory built from the reconnect settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aisp.pipeline._describe import describe
from aisp.pipeline.frame_types import Frame
from aisp.pipeline.scheduler import Scheduler
from aisp.pipeline.stats import Clock
from aisp.pipeline.stream import Stream
from aisp.pipeline.watchdog import Backoff

__all__ = ["read_loop", "open_live", "reconnect", "BackoffFactory"]

log = logging.getLogger("aisp.pipeline")

#: A fresh :class:`Backoff` for each outage (the engine builds it from its settings).
BackoffFactory = Callable[[], Backoff]


def read_loop(stream: Stream, scheduler: Scheduler, clock: Clock, backoff: BackoffFactory) -> None:
    spec, source, queue = stream.spec, stream.source, stream.queue
    assert queue is not None
    budget = backoff()  # one reconnect budget for the stream's life (see the module docstring)
    healthy_after = max(budget.maximum, stream.watchdog.stall_timeout)
    healthy_since: float | None = None
    try:
        if source.live and not open_live(stream, budget):
            return
        stream.watchdog.arm()
        stream.set_state("running")
        index = 0
        next_due: float | None = None
        while not stream.stop_requested:
            try:
                item = source.read()
            except Exception as exc:
                if stream.stop_requested:
                    break
                if not source.live:  # a file: keep what was read, report the error at the end
                    stream.fail_at_end(describe(exc))
                    log.warning("stream %s: %s", stream.id, describe(exc))
                    break
                healthy_since = None
                if not reconnect(stream, describe(exc), budget):
                    break
                continue
            if stream.reconnect_requested:
                healthy_since = None
                if stream.stop_requested or not reconnect(stream, stream.last_error or "stalled", budget):
                    break
                continue
            if item is None:
                if not source.live or stream.stop_requested:
                    break
                healthy_since = None
                if not reconnect(stream, "the source ended (disconnected)", budget):
                    break
                continue
            now = clock()
            if budget.attempts:
                if healthy_since is None:
                    healthy_since = now
                elif now - healthy_since >= healthy_after:
                    budget.reset()
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
            dropped = scheduler.put(queue, Frame(stream.id, i, item.pts, now, item.image))
            if dropped:
                stream.stats.record_drop(dropped)
    except BaseException as exc:  # a bug or a source error while opening: fail the stream
        stream.abort(describe(exc))
        if not isinstance(exc, Exception):
            raise
    finally:
        stream.watchdog.disarm()
        try:
            source.close()
        except Exception as exc:
            log.warning("stream %s: closing the source failed: %s", stream.id, exc)
        scheduler.close(queue)


def open_live(stream: Stream, backoff: BackoffFactory | Backoff) -> bool:
    """Open a live source, reconnecting with backoff when it cannot be opened; False if given up."""
    try:
        stream.source.open()
        return True
    except Exception as exc:
        log.warning("stream %s: cannot open %s: %s", stream.id, stream.source.name, describe(exc))
        return reconnect(stream, describe(exc), backoff)


def reconnect(stream: Stream, reason: str, backoff: BackoffFactory | Backoff) -> bool:
    """Reconnect a live source with exponential backoff; False when stopped or given up.

    ``backoff`` is the stream's budget (a :class:`Backoff`, spent across outages) or a factory
    of a fresh one.
    """
    stream.begin_reconnect(reason)
    delays = backoff if isinstance(backoff, Backoff) else backoff()
    last = reason
    while not delays.exhausted:
        if stream.wait_stop(delays.next_delay()):
            return False
        try:
            stream.source.reconnect()
        except Exception as exc:
            last = describe(exc)
            stream.record_error(last)
            log.info("stream %s: reconnect attempt %d/%d failed: %s", stream.id, delays.attempts,
                     delays.max_attempts, last)
            continue
        stream.reconnected()
        return True
    stream.abort(f"gave up after {delays.attempts} reconnect attempts: {last}")
    return False
