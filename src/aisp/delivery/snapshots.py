"""Find the JPEG an event's ``snapshot`` reference points to (for ``aisp/<stream>/snapshot``).

The interface is one callable, :data:`SnapshotLookup`: ``lookup(event) -> bytes | None``. The
snapshot writer (the events area) may hand in its own; :class:`DataDirSnapshots` is the default
and understands two forms of ``Event.snapshot``:

- a path relative to the snapshot directory, e.g. ``2026-12-02/<id>.jpg``;
- the API path ``/api/events/<id>/snapshot``, looked up as ``<snapshot dir>/<YYYY-MM-DD>/<id>.jpg``
  (the UTC day of the id's millisecond prefix, the events area's layout), then
  ``<snapshot dir>/<stream>/<id>.jpg``, then ``<snapshot dir>/<id>.jpg``.

Nothing outside the snapshot directory is ever read (``..`` and symlinks out are refused), files
over ``max_bytes`` are skipped, and a file that does not start like a JPEG is skipped.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from aisp.events import Event

__all__ = ["SnapshotLookup", "DataDirSnapshots"]

log = logging.getLogger("aisp.delivery")

#: ``lookup(event)``: the JPEG bytes of the event's snapshot, or None
SnapshotLookup = Callable[[Event], "bytes | None"]

_API_PATH = re.compile(r"^/api/events/([A-Za-z0-9_-]{1,64})/snapshot$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class DataDirSnapshots:
    def __init__(self, root: str | os.PathLike[str], *, max_bytes: int = 5 * 1024 * 1024) -> None:
        self.root = Path(os.path.realpath(Path(root).expanduser()))
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"DataDirSnapshots(root={str(self.root)!r}, max_bytes={self.max_bytes})"

    def candidates(self, event: Event) -> list[Path]:
        ref = event.snapshot
        if not ref:
            return []
        match = _API_PATH.match(ref)
        if match:
            event_id = match.group(1)
            name = f"{event_id}.jpg"
            out = []
            day = _day_of(event_id)
            if day is not None:
                out.append(self.root / day / name)
            if _SAFE_NAME.match(event.stream_id):
                out.append(self.root / event.stream_id / name)
            out.append(self.root / name)
            return out
        if "://" in ref or ref.startswith(("/", "\\")) or "\x00" in ref:
            return []
        return [self.root / ref]

    def __call__(self, event: Event) -> bytes | None:
        for path in self.candidates(event):
            real = Path(os.path.realpath(path))
            if not real.is_relative_to(self.root):
                log.warning("snapshot reference of event %s leaves the snapshot directory: ignored", event.id)
                return None
            try:
                size = real.stat().st_size
                if size > self.max_bytes:
                    log.warning("snapshot of event %s is %s bytes, over %s: not published", event.id, size,
                                self.max_bytes)
                    return None
                data = real.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            except OSError as exc:
                log.warning("cannot read the snapshot of event %s: %s", event.id, exc)
                return None
            if not data.startswith(b"\xff\xd8"):
                log.warning("snapshot of event %s is not a JPEG: not published", event.id)
                return None
            return data
        return None


def _day_of(event_id: str) -> str | None:
    """``YYYY-MM-DD`` (UTC) of an id made by :func:`aisp.events.new_event_id` (12 hex digits of ms)."""
    try:
        ms = int(event_id[:12], 16)
        return _dt.datetime.fromtimestamp(ms / 1000.0, _dt.timezone.utc).strftime("%Y-%m-%d")
    except (ValueError, OverflowError, OSError):
        return None
