"""Discrete events to the ``WS /ws/events`` clients: one bus subscription for all of them.

A thread per WebSocket client would spend the thread budget, so the app subscribes once to the
runtime's :class:`~aisp.events.EventBus` (:meth:`EventFanout.attach`), and each client gets a
bounded ``asyncio.Queue`` on its own event loop (:meth:`EventFanout.listen`). The bus thread
hands each event to the loops of the clients whose filter matches it
(``loop.call_soon_threadsafe``); a client that does not keep up loses events beyond its queue,
counted, and is told how many (``{"type": "dropped", "count": n}``) before its next event.

Stages: bus subscriber thread -> filter -> per-client queue (bounded) -> the client's send loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from aisp.errors import ValidationError
from aisp.events import EVENT_TYPES, Event, EventBus

__all__ = ["EventFanout", "EventFilter", "EventListener", "parse_types"]

log = logging.getLogger("aisp.api")

#: Events a WebSocket client may have queued before newer ones are dropped for it.
CLIENT_QUEUE = 1024


def parse_types(value: str | None) -> tuple[str, ...] | None:
    """``type=enter,exit`` -> ("enter", "exit"); ``ValidationError`` (field ``type``) naming a bad one."""
    if value is None or not value.strip():
        return None
    types = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    bad = [t for t in types if t not in EVENT_TYPES]
    if bad:
        raise ValidationError(f"type: unknown event type {bad[0]!r}; expected any of {sorted(EVENT_TYPES)}",
                              field="type", value=value, expected=",".join(sorted(EVENT_TYPES)))
    return types


@dataclass(frozen=True)
class EventFilter:
    stream: str | None = None
    label: str | None = None
    types: tuple[str, ...] | None = None

    def matches(self, event: Event) -> bool:
        return ((self.stream is None or event.stream_id == self.stream)
                and (self.label is None or event.label == self.label)
                and (self.types is None or event.type in self.types))


class EventListener:
    """One client: its filter, its loop and its bounded queue."""

    def __init__(self, flt: EventFilter, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.filter = flt
        self.loop = loop
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0  # read and reset on the loop's thread only

    def _offer(self, event: Event) -> None:  # on the loop's thread
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def next(self) -> tuple[Event, int]:
        """The next event and how many were dropped before it (reset)."""
        event = await self.queue.get()
        dropped, self.dropped = self.dropped, 0
        return event, dropped


class EventFanout:
    """Hands bus events to WebSocket clients (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: set[EventListener] = set()
        self._bus: EventBus | None = None

    def attach(self, bus: EventBus) -> None:
        """Subscribe to ``bus`` (once)."""
        with self._lock:
            if self._bus is bus:
                return
            self._bus = bus
        bus.subscribe("websockets", self._deliver)

    def listen(self, flt: EventFilter, *, maxsize: int = CLIENT_QUEUE) -> EventListener:
        """A listener on the running event loop; :meth:`remove` it when the client goes."""
        listener = EventListener(flt, asyncio.get_running_loop(), maxsize)
        with self._lock:
            self._listeners.add(listener)
        return listener

    def remove(self, listener: EventListener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._listeners)

    def _deliver(self, event: Event) -> None:
        with self._lock:
            listeners: Iterable[EventListener] = list(self._listeners)
        for listener in listeners:
            if listener.filter.matches(event):
                try:
                    listener.loop.call_soon_threadsafe(listener._offer, event)
                except RuntimeError:  # that loop is closed: the client is gone
                    self.remove(listener)
