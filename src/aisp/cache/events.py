"""Cache events, delivered to listeners registered with :meth:`ModelCache.add_listener`.

Listeners run on the thread that caused the event, after the cache lock is released, so a
listener may call back into the cache. A listener that raises is logged and skipped; it never
breaks the cache operation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CacheEvent", "EVENT_TYPES", "Listener", "dispatch"]

logger = logging.getLogger("aisp.cache")

#: Every ``CacheEvent.type``. ``evict`` carries ``data["reason"]``: capacity, memory,
#: invalidated, cleared, replaced or closed.
EVENT_TYPES = (
    "hit",
    "miss",
    "load",
    "load_failed",
    "put",
    "evict",
    "expire",
    "revive",
    "alert",
    "prewarm_complete",
)


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """One cache event. ``at`` is a reading of the cache clock; ``data`` never holds the model."""

    type: str
    name: str | None
    at: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "at": self.at, "data": dict(self.data)}


Listener = Callable[[CacheEvent], Any]


def dispatch(listeners: Iterable[Listener], events: Iterable[CacheEvent]) -> None:
    """Call every listener with every event, in order; exceptions are logged, never raised."""
    for event in events:
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                logger.warning("cache listener %r failed on a %s event", listener, event.type, exc_info=True)
