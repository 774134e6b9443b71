"""A stream actor's checkpoint: its discrete events and its position, committed together.

A stream on a cluster node can lose its node at any frame. The store must then hold every event
of the frames before the point the stream resumes from, and none after it, so that the replay on
another node writes each event exactly once. So the actor does not hand its events to the store's
asynchronous writers; it records them here, and a committer thread writes, in one transaction
(:meth:`aisp.store.StreamPositionRepository.commit`), the discrete events and the window summaries
of the frames emitted so far and the index of the next frame::

    sink thread, frame F:  analytics ─► LedgerBus.publish(event of F) ─► ledger.add(event)
                           EventSink.write(F) ─► (a window ended) ledger.submit(summary of <= F-1)
                           CheckpointSink.write(F) ─► ledger.frame_done(F, seal=EventSink.flush
                                                                          when a checkpoint is due)
                               when a checkpoint is due: seal a batch of the pending events of
                               frames <= F, the summaries, position F + 1 (under the ledger's lock)
    committer thread, every ``interval`` s:
        commit the sealed batches (merged) ─► commit(position, frames, events, summaries)
        one transaction; kept and retried on failure

Only a sealed batch is committed, and sealing flushes the open window at that frame (so a window
may be stored in parts, each counting its own frames): a committed summary never holds a frame at
or beyond the committed position, and every frame before it is in exactly one summary. What was
not sealed when a node died is produced again by the replay from the committed position.

The tracker (``appeared``/``gone``, zones) runs on the sink thread before the sinks, so when
``frame_done(F)`` is called every event of F is already recorded; an event of a later frame that
is recorded before the committer runs stays pending until its frame is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aisp.events import Event, EventBus
from aisp.pipeline.frame_types import FrameResult
from aisp.pipeline.sinks import Sink

__all__ = ["CheckpointSink", "LedgerBus", "StreamLedger"]

log = logging.getLogger("aisp.cluster")

#: ``commit(position, frames, events, summaries)``: one transaction (position None: the events alone)
Commit = Callable[[int | None, int, Sequence[Event], Sequence[Mapping[str, Any]]], None]


@dataclass
class Batch:
    """What one checkpoint commits: everything up to frame ``position - 1``."""

    position: int | None
    frames: int
    events: list[Event] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)

    def merge(self, later: Batch) -> Batch:
        return Batch(later.position if later.position is not None else self.position, later.frames,
                     self.events + later.events, self.summaries + later.summaries)


class StreamLedger:
    """Pending events and summaries of one stream, sealed into batches on the sink thread at a
    checkpoint, and committed by a thread of its own (see the module docstring).

    ``position``/``frames`` start where the stored checkpoint left off (a resumed stream). ``step``
    is the stream's ``every``: after frame F the next frame it emits is F + step, so that a resumed
    stream keeps the frames a single run would have picked.
    """

    def __init__(self, commit: Commit, *, position: int = 0, frames: int = 0, interval: float = 0.5,
                 retry_max: float = 5.0, step: int = 1) -> None:
        self._commit = commit
        self._step = max(1, int(step))
        self._interval = interval
        self._retry_max = retry_max
        self._cond = threading.Condition(threading.RLock())  # frame_done's seal submits under it
        self._events: list[Event] = []
        self._summaries: list[dict[str, Any]] = []
        self._sealed: list[Batch] = []
        self._sealed_at = time.monotonic()
        self._done: int | None = None  # last frame index emitted
        self._frames = frames
        self.position = position  # committed
        self.committed_frames = frames
        self.commits = 0
        self.failures = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="aisp-checkpoint", daemon=True)
        self._thread.start()

    # --- producers (the stream's threads) ----------------------------------------------------
    def add(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)

    def submit(self, summary: Mapping[str, Any]) -> bool:
        """The :class:`~aisp.pipeline.EventSink`'s writer: a window summary of emitted frames."""
        with self._cond:
            self._summaries.append(dict(summary))
        return True

    def due(self) -> bool:
        """True when the next frame should seal a checkpoint."""
        return time.monotonic() - self._sealed_at >= self._interval

    def frame_done(self, index: int, seal: Callable[[], None] | None = None) -> None:
        """Frame ``index`` went through every sink. With ``seal`` (the event sink's flush: the open
        window becomes a summary), a checkpoint up to ``index`` is sealed, atomically with it."""
        with self._cond:
            self._done = index
            self._frames += 1
            if seal is not None:
                seal()
                self.seal()

    def seal(self) -> None:
        """Seal what is pending into a batch for the committer (the stream's end calls it too)."""
        with self._cond:
            done = self._done
            ready = [e for e in self._events
                     if e.frame_index is None or (done is not None and e.frame_index <= done)]
            if ready:
                ids = {id(e) for e in ready}
                self._events = [e for e in self._events if id(e) not in ids]
            summaries, self._summaries = self._summaries, []
            self._sealed.append(Batch(None if done is None else done + self._step, self._frames, ready,
                                      summaries))
            self._sealed_at = time.monotonic()
            self._cond.notify_all()

    # --- committer ---------------------------------------------------------------------------
    def _take(self) -> Batch | None:
        if self._sealed:
            batch = self._sealed[0]
            for later in self._sealed[1:]:
                batch = batch.merge(later)
            self._sealed = []
            return batch
        loose = [e for e in self._events if e.frame_index is None]  # a stream's state changes
        if loose:
            self._events = [e for e in self._events if e.frame_index is not None]
            return Batch(None, self.committed_frames, loose)
        return None

    def flush(self) -> bool:
        """Commit the sealed batches now (on the caller's thread); False when the commit failed."""
        with self._cond:
            batch = self._take()
        if batch is None:
            return True
        try:
            self._commit(batch.position, batch.frames, batch.events, batch.summaries)
        except Exception as exc:  # the database is away: keep the batch for the next round
            with self._cond:
                self._sealed.insert(0, batch)
                self.failures += 1
            log.warning("checkpoint commit failed (%d event(s) kept): %s", len(batch.events), exc)
            return False
        with self._cond:
            if batch.position is not None:
                self.position = max(self.position, batch.position)
            self.committed_frames = batch.frames
            self.commits += 1
            self._cond.notify_all()
        return True

    def _run(self) -> None:
        delay = self._interval
        while True:
            with self._cond:
                if self._cond.wait_for(lambda: self._stop, delay):
                    return
            delay = self._interval if self.flush() else min(self._retry_max, max(delay, 0.2) * 2)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the thread, seal and commit what is left; False when it could not be committed."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self.seal()
        return self.flush()


class LedgerBus(EventBus):
    """The runtime's event bus in a stream actor: every published event is also recorded in the
    ledger, synchronously, on the publishing thread (the bus's subscribers are asynchronous)."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger: StreamLedger | None = None

    def publish(self, event: Event) -> None:
        ledger = self.ledger
        if ledger is not None:
            ledger.add(event)
        super().publish(event)


def _nothing() -> None:
    return None


class CheckpointSink(Sink):
    """The stream's last sink: marks each frame as emitted (every sink before it has written it)."""

    def __init__(self, ledger: StreamLedger, windows: Any = None) -> None:
        self._ledger = ledger
        self._windows = windows  # the stream's EventSink (flushed when a checkpoint is due)
        self.closed_at: float | None = None

    def write(self, result: FrameResult) -> None:
        due = self._ledger.due()
        seal = (self._windows.flush if self._windows is not None else _nothing) if due else None
        self._ledger.frame_done(result.frame.index, seal)

    def close(self) -> None:
        """The stream ended (the event sink before this one emitted its last window): seal it all."""
        if self.closed_at is None:
            self.closed_at = time.monotonic()
        self._ledger.seal()

    def __repr__(self) -> str:
        return "CheckpointSink()"
