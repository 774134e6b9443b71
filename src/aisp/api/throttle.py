"""The failed-key throttle: a token bucket per client address.

Every wrong API key or ticket a client sends takes one token from its bucket; the bucket holds
``burst`` tokens (``AISP_AUTH_FAIL_BURST``) and refills at ``rate`` tokens per second
(``AISP_AUTH_FAIL_PER_SECOND``). A client with an empty bucket gets 429 ``TOO_MANY_REQUESTS``
with ``Retry-After`` for any key the server would have to look up; keys it verified recently
still pass, so a legitimate client behind the same address keeps working.

Buckets are kept for at most :data:`MAX_CLIENTS` addresses; full buckets are forgotten first
(they carry no information), then the least recently failed.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["FailureThrottle", "MAX_CLIENTS"]

MAX_CLIENTS = 10_000


class FailureThrottle:
    def __init__(
        self, *, burst: int, rate: float, clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("burst must be >= 1 and rate > 0")
        self.burst = float(burst)
        self.rate = float(rate)
        self._clock = clock
        self._max = max_clients
        # address -> (tokens, at); most recently failed last
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _tokens(self, client: str, now: float) -> float:
        hit = self._buckets.get(client)
        if hit is None:
            return self.burst
        tokens, at = hit
        return min(self.burst, tokens + (now - at) * self.rate)

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may try a key again, or None when it may now."""
        now = self._clock()
        with self._lock:
            tokens = self._tokens(client, now)
        if tokens >= 1.0:
            return None
        return (1.0 - tokens) / self.rate

    def failed(self, client: str) -> None:
        """Record one wrong key or ticket from ``client``."""
        now = self._clock()
        with self._lock:
            tokens = max(0.0, self._tokens(client, now) - 1.0)
            self._buckets[client] = (tokens, now)
            self._buckets.move_to_end(client)
            if len(self._buckets) > self._max:
                self._evict(now)

    def _evict(self, now: float) -> None:
        full = [c for c in self._buckets if self._tokens(c, now) >= self.burst]
        for c in full:
            del self._buckets[c]
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)

    @staticmethod
    def header_value(seconds: float) -> str:
        """``Retry-After`` in whole seconds (at least 1)."""
        return str(max(1, math.ceil(seconds)))
