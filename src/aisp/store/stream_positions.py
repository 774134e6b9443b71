"""Stream positions (table ``stream_positions``): where a stream resumes after a restart elsewhere.

A stream running on a cluster node can lose its node at any moment. To resume a file without
doubling or skipping a frame's events, the stream commits, in **one transaction**, the discrete
events and the window summaries (``event_windows``) of the frames it has emitted, the number of
frames emitted and the index of the next frame (:meth:`commit`). After a
restart it seeks its source to :meth:`get`'s position: the frames after it were never committed,
so their events are produced (once) by the replay.

Events are inserted by their unique id with "on conflict do nothing", so a commit retried after
a lost acknowledgement (the transaction went through, the connection did not) adds no event twice;
its window summaries would be (the one case not covered: a summary row has no natural key).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert

from aisp.events import Event
from aisp.store.db import Database
from aisp.store.event_records import insert_events
from aisp.store.events import EventSummary
from aisp.store.tables import EventWindowRow, StreamPositionRow

__all__ = ["StreamPosition", "StreamPositionRepository"]


@dataclass(frozen=True)
class StreamPosition:
    stream_id: str
    #: the next frame index of the source to process
    position: int
    #: frames emitted over every run of the stream
    frames: int
    updated_at: float


class StreamPositionRepository:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def get(self, stream_id: str) -> StreamPosition | None:
        with self._db.session() as s:
            row = s.get(StreamPositionRow, stream_id)
            return None if row is None else StreamPosition(row.stream_id, int(row.position), int(row.frames),
                                                           float(row.updated_at))

    def commit(self, stream_id: str, position: int | None, frames: int, events: Sequence[Event],
               summaries: Sequence[Mapping[str, Any]] = ()) -> None:
        """Store ``events``, the window ``summaries`` and (unless None) the position and the frame
        count, atomically. A position is never moved back (a late retry of an older batch)."""
        with self._db.session() as s:
            insert_events(s, self._db.dialect, events)
            if summaries:
                s.execute(insert(EventWindowRow), [EventSummary.coerce(x).to_dict() for x in summaries])
            if position is None:
                return
            row = s.get(StreamPositionRow, stream_id, with_for_update=True)
            now = self._clock()
            if row is None:
                s.add(StreamPositionRow(stream_id=stream_id, position=position, frames=frames,
                                        updated_at=now))
            elif position >= row.position:
                row.position, row.frames, row.updated_at = position, frames, now

    def clear(self, stream_id: str) -> bool:
        """Forget where ``stream_id`` was (a user's start begins again at frame 0)."""
        with self._db.session() as s:
            stmt = delete(StreamPositionRow).where(StreamPositionRow.stream_id == stream_id)
            return bool(s.execute(stmt).rowcount)
