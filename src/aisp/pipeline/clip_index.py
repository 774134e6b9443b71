""":class:`ClipLibrary`: the event clips on disk, their JSON index, and their retention.

Layout under ``clip_dir``::

    index.json                       {"clips": {clip_id: record}, "events": {event_id: clip_id}}
    <stream dir>/<clip_id>.mp4       a finished clip
    <stream dir>/<clip_id>.mp4.part  a clip being written (never served; removed at start-up)

The index lives beside the files it describes: moving, copying or wiping the clip directory
keeps them consistent, which a database row could not promise, and it needs no schema
migration. It is small (one record per clip, one key per event) and is rewritten atomically
(write, fsync, rename) on each change. Only this process writes it.

Retention: after each finished clip and at start-up, clips older than ``max_age_days`` are
deleted, then the oldest ones until the total is within ``max_total_bytes``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["ClipRecord", "ClipLibrary"]

log = logging.getLogger("aisp.pipeline.clips")

_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_CLIP_ID = re.compile(r"^[0-9a-f]{12,40}$")


@dataclass(frozen=True)
class ClipRecord:
    id: str
    stream_id: str
    file: str  # relative to the clip directory
    state: str  # recording | ready | failed
    started_at: float  # epoch seconds of the first frame
    ended_at: float | None = None
    duration: float | None = None
    frames: int = 0
    size_bytes: int = 0
    events: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stream_dir_name(stream_id: str) -> str:
    """A directory name for any stream id: safe characters plus a hash (``..`` or ``a/b`` stay inside)."""
    digest = hashlib.sha256(stream_id.encode("utf-8", "replace")).hexdigest()[:8]
    return f"{_SAFE.sub('_', stream_id)[:48]}-{digest}"


class ClipLibrary:
    """Thread-safe: recorders (encoder threads) add and finish clips, the API reads."""

    def __init__(self, root: str | os.PathLike[str], *, max_age_days: float = 7.0,
                 max_total_bytes: int = 2 << 30, wallclock: Callable[[], float] = time.time) -> None:
        self.root = Path(root).resolve()
        self.max_age_days = max_age_days
        self.max_total_bytes = max_total_bytes
        self.wallclock = wallclock
        self._lock = threading.Lock()
        self._clips: dict[str, ClipRecord] = {}
        self._events: dict[str, str] = {}
        self.deleted = 0
        self._open()

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    def _open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
            clips = {cid: ClipRecord(**rec) for cid, rec in data.get("clips", {}).items()}
            events = {str(k): str(v) for k, v in data.get("events", {}).items()}
        except FileNotFoundError:
            clips, events = {}, {}
        except (ValueError, TypeError) as exc:
            log.error("clip index %s is unreadable (%s); starting a new one", self.index_path, exc)
            clips, events = {}, {}
        for part in self.root.glob("*/*.mp4.part"):  # a crash left it half-written
            part.unlink(missing_ok=True)
        for cid, rec in list(clips.items()):
            if rec.state != "ready" or not (self.root / rec.file).is_file():
                del clips[cid]
        self._clips = clips
        self._events = {e: c for e, c in events.items() if c in clips}
        with self._lock:
            self._save()
        self.prune()

    def _save(self) -> None:
        """Write the index atomically; call with the lock held."""
        tmp = self.index_path.with_suffix(".json.tmp")
        payload = {"clips": {cid: rec.to_dict() for cid, rec in self._clips.items()}, "events": self._events}
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.index_path)

    # -- writers ------------------------------------------------------------------------------
    def new_clip(self, clip_id: str, stream_id: str, started_at: float, events: list[str]) -> tuple[
            ClipRecord, Path]:
        """Register a clip being recorded; returns it and the ``.part`` path to write."""
        if not _CLIP_ID.match(clip_id):
            raise ValueError(f"clip id expected 12-40 hex digits, got {clip_id!r}")
        directory = self.root / stream_dir_name(stream_id)
        directory.mkdir(parents=True, exist_ok=True)
        rec = ClipRecord(clip_id, stream_id, f"{directory.name}/{clip_id}.mp4", "recording", started_at,
                         events=list(events))
        with self._lock:
            self._clips[clip_id] = rec
            for event_id in events:
                self._events[event_id] = clip_id
            self._save()
        return rec, self.root / (rec.file + ".part")

    def add_events(self, clip_id: str, events: list[str]) -> None:
        with self._lock:
            rec = self._clips.get(clip_id)
            if rec is None:
                return
            added = [e for e in events if e not in rec.events]
            self._clips[clip_id] = replace(rec, events=rec.events + added)
            for event_id in events:
                self._events[event_id] = clip_id
            self._save()

    def finish(self, clip_id: str, *, ended_at: float, duration: float, frames: int, ok: bool = True) -> None:
        """The clip is written: move the ``.part`` file into place and record it (or drop it)."""
        with self._lock:
            rec = self._clips.get(clip_id)
            if rec is None:
                return
            final = self.root / rec.file
            part = final.with_name(final.name + ".part")
            if ok and part.is_file():
                os.replace(part, final)
                self._clips[clip_id] = replace(rec, state="ready", ended_at=ended_at, duration=duration,
                                               frames=frames, size_bytes=final.stat().st_size)
            else:
                part.unlink(missing_ok=True)
                self._clips.pop(clip_id, None)
                for event_id in rec.events:
                    if self._events.get(event_id) == clip_id:
                        del self._events[event_id]
            self._save()
        self.prune()

    # -- readers ------------------------------------------------------------------------------
    def for_event(self, event_id: str) -> ClipRecord | None:
        with self._lock:
            clip_id = self._events.get(event_id)
            return self._clips.get(clip_id) if clip_id else None

    def get(self, clip_id: str) -> ClipRecord | None:
        with self._lock:
            return self._clips.get(clip_id)

    def path(self, rec: ClipRecord) -> Path:
        """The file of a ready clip, checked to lie inside the clip directory."""
        path = (self.root / rec.file).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"clip file outside the clip directory: {rec.file!r}")
        return path

    def list(self, stream_id: str | None = None) -> list[ClipRecord]:
        with self._lock:
            clips = list(self._clips.values())
        return sorted((c for c in clips if stream_id is None or c.stream_id == stream_id),
                      key=lambda c: c.started_at)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            clips = list(self._clips.values())
        return {"clips": len(clips), "bytes": sum(c.size_bytes for c in clips), "deleted": self.deleted,
                "recording": sum(1 for c in clips if c.state == "recording")}

    # -- retention ----------------------------------------------------------------------------
    def prune(self) -> int:
        """Delete clips past ``max_age_days``, then the oldest beyond ``max_total_bytes``."""
        cutoff = self.wallclock() - self.max_age_days * 86400.0
        with self._lock:
            ready = sorted((c for c in self._clips.values() if c.state == "ready"),
                           key=lambda c: c.started_at)
            doomed = [c for c in ready if (c.ended_at or c.started_at) < cutoff]
            kept = [c for c in ready if c not in doomed]
            total = sum(c.size_bytes for c in kept)
            while kept and total > self.max_total_bytes:
                oldest = kept.pop(0)
                total -= oldest.size_bytes
                doomed.append(oldest)
            for rec in doomed:
                (self.root / rec.file).unlink(missing_ok=True)
                self._clips.pop(rec.id, None)
                for event_id in rec.events:
                    if self._events.get(event_id) == rec.id:
                        del self._events[event_id]
            if doomed:
                self._save()
            self.deleted += len(doomed)
        if doomed:
            log.info("clip retention deleted %d clip(s)", len(doomed))
        return len(doomed)
