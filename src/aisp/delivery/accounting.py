"""Delivery accounting: every event offered to a target ends in exactly one outcome.

Per target (``mqtt``, ``webhook:<id>``) a :class:`DeliveryLedger` keeps::

    accepted  = delivered + dropped + failed + pending

- ``accepted``: events the target took on (matched its filter, reached its queue);
- ``delivered``: confirmed (MQTT: PUBACK/PUBCOMP, or written to the socket at QoS 0; webhook: a
  2xx answer);
- ``dropped``: refused because a bounded buffer was full (``buffer`` says which bound), or lost
  by a QoS 0 publish while the broker was away;
- ``failed``: given up on (attempts exhausted, a refused target, a permanent 4xx, undelivered at
  shutdown);
- ``pending``: not settled yet (in the buffer, in flight, waiting for a retry).

``retried`` counts retry attempts (a delivery sent again), not events: one event retried twice
and then delivered counts once in ``delivered`` and twice in ``retried``. Each event is settled
once: :meth:`DeliveryLedger.settle` of an unknown or already settled key is ignored and counted
in ``duplicate_settles`` (an MQTT message acknowledged twice after a reconnect, for instance).

Latency: the time from the event's ``time`` (wall clock at publication) to its confirmation, over
the last ``window`` deliveries (p50, p99, max).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DeliveryLedger", "LedgerSnapshot", "OUTCOMES"]

OUTCOMES = ("delivered", "dropped", "failed")


@dataclass(frozen=True)
class LedgerSnapshot:
    target: str
    accepted: int
    delivered: int
    dropped: int
    failed: int
    pending: int
    retried: int
    duplicate_settles: int
    buffer_bound: int | None
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    latency_ms_max: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def balanced(self) -> bool:
        """The invariant ``accepted == delivered + dropped + failed + pending``."""
        return self.accepted == self.delivered + self.dropped + self.failed + self.pending


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class DeliveryLedger:
    """Thread-safe counters of one target; keys are whatever identifies a delivery (a message id)."""

    def __init__(
        self,
        target: str,
        *,
        buffer_bound: int | None = None,
        window: int = 2048,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = target
        self.buffer_bound = buffer_bound
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[Hashable, float] = {}  # key -> the event's time
        self._accepted = self._retried = self._dup = 0
        self._outcomes = dict.fromkeys(OUTCOMES, 0)
        self._latency: deque[float] = deque(maxlen=window)

    def accept(self, key: Hashable, event_time: float | None = None) -> None:
        """A delivery starts (pending until settled)."""
        with self._lock:
            self._accepted += 1
            self._open[key] = self._clock() if event_time is None else event_time

    def refuse(self, outcome: str = "dropped") -> None:
        """An event that was never pending: dropped at a full bound, or failed at once."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome: expected one of {OUTCOMES}, got {outcome!r}")
        with self._lock:
            self._accepted += 1
            self._outcomes[outcome] += 1

    def settle(self, key: Hashable, outcome: str) -> bool:
        """Close ``key`` with ``outcome``; False (and counted) when it is unknown or already closed."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome: expected one of {OUTCOMES}, got {outcome!r}")
        now = self._clock()
        with self._lock:
            started = self._open.pop(key, None)
            if started is None:
                self._dup += 1
                return False
            self._outcomes[outcome] += 1
            if outcome == "delivered":
                self._latency.append(max(0.0, (now - started) * 1000.0))
            return True

    def retried(self, n: int = 1) -> None:
        with self._lock:
            self._retried += n

    def pending_keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._open)

    def settle_all(self, outcome: str) -> int:
        """Close every pending key (at shutdown); returns how many."""
        keys = self.pending_keys()
        return sum(self.settle(k, outcome) for k in keys)

    def snapshot(self) -> LedgerSnapshot:
        with self._lock:
            lat = sorted(self._latency)
            out = dict(self._outcomes)
            accepted, pending, retried, dup = self._accepted, len(self._open), self._retried, self._dup
        return LedgerSnapshot(
            target=self.target,
            accepted=accepted,
            delivered=out["delivered"],
            dropped=out["dropped"],
            failed=out["failed"],
            pending=pending,
            retried=retried,
            duplicate_settles=dup,
            buffer_bound=self.buffer_bound,
            latency_ms_p50=round(_pct(lat, 0.5), 2) if lat else None,
            latency_ms_p99=round(_pct(lat, 0.99), 2) if lat else None,
            latency_ms_max=round(lat[-1], 2) if lat else None,
        )
