"""Stream definitions, persisted so that they come back after a restart.

A definition is the JSON form of a pipeline ``StreamSpec`` (``{"id": ..., "source": ...,
"models": [...], ...}``) plus the state the user wants (``running`` or ``stopped``). The server
saves it on ``POST /api/streams``, updates ``desired_state`` on start/stop, deletes it on
``DELETE``, and at startup recreates every saved stream, starting those marked ``running``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from aisp.errors import NotFoundError, ValidationError
from aisp.store.db import Database
from aisp.store.tables import StreamRow

__all__ = ["StreamRecord", "StreamRepository", "DESIRED_STATES"]

DESIRED_STATES = ("running", "stopped")


@dataclass(frozen=True)
class StreamRecord:
    id: str
    spec: dict[str, Any]
    desired_state: str
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "spec": dict(self.spec), "desired_state": self.desired_state,
                "created_at": self.created_at, "updated_at": self.updated_at}

    @classmethod
    def from_row(cls, r: StreamRow) -> StreamRecord:
        return cls(r.id, dict(r.spec), r.desired_state, r.created_at, r.updated_at)


def _validate(spec: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise ValidationError(f"invalid stream spec: expected a mapping, got {type(spec).__name__}",
                              field="spec", value=spec, expected="mapping")
    sid = spec.get("id")
    if not isinstance(sid, str) or not sid or len(sid) > 128:
        raise ValidationError(f"invalid stream id: expected a string of 1..128 characters, got {sid!r}",
                              field="id", value=sid, expected="string of 1..128 characters")
    out = dict(spec)
    try:
        return json.loads(json.dumps(out))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"invalid stream spec for '{sid}': not JSON serialisable ({exc})",
                              field="spec", value=sid, expected="JSON-serialisable values") from None


class StreamRepository:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time):
        self._db = db
        self._clock = clock

    def save(self, spec: Mapping[str, Any], *, desired_state: str | None = None) -> StreamRecord:
        """Insert or replace the definition with ``spec["id"]``.

        ``desired_state`` defaults to ``running`` for a new stream and is kept for an existing one.
        """
        clean = _validate(spec)
        if desired_state is not None and desired_state not in DESIRED_STATES:
            raise ValidationError(f"invalid desired_state {desired_state!r}: expected running or stopped",
                                  field="desired_state", value=desired_state, expected="running|stopped")
        now = self._clock()
        with self._db.session() as s:
            row = s.get(StreamRow, clean["id"], with_for_update=True)
            if row is None:
                row = StreamRow(id=clean["id"], spec=clean, desired_state=desired_state or "running",
                                created_at=now, updated_at=now)
                s.add(row)
            else:
                row.spec = clean
                if desired_state is not None:
                    row.desired_state = desired_state
                row.updated_at = now
            s.flush()
            return StreamRecord.from_row(row)

    def set_desired_state(self, stream_id: str, desired_state: str) -> StreamRecord:
        if desired_state not in DESIRED_STATES:
            raise ValidationError(f"invalid desired_state {desired_state!r}: expected running or stopped",
                                  field="desired_state", value=desired_state, expected="running|stopped")
        with self._db.session() as s:
            row = s.get(StreamRow, stream_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"stream '{stream_id}' not found", kind="stream", key=stream_id)
            row.desired_state = desired_state
            row.updated_at = self._clock()
            return StreamRecord.from_row(row)

    def get(self, stream_id: str) -> StreamRecord:
        with self._db.session() as s:
            row = s.get(StreamRow, stream_id)
            if row is None:
                raise NotFoundError(f"stream '{stream_id}' not found", kind="stream", key=stream_id)
            return StreamRecord.from_row(row)

    def list(self) -> list[StreamRecord]:
        with self._db.session() as s:
            rows = s.scalars(select(StreamRow).order_by(StreamRow.created_at, StreamRow.id))
            return [StreamRecord.from_row(r) for r in rows]

    def delete(self, stream_id: str) -> bool:
        """Delete a definition; returns False when there was none."""
        with self._db.session() as s:
            row = s.get(StreamRow, stream_id)
            if row is None:
                return False
            s.delete(row)
            return True
