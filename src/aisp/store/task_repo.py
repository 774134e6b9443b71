"""Batch tasks: a persisted state machine with progress, FPS and result paths.

States and the moves between them::

    queued ──► running ──► completed
      │  │        ├──────► failed ───────┐
      │  │        ├──────► cancelled ────┤
      │  │        └──────► interrupted ──┤   (the process died mid-task; progress kept)
      │  └───────────────► cancelled     │
      └──────────────────► interrupted   │
                 queued ◄── retry ───────┘   (failed, cancelled or interrupted)

At startup :meth:`TaskRepository.mark_interrupted` turns every task left ``running`` or
``queued`` by a dead process into ``interrupted``, keeping ``frames_done``, so that
:meth:`TaskRepository.retry` can resume it from there. Nothing accepted is lost.
Progress writes are throttled per task (``progress_interval`` seconds) so a fast job does
not write a row per frame; state changes always write.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select, update

from aisp.errors import ConflictError, NotFoundError, ValidationError
from aisp.store.db import Database
from aisp.store.tables import TaskRow

__all__ = ["TaskRecord", "TaskRepository", "TASK_STATES", "TERMINAL_STATES", "TRANSITIONS"]

TASK_STATES: tuple[str, ...] = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
TERMINAL_STATES = frozenset({"completed", "failed", "cancelled", "interrupted"})
RETRYABLE_STATES = frozenset({"failed", "cancelled", "interrupted"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled", "interrupted", "failed"}),
    "running": frozenset({"completed", "failed", "cancelled", "interrupted"}),
    "completed": frozenset(),
    "failed": frozenset({"queued"}),
    "cancelled": frozenset({"queued"}),
    "interrupted": frozenset({"queued", "cancelled"}),
}
_UPDATABLE = frozenset({"frames_done", "frames_total", "fps", "result", "error", "params"})


@dataclass(frozen=True)
class TaskRecord:
    id: str
    kind: str
    state: str
    source: str
    models: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    frames_done: int = 0
    frames_total: int | None = None
    fps: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def progress(self) -> float | None:
        """Percent done (0..100), or None while the total is unknown."""
        if not self.frames_total:
            return 100.0 if self.state == "completed" else None
        return round(min(100.0, 100.0 * self.frames_done / self.frames_total), 2)

    @property
    def eta_seconds(self) -> float | None:
        if self.state != "running" or not self.fps or not self.frames_total:
            return None
        return max(0.0, (self.frames_total - self.frames_done) / self.fps)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["progress"] = self.progress
        d["eta_seconds"] = self.eta_seconds
        return d

    @classmethod
    def from_row(cls, r: TaskRow) -> TaskRecord:
        return cls(
            id=r.id, kind=r.kind, state=r.state, source=r.source, models=list(r.models or []),
            params=dict(r.params or {}), frames_done=r.frames_done, frames_total=r.frames_total,
            fps=r.fps, result=r.result, error=r.error, attempts=r.attempts, created_at=r.created_at,
            updated_at=r.updated_at, started_at=r.started_at, finished_at=r.finished_at,
        )


def _check_int(name: str, value: Any, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(
            f"invalid {name}: expected a non-negative integer, got {value!r}",
            field=name, value=value, expected="integer >= 0",
        )


class TaskRepository:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time,
                 progress_interval: float = 0.5) -> None:
        self._db = db
        self._clock = clock
        self._progress_interval = progress_interval
        self._last_progress: dict[str, float] = {}
        self._lock = threading.Lock()

    # --- create and read ---------------------------------------------------------------------
    def create(
        self,
        *,
        source: str,
        models: Iterable[str],
        params: dict[str, Any] | None = None,
        kind: str = "video",
        frames_total: int | None = None,
        task_id: str | None = None,
    ) -> TaskRecord:
        if not isinstance(source, str) or not source:
            raise ValidationError("invalid source: expected a non-empty string", field="source", value=source,
                                  expected="non-empty string")
        model_list = list(models)
        if not model_list or not all(isinstance(m, str) and m for m in model_list):
            raise ValidationError(
                f"invalid models: expected a non-empty list of model names, got {model_list!r}",
                field="models", value=model_list, expected="non-empty list of strings",
            )
        _check_int("frames_total", frames_total, allow_none=True)
        now = self._clock()
        row = TaskRow(
            id=task_id or secrets.token_hex(8), kind=kind, state="queued", source=source, models=model_list,
            params=dict(params or {}), frames_done=0, frames_total=frames_total, attempts=0,
            created_at=now, updated_at=now,
        )
        with self._db.session() as s:
            s.add(row)
            s.flush()
            return TaskRecord.from_row(row)

    def find(self, task_id: str) -> TaskRecord | None:
        with self._db.session() as s:
            row = s.get(TaskRow, task_id)
            return TaskRecord.from_row(row) if row is not None else None

    def get(self, task_id: str) -> TaskRecord:
        rec = self.find(task_id)
        if rec is None:
            raise NotFoundError(f"task '{task_id}' not found", kind="task", key=task_id)
        return rec

    def list(self, *, state: str | None = None, limit: int = 100, offset: int = 0) -> list[TaskRecord]:
        """Newest first."""
        if state is not None and state not in TASK_STATES:
            raise ValidationError(f"invalid state {state!r}: expected one of {', '.join(TASK_STATES)}",
                                  field="state", value=state, expected="|".join(TASK_STATES))
        stmt = select(TaskRow).order_by(TaskRow.created_at.desc(), TaskRow.id).limit(limit).offset(offset)
        if state is not None:
            stmt = stmt.where(TaskRow.state == state)
        with self._db.session() as s:
            return [TaskRecord.from_row(r) for r in s.scalars(stmt)]

    def count(self, *, state: str | None = None) -> int:
        stmt = select(func.count()).select_from(TaskRow)
        if state is not None:
            stmt = stmt.where(TaskRow.state == state)
        with self._db.session() as s:
            return int(s.scalar(stmt) or 0)

    def finished_before(self, cutoff: float, *, limit: int = 1000) -> list[str]:
        """Ids of tasks that finished (completed, failed, cancelled) before ``cutoff``, oldest first
        (task retention; an interrupted task can still be resumed and is kept)."""
        stmt = (select(TaskRow.id)
                .where(TaskRow.state.in_(("completed", "failed", "cancelled")), TaskRow.finished_at < cutoff)
                .order_by(TaskRow.finished_at).limit(limit))
        with self._db.session() as s:
            return list(s.scalars(stmt))

    # --- changes ---------------------------------------------------------------------------------
    def update(self, task_id: str, *, state: str | None = None, **fields: Any) -> TaskRecord:
        """Change a task; a ``state`` change must follow :data:`TRANSITIONS` (else ConflictError)."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValidationError(
                f"cannot update task field(s) {sorted(unknown)}: expected some of {sorted(_UPDATABLE)}",
                field=sorted(unknown)[0], expected=", ".join(sorted(_UPDATABLE)),
            )
        if state is not None and state not in TASK_STATES:
            raise ValidationError(f"invalid state {state!r}: expected one of {', '.join(TASK_STATES)}",
                                  field="state", value=state, expected="|".join(TASK_STATES))
        for name in ("frames_done", "frames_total"):
            if name in fields:
                _check_int(name, fields[name], allow_none=name == "frames_total")
        now = self._clock()
        with self._db.session() as s:
            row = s.get(TaskRow, task_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"task '{task_id}' not found", kind="task", key=task_id)
            if state is not None and state != row.state:
                if state not in TRANSITIONS[row.state]:
                    raise ConflictError(
                        f"task '{task_id}' is {row.state}; it cannot become {state}",
                        details={"task_id": task_id, "state": row.state, "requested": state},
                    )
                row.state = state
                if state == "running":
                    row.started_at = now
                    row.attempts += 1
                    row.error = None
                elif state in TERMINAL_STATES:
                    row.finished_at = now
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = now
            if state is not None:
                with self._lock:
                    self._last_progress.pop(task_id, None)
            return TaskRecord.from_row(row)

    def start(self, task_id: str, *, frames_total: int | None = None) -> TaskRecord:
        extra = {"frames_total": frames_total} if frames_total is not None else {}
        return self.update(task_id, state="running", **extra)

    def set_progress(
        self, task_id: str, frames_done: int, frames_total: int | None = None, fps: float | None = None,
        *, force: bool = False,
    ) -> bool:
        """Record progress; returns False when skipped by the throttle (see module docstring)."""
        _check_int("frames_done", frames_done, allow_none=False)
        _check_int("frames_total", frames_total, allow_none=True)
        now = self._clock()
        with self._lock:
            last = self._last_progress.get(task_id)
            if not force and last is not None and now - last < self._progress_interval:
                return False
            self._last_progress[task_id] = now
        values: dict[str, Any] = {"frames_done": frames_done, "updated_at": now}
        if frames_total is not None:
            values["frames_total"] = frames_total
        if fps is not None:
            values["fps"] = float(fps)
        with self._db.session() as s:
            res = s.execute(
                update(TaskRow).where(TaskRow.id == task_id, TaskRow.state == "running").values(**values)
            )
            return bool(res.rowcount)

    def complete(self, task_id: str, result: dict[str, Any] | None = None, **fields: Any) -> TaskRecord:
        return self.update(task_id, state="completed", result=result, **fields)

    def fail(self, task_id: str, error: str, **fields: Any) -> TaskRecord:
        return self.update(task_id, state="failed", error=error, **fields)

    def cancel(self, task_id: str, **fields: Any) -> TaskRecord:
        return self.update(task_id, state="cancelled", **fields)

    def retry(self, task_id: str, *, resume: bool = True) -> TaskRecord:
        """Queue a failed, cancelled or interrupted task again.

        With ``resume`` (the default) ``frames_done`` is kept, so the runner can start at that
        frame; otherwise progress is reset to zero.
        """
        fields: dict[str, Any] = {"error": None}
        if not resume:
            fields.update(frames_done=0, fps=None, result=None)
        rec = self.get(task_id)
        if rec.state not in RETRYABLE_STATES:
            raise ConflictError(
                f"task '{task_id}' is {rec.state}; "
                "only failed, cancelled or interrupted tasks can be retried",
                details={"task_id": task_id, "state": rec.state},
            )
        return self.update(task_id, state="queued", **fields)

    def mark_interrupted(self, *, states: Iterable[str] = ("running", "queued")) -> list[TaskRecord]:
        """At startup: tasks a dead process left unfinished become ``interrupted`` (progress kept)."""
        wanted = [s for s in states if s in ("running", "queued")]
        now = self._clock()
        with self._db.session() as s:
            rows = list(s.scalars(select(TaskRow).where(TaskRow.state.in_(wanted)).with_for_update()))
            for row in rows:
                was = row.state
                row.state = "interrupted"
                row.finished_at = now
                row.updated_at = now
                row.error = f"the process stopped while the task was {was}"
            return [TaskRecord.from_row(r) for r in rows]

    def delete(self, task_id: str) -> None:
        with self._db.session() as s:
            row = s.get(TaskRow, task_id)
            if row is None:
                raise NotFoundError(f"task '{task_id}' not found", kind="task", key=task_id)
            if row.state in ("running", "queued"):
                raise ConflictError(f"task '{task_id}' is {row.state}; cancel it first",
                                    details={"task_id": task_id, "state": row.state})
            s.delete(row)
