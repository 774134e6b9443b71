""":class:`EventBus`: fan events out to subscribers without ever blocking the publisher.

Each subscriber gets a bounded queue and a daemon thread that calls its callback in publication
order. ``publish()`` appends to every queue and returns; when a queue is full, the event is
dropped for that subscriber only and counted (``dropped``). A callback that raises is logged and
counted (``failed``); the thread goes on with the next event.

Stages: publisher -> per-subscriber queue (bounded) -> subscriber thread -> callback.
``close()`` (or ``Subscription.close()``) puts a sentinel after what is queued, so queued events
are still delivered, then joins the thread.

``publish(event, skip=("store",))`` leaves out the named subscribers: the cluster's event relay
(:mod:`aisp.cluster.event_relay`) publishes events it read from the store, which must not be
written to the store again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass

from aisp.errors import ValidationError
from aisp.events.model import Event

__all__ = ["EventBus", "Subscription", "SubscriptionStats"]

log = logging.getLogger("aisp.events")

_STOP = object()


@dataclass(frozen=True)
class SubscriptionStats:
    name: str
    delivered: int
    dropped: int
    failed: int
    queued: int


class Subscription:
    """One subscriber: its queue, its thread and its counters."""

    def __init__(self, name: str, callback: Callable[[Event], object], maxsize: int) -> None:
        if maxsize < 1:
            raise ValidationError(f"EventBus.subscribe: maxsize must be >= 1, got {maxsize}")
        self.name = name
        self._callback = callback
        self._queue: queue.Queue[object] = queue.Queue(maxsize)
        self._lock = threading.Lock()
        self._delivered = self._dropped = self._failed = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"aisp-events-{name}", daemon=True)
        self._thread.start()

    def offer(self, event: Event) -> bool:
        """Queue ``event``; False (and counted as dropped) when the queue is full or closed."""
        if self._closed:
            return False
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self._dropped += 1
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._callback(item)  # type: ignore[arg-type]
            except Exception:
                with self._lock:
                    self._failed += 1
                log.exception("event subscriber %s failed", self.name)
            else:
                with self._lock:
                    self._delivered += 1

    def stats(self) -> SubscriptionStats:
        with self._lock:
            delivered, dropped, failed = self._delivered, self._dropped, self._failed
        return SubscriptionStats(self.name, delivered, dropped, failed, self._queue.qsize())

    def close(self, timeout: float | None = 5.0) -> None:
        """Deliver what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)  # blocks only while the queue is full, i.e. while it drains
        self._thread.join(timeout)


class EventBus:
    """Publish/subscribe for :class:`Event` within one process (one runtime)."""

    def __init__(self, *, default_maxsize: int = 10_000) -> None:
        self._default_maxsize = default_maxsize
        self._subs: dict[str, Subscription] = {}
        self._lock = threading.Lock()
        self._published = 0

    def subscribe(
        self, name: str, callback: Callable[[Event], object], *, maxsize: int | None = None
    ) -> Subscription:
        """Call ``callback(event)`` on a thread of its own for every event published from now on."""
        sub = Subscription(name, callback, maxsize or self._default_maxsize)
        with self._lock:
            old = self._subs.pop(name, None)
            self._subs[name] = sub
        if old is not None:
            old.close()
        return sub

    def unsubscribe(self, name: str) -> None:
        with self._lock:
            sub = self._subs.pop(name, None)
        if sub is not None:
            sub.close()

    def publish(self, event: Event, *, skip: Collection[str] = ()) -> None:
        """Offer ``event`` to every subscriber but those named in ``skip``; never blocks."""
        with self._lock:
            subs = [s for name, s in self._subs.items() if name not in skip]
            self._published += 1
        for sub in subs:
            sub.offer(event)

    @property
    def published(self) -> int:
        with self._lock:
            return self._published

    def stats(self) -> list[SubscriptionStats]:
        with self._lock:
            subs = list(self._subs.values())
        return [s.stats() for s in subs]

    def close(self) -> None:
        with self._lock:
            subs = list(self._subs.values())
            self._subs.clear()
        for sub in subs:
            sub.close()
