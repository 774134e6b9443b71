"""Webhooks out: signed, retried deliveries of events to admin-defined URLs.

Stages::

    EventBus ─► subscriber queue ─► aisp-events-webhooks thread: match each enabled webhook's
        filter, queue one delivery per match ─► delivery heap (bounded: webhook_queue_size,
        ordered by due time) ─► webhook_workers threads (aisp-webhook-N): sign, POST (pinned to the
        checked addresses), log ─► done, or back on the heap with a backoff

No thread per delivery: a fixed, small set of workers (started with the first webhook) shares a
heap of due deliveries, and retries wait on the heap, not in a thread. The bus subscription
exists only while at least one webhook is enabled.

A delivery is retried on a connection error, a timeout, HTTP 408, 429 or 5xx, after
``webhook_backoff_seconds * 2**(attempt-1)`` capped at ``webhook_backoff_max_seconds`` (or the
answer's ``Retry-After``, within the cap), with jitter (a random 50-100 % of the delay), up to
``webhook_max_attempts`` attempts. A target the source policy refuses, another 4xx, or the last
attempt failing ends it ``failed``; ``webhook_disable_after`` consecutive failed deliveries
disable the webhook. Every attempt re-checks the URL against the policy (DNS rebinding).

Each delivery is logged (``GET /api/webhooks/{id}/deliveries``): status, attempts, HTTP status,
last error (URL passwords redacted), a short response excerpt. Accounting per webhook in a
:class:`~aisp.delivery.accounting.DeliveryLedger` (target ``webhook:<id>``).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aisp.delivery._http import HttpResult, PinnedSender
from aisp.delivery.accounting import DeliveryLedger
from aisp.delivery.signing import SIGNATURE_HEADER, signature_header
from aisp.errors import AISPError
from aisp.events import Event, EventBus, Subscription, new_event_id
from aisp.netpolicy import redact_url

if TYPE_CHECKING:
    import httpx

    from aisp.settings import Settings
    from aisp.store.webhook_repo import DeliveryRecord, WebhookRecord, WebhookRepository

__all__ = ["WebhookDispatcher", "matches"]

log = logging.getLogger("aisp.delivery")

_RETRY_STATUS = frozenset({408, 425, 429})
_PRUNE_EVERY_S = 3600.0


def matches(hook: WebhookRecord, event: Event) -> bool:
    """Does ``event`` pass ``hook``'s filter? (An empty list matches everything.)"""
    if hook.event_types and event.type not in hook.event_types:
        return False
    if hook.streams and event.stream_id not in hook.streams:
        return False
    return not hook.labels or (event.label is not None and event.label in hook.labels)


def loggable_url(url: str) -> str:
    """A webhook URL for logs: password redacted, query dropped (tokens often live there)."""
    text = redact_url(url)
    return text.split("?", 1)[0] + ("?..." if "?" in text else "")


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    delivery_id: str = field(compare=False)
    webhook_id: str = field(compare=False)
    event: Event | None = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(compare=False, default=0)
    created_wall: float = field(compare=False, default=0.0)


