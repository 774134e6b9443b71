""":class:`EventRelay`: events that stream actors stored reach the API process's event bus.

A stream actor writes its discrete events straight to the shared store, in one transaction with
its position (``docs/cluster.md``, exactly once). The API's consumers (``WS /ws/events``, MQTT,
webhooks) follow the API's own :class:`~aisp.events.EventBus`, so the relay follows the ``events``
table and publishes each new row to that bus once, leaving out the bus's ``store`` subscriber
(the row is stored already).

Why ``seq`` and not ``id`` or ``time``: an event's id and time are made on its node when it
happens, but the actor commits it up to seconds later (checkpoints every 0.5 s; retries while the
database is away), and several actors commit in any order. ``seq`` (migration 0005) is numbered
by the database at insert, so a row committed late still has a number above the cursor, except
for one case: on PostgreSQL, two transactions may commit in the other order than they took their
numbers. So the relay keeps the numbers it skipped over (*gaps*) for ``gap_timeout`` seconds and
asks for them again on each poll; a gap that never fills (a rolled-back insert, or a conflicting
id skipped by *on conflict do nothing*) is dropped after that.

- **From now**: the cursor starts at the newest ``seq`` when the relay first reaches the store:
  events stored before the API started are not sent to MQTT and webhooks again.
- **Local events are not doubled**: events published on this bus by the API's own engine (the
  demo stream) are written to the table by the ``store`` subscriber too. The relay subscribes a
  recorder (``relay-local``) that remembers their ids, and skips those rows.
- **Bounded**: at most ``batch_size`` rows a query; a full batch is followed at once by the next.
- **Store outage**: a failed poll is logged (once, then at debug), counted, and retried with
  backoff up to 5 s; the cursor stays, so nothing committed meanwhile is lost.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from aisp.events import Event, EventBus
from aisp.store.event_records import EventRecordRepository

__all__ = ["EventRelay", "LOCAL_SUBSCRIBER"]

log = logging.getLogger("aisp.cluster.events")

#: the bus subscriber that records the ids of events published in this process
LOCAL_SUBSCRIBER = "relay-local"
_RETRY_MAX = 5.0


class EventRelay:
    """Follows ``records`` (the store's ``events`` table) and publishes new rows on ``bus``,
    skipping the subscribers in ``skip``. :meth:`poll` is one pass (tests call it directly);
    :meth:`start` runs it every ``interval`` seconds on a thread, once ``ready()`` holds: the API
    opens the cluster before MQTT and webhooks subscribe, and the cursor taken at the start must
    not be spent before they do."""

    def __init__(self, records: EventRecordRepository, bus: EventBus, *, interval: float = 0.25,
                 batch_size: int = 500, gap_timeout: float = 30.0, skip: tuple[str, ...] = ("store",),
                 local_ids_max: int = 100_000, max_gaps: int = 10_000,
                 ready: Callable[[], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._records = records
        self._ready = ready
        self._bus = bus
        self.interval = interval
        self.batch_size = batch_size
        self.gap_timeout = gap_timeout
        self._skip = (*skip, LOCAL_SUBSCRIBER)
        self._local_max = local_ids_max
        self._max_gaps = max_gaps
        self._clock = clock
        self._lock = threading.Lock()
        self._local: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._cursor: int | None = None  # None until the store answered once
        self._gaps: dict[int, float] = {}  # seq -> when to give up on it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = True
        self._relayed = self._local_skipped = self._errors = self._gaps_dropped = self._polls = 0
        self._more = False  # the last pass read a whole batch: there may be more
        self._last_latency: float | None = None
        self._max_latency = 0.0

    # --- lifecycle -------------------------------------------------------------------------
    def attach(self) -> EventRelay:
        """Subscribe the local-id recorder and take the cursor (when the store answers; else the
        first :meth:`poll` does). :meth:`start` calls it; tests call it, then :meth:`poll`."""
        self._bus.subscribe(LOCAL_SUBSCRIBER, self._remember_local, maxsize=10_000)
        self._try_init()
        return self

    def start(self) -> EventRelay:
        """:meth:`attach`, then poll on a thread. Never raises for a store that is away: the
        thread keeps trying."""
        self.attach()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="aisp-event-relay", daemon=True)
        self._thread.start()
        log.info("event relay: following the store's events from seq %s, every %.2f s",
                 self._cursor, self.interval)
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._bus.unsubscribe(LOCAL_SUBSCRIBER)

    # --- one pass ----------------------------------------------------------------------------
    def poll(self) -> int:
        """Publish what was committed since the last pass; the number published. Raises what the
        store raises (the thread counts it and retries)."""
        if self._cursor is None and not self._try_init(raise_errors=True):
            return 0
        assert self._cursor is not None
        self._polls += 1
        published = self._publish(self._records.by_seq(list(self._gaps))) if self._gaps else 0
        now = self._clock()
        for seq in [s for s, deadline in self._gaps.items() if deadline <= now]:
            del self._gaps[seq]
            self._gaps_dropped += 1
        rows = self._records.after_seq(self._cursor, self.batch_size)
        self._more = len(rows) >= self.batch_size
        if not rows:
            newest = self._records.max_seq()
            if newest < self._cursor:
                # SQLite numbers a row past the largest left: after retention emptied the table it
                # starts again low. Seen at the first empty poll after the delete (0.25 s), so
                # following on from what is left loses nothing in practice and repeats nothing.
                log.warning("event relay: the events table went back from seq %s to %s (emptied?); "
                            "following from there", self._cursor, newest)
                self._cursor, self._gaps = newest, {}
            return published
        expected = self._cursor + 1
        for seq, _ in rows:
            if seq > expected and len(self._gaps) < self._max_gaps:
                for missing in range(expected, min(seq, expected + self._max_gaps - len(self._gaps))):
                    self._gaps[missing] = now + self.gap_timeout
            expected = seq + 1
        self._cursor = rows[-1][0]
        return published + self._publish(rows)

    def _publish(self, rows: list[tuple[int, Event]]) -> int:
        n = 0
        wall = time.time()
        for seq, event in rows:
            self._gaps.pop(seq, None)
            with self._lock:
                if event.id in self._local:
                    del self._local[event.id]
                    self._local_skipped += 1
                    continue
            self._bus.publish(event, skip=self._skip)
            n += 1
            latency = max(0.0, wall - event.time)
            self._last_latency = latency
            self._max_latency = max(self._max_latency, latency)
        self._relayed += n
        return n

    def _try_init(self, *, raise_errors: bool = False) -> bool:
        if self._cursor is not None:
            return True
        try:
            self._cursor = self._records.max_seq()
        except Exception as exc:  # noqa: BLE001 - the store is away; the thread tries again
            if raise_errors:
                raise
            log.warning("event relay: the store is not reachable yet, starting when it is: %s", exc)
            return False
        return True

    def _remember_local(self, event: Event) -> None:
        with self._lock:
            self._local[event.id] = None
            while len(self._local) > self._local_max:
                self._local.popitem(last=False)

    def _run(self) -> None:
        while self._ready is not None and not self._ready():  # the consumers are not subscribed yet
            if self._stop.wait(0.05):
                return
        delay = self.interval
        while not self._stop.is_set():
            try:
                self.poll()
                more = self._more
            except Exception as exc:  # noqa: BLE001 - the store is away: log, back off, retry
                self._errors += 1
                if self._healthy:
                    log.warning("event relay: reading the store failed, retrying (up to every %.0f s): %s",
                                _RETRY_MAX, exc)
                else:
                    log.debug("event relay: retry failed: %s", exc)
                self._healthy = False
                delay = min(_RETRY_MAX, max(delay * 2, self.interval))
                self._stop.wait(delay)
                continue
            if not self._healthy:
                log.info("event relay: the store answers again; following from seq %s", self._cursor)
            self._healthy = True
            delay = self.interval
            if not more:
                self._stop.wait(self.interval)

    # --- figures -----------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """For ``GET /api/cluster`` and ``/metrics``: ``relayed`` events, ``local_skipped`` (the
        API's own), ``errors`` (failed polls), ``gaps`` open / ``gaps_dropped``, ``cursor``,
        ``healthy``, and the age of the last relayed event at its publication (``latency_s``:
        capture to bus, its checkpoint delay included) and the largest so far."""
        return {"relayed": self._relayed, "local_skipped": self._local_skipped, "errors": self._errors,
                "polls": self._polls, "gaps": len(self._gaps), "gaps_dropped": self._gaps_dropped,
                "cursor": self._cursor, "healthy": self._healthy,
                "latency_s": None if self._last_latency is None else round(self._last_latency, 3),
                "max_latency_s": round(self._max_latency, 3)}