class WebhookDispatcher:
    """See the module doc. ``start(bus)``, ``reload()`` after a webhook changes, ``close()``."""

    def __init__(
        self,
        settings: Settings,
        repo: WebhookRepository,
        *,
        client: httpx.Client | None = None,
        resolver: Callable[[str], list[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        version: str = "",
    ) -> None:
        self.settings = settings
        self._repo = repo
        self._clock = clock
        self._wall = wall
        self._jitter = jitter
        self._own_client = client is None
        if client is None:
            import httpx

            client = httpx.Client(
                timeout=httpx.Timeout(settings.webhook_timeout_seconds),
                follow_redirects=False,
                trust_env=False,  # an environment proxy would bypass the address pinning
                limits=httpx.Limits(max_connections=4 * settings.webhook_workers,
                                    max_keepalive_connections=2 * settings.webhook_workers),
                headers={"User-Agent": f"aisp-webhooks/{version or '0'}"},
            )
        self._client = client
        self._sender = PinnedSender(settings, client, resolver=resolver)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._sub_lock = threading.Lock()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._hooks: dict[str, WebhookRecord] = {}
        self._ledgers: dict[str, DeliveryLedger] = {}
        self._workers: list[threading.Thread] = []
        self._busy = 0
        self._stopping = False
        self._bus: EventBus | None = None
        self._sub: Subscription | None = None
        self._last_prune = float("-inf")
        self._disabled_total = 0

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, bus: EventBus | None) -> WebhookDispatcher:
        self._bus = bus
        self.reload()
        return self

    def reload(self) -> None:
        """Re-read every webhook from the store (after a create, update or delete)."""
        hooks = {h.id: h for h in self._repo.list()}
        with self._lock:
            self._hooks = hooks
            for hid in hooks:
                self._ledgers.setdefault(hid, DeliveryLedger(
                    f"webhook:{hid}", buffer_bound=self.settings.webhook_queue_size, clock=self._wall))
        self._sync_subscription()

    def _sync_subscription(self) -> None:
        with self._sub_lock:  # the API (reload) and a worker (a webhook disabled) may both get here
            with self._lock:
                want = any(h.enabled for h in self._hooks.values()) and not self._stopping
            if want and self._sub is None and self._bus is not None:
                self._ensure_workers()
                self._sub = self._bus.subscribe("webhooks", self.handle,
                                                maxsize=self.settings.webhook_queue_size)
            elif not want and self._sub is not None and self._bus is not None:
                self._sub = None
                self._bus.unsubscribe("webhooks")

    def _ensure_workers(self) -> None:
        with self._lock:
            if self._workers or self._stopping:
                return
            for i in range(self.settings.webhook_workers):
                t = threading.Thread(target=self._work, name=f"aisp-webhook-{i}", daemon=True)
                self._workers.append(t)
                t.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking events, give queued deliveries until ``timeout`` (due ones are sent; those
        waiting for a retry are not), then stop. Unsent deliveries are counted ``failed``."""
        deadline = self._clock() + timeout
        with self._sub_lock:
            if self._sub is not None and self._bus is not None:
                self._bus.unsubscribe("webhooks")  # queued events are matched first
                self._sub = None
        with self._cond:
            while (self._busy or any(j.due <= self._clock() for j in self._heap)) \
                    and self._clock() < deadline:
                self._cond.wait(min(0.1, max(0.0, deadline - self._clock())))
            self._stopping = True
            left = list(self._heap)
            self._heap.clear()
            self._cond.notify_all()
        for job in left:
            self._finish(job, "failed", None, "not delivered before shutdown", job.attempt,
                         count_failure=False)
        for t in self._workers:
            t.join(max(0.1, deadline - self._clock()))
        if self._own_client:
            self._client.close()

    # --- in -----------------------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        """Queue one delivery per enabled webhook whose filter ``event`` passes (bus thread)."""
        with self._lock:
            hooks = [h for h in self._hooks.values() if h.enabled and matches(h, event)]
        for hook in hooks:
            delivery_id = new_event_id(self._wall())
            body = json.dumps({"id": delivery_id, "type": "event", "webhook_id": hook.id,
                               "event": event.to_dict()}, separators=(",", ":"), default=str).encode()
            job = _Job(self._clock(), next(self._seq), delivery_id, hook.id, event, body,
                       created_wall=self._wall())
            ledger = self._ledger(hook.id)
            with self._cond:
                if len(self._heap) >= self.settings.webhook_queue_size or self._stopping:
                    full = True
                else:
                    full = False
                    ledger.accept(delivery_id, event.time)
                    heapq.heappush(self._heap, job)
                    self._cond.notify()
            if full:
                ledger.refuse("dropped")
                log.warning("webhook %s: delivery queue full (webhook_queue_size=%s); event %s dropped",
                            hook.id, self.settings.webhook_queue_size, event.id)

    def fire_test(self, webhook_id: str) -> DeliveryRecord:
        """Send one signed test delivery now, once (no retry); log and return it."""
        hook = self._repo.get(webhook_id)
        delivery_id = new_event_id(self._wall())
        body = json.dumps({"id": delivery_id, "type": "test", "webhook_id": hook.id, "event": None,
                           "message": "AISP test delivery"}, separators=(",", ":")).encode()
        result = self._attempt(hook, delivery_id, body, 1)
        return self._repo.log_delivery(
            delivery_id, hook.id, event_id=None, event_type="test",
            status="delivered" if result.ok else "failed", attempts=1, response_status=result.status,
            last_error=result.error, response_excerpt=result.excerpt, duration_ms=result.duration_ms,
        )

    # --- workers ------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                job = None
                while not self._stopping:
                    now = self._clock()
                    if self._heap and self._heap[0].due <= now:
                        job = heapq.heappop(self._heap)
                        self._busy += 1
                        break
                    self._cond.wait(None if not self._heap else max(0.001, self._heap[0].due - now))
                if job is None:
                    return
            try:
                self._deliver(job)
            except Exception:  # noqa: BLE001 - a worker must survive any one delivery
                log.exception("webhook %s: delivery %s failed unexpectedly", job.webhook_id, job.delivery_id)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
            self._maybe_prune()

    def _deliver(self, job: _Job) -> None:
        with self._lock:
            hook = self._hooks.get(job.webhook_id)
        if hook is None or not hook.enabled:
            why = "webhook deleted" if hook is None else "webhook disabled"
            self._finish(job, "failed", None, why, job.attempt, count_failure=False)
            return
        job.attempt += 1
        result = self._attempt(hook, job.delivery_id, job.body, job.attempt)
        if result.ok:
            self._finish(job, "delivered", result, None, job.attempt)
            return
        permanent = result.refused or (
            result.status is not None and result.status < 500 and result.status not in _RETRY_STATUS)
        if permanent or job.attempt >= self.settings.webhook_max_attempts:
            self._finish(job, "failed", result, result.error, job.attempt)
            return
        delay = self._backoff(job.attempt, result.retry_after)
        self._ledger(hook.id).retried()
        self._log(job, "pending", result, result.error, job.attempt)
        log.info("webhook %s: attempt %s of delivery %s failed (%s); retrying in %.2f s", hook.id,
                 job.attempt, job.delivery_id, result.error, delay)
        with self._cond:
            if self._stopping:
                stopping = True
            else:
                stopping = False
                job.due = self._clock() + delay
                job.seq = next(self._seq)
                heapq.heappush(self._heap, job)
                self._cond.notify()
        if stopping:
            self._finish(job, "failed", result, "not delivered before shutdown", job.attempt,
                         count_failure=False)

    def _attempt(self, hook: WebhookRecord, delivery_id: str, body: bytes, attempt: int) -> HttpResult:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(hook.secret, body, now=self._wall()),
            "X-AISP-Delivery": delivery_id,
            "X-AISP-Webhook": hook.id,
            "X-AISP-Attempt": str(attempt),
        }
        return self._sender.post(hook.url, body, headers)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        base = min(s.webhook_backoff_max_seconds, s.webhook_backoff_seconds * 2 ** (attempt - 1))
        if retry_after is not None:
            base = min(s.webhook_backoff_max_seconds, max(base, retry_after))
        return base * (0.5 + 0.5 * self._jitter())

    def _finish(self, job: _Job, status: str, result: HttpResult | None, error: str | None, attempts: int,
                *, count_failure: bool = True) -> None:
        self._ledger(job.webhook_id).settle(job.delivery_id, status)
        self._log(job, status, result, error, attempts)
        if status == "failed" and count_failure:
            log.warning("webhook %s: delivery %s failed after %s attempt(s): %s", job.webhook_id,
                        job.delivery_id, attempts, error)
        if not count_failure:
            return
        try:
            rec = self._repo.record_outcome(job.webhook_id, success=status == "delivered",
                                            disable_after=self.settings.webhook_disable_after)
        except AISPError as exc:
            log.warning("webhook %s: cannot record the delivery outcome: %s", job.webhook_id, exc)
            return
        if rec is None:
            return
        with self._lock:
            was = self._hooks.get(rec.id)
            self._hooks[rec.id] = rec
        if was is not None and was.enabled and not rec.enabled:
            with self._lock:
                self._disabled_total += 1
            log.warning("webhook %s (%s) disabled: %s", rec.id, loggable_url(rec.url), rec.disabled_reason)
            self._sync_subscription()

    def _log(
        self, job: _Job, status: str, result: HttpResult | None, error: str | None, attempts: int
    ) -> None:
        try:
            self._repo.log_delivery(
                job.delivery_id, job.webhook_id, event_id=job.event.id if job.event else None,
                event_type=job.event.type if job.event else "test", status=status, attempts=attempts,
                response_status=result.status if result else None, last_error=error,
                response_excerpt=result.excerpt if result else None,
                duration_ms=result.duration_ms if result else None, created_at=job.created_wall or None,
            )
        except AISPError as exc:  # the store is away: the delivery itself still counts
            log.warning("webhook %s: cannot log delivery %s: %s", job.webhook_id, job.delivery_id, exc)

    def _maybe_prune(self) -> None:
        now = self._clock()
        with self._lock:
            if now - self._last_prune < _PRUNE_EVERY_S:
                return
            self._last_prune = now
        cutoff = self._wall() - self.settings.webhook_log_retention_hours * 3600.0
        try:
            n = self._repo.delete_deliveries_older_than(cutoff)
        except AISPError as exc:
            log.warning("webhook delivery log retention failed: %s", exc)
            return
        if n:
            log.info("webhook delivery log: deleted %s row(s) older than %.0f h", n,
                     self.settings.webhook_log_retention_hours)

    # --- status -------------------------------------------------------------------------------
    def _ledger(self, webhook_id: str) -> DeliveryLedger:
        with self._lock:
            ledger = self._ledgers.get(webhook_id)
            if ledger is None:
                ledger = self._ledgers[webhook_id] = DeliveryLedger(
                    f"webhook:{webhook_id}", buffer_bound=self.settings.webhook_queue_size, clock=self._wall)
            return ledger

    def ledgers(self) -> list[DeliveryLedger]:
        with self._lock:
            return [self._ledgers[h] for h in self._hooks if h in self._ledgers]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            hooks = dict(self._hooks)
            queued, workers, disabled = len(self._heap), len(self._workers), self._disabled_total
        sub = self._sub.stats() if self._sub is not None else None
        return {
            "webhooks": len(hooks),
            "enabled": sum(1 for h in hooks.values() if h.enabled),
            "workers": workers,
            "queued": queued,
            "queue_bound": self.settings.webhook_queue_size,
            "disabled_by_failures": disabled,
            "bus_dropped": sub.dropped if sub else 0,
            "targets": [ledger.snapshot().to_dict() for ledger in self.ledgers()],
        }
