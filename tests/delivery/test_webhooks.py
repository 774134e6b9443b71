"""The webhook dispatcher against a real HTTP receiver on loopback and a real SQLite store:
signatures, retries with backoff, disabling after N failures, the source policy at delivery time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from aisp.delivery import WebhookDispatcher, matches, signature_header, verify
from aisp.delivery.webhooks import loggable_url
from aisp.events import Event, EventBus
from aisp.settings import load_settings
from aisp.store import Store
from tests.delivery.mqtt_client import wait_until
from tests.delivery.receiver import Receiver


def _settings(tmp_path, **overrides: Any):
    opts: dict[str, Any] = {"data_dir": tmp_path, "source_hosts": "127.0.0.1",
                            "webhook_backoff_seconds": 0.01, "webhook_backoff_max_seconds": 0.05,
                            "webhook_timeout_seconds": 5.0}
    opts.update(overrides)
    return load_settings(environ={}, **opts)


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'hooks.db'}", settings=_settings(tmp_path)).open()
    try:
        yield s
    finally:
        s.close()


class Harness:
    def __init__(self, settings, store: Store, **kw: Any) -> None:
        self.bus = EventBus()
        self.store = store
        self.dispatcher = WebhookDispatcher(settings, store.webhooks, jitter=lambda: 1.0, **kw)

    def start(self) -> Harness:
        self.dispatcher.start(self.bus)
        return self

    def close(self) -> None:
        self.dispatcher.close(timeout=2)
        self.bus.close()


@pytest.fixture
def make(tmp_path, store) -> Iterator[Any]:
    made: list[Harness] = []

    def factory(**overrides: Any) -> Harness:
        h = Harness(_settings(tmp_path, **overrides.pop("settings", {})), store, **overrides)
        made.append(h)
        return h

    yield factory
    for h in made:
        h.close()


def _event(i: int = 0, **kw: Any) -> Event:
    kw.setdefault("label", "person")
    return Event(kw.pop("type", "appeared"), kw.pop("stream", "cam1"), 1_000.0 + i, frame_index=i, **kw)


def test_deliveries_are_signed_and_logged(make, store, receiver):
    hook = store.webhooks.create(receiver.url(), secret="whsec_test_secret_0123456789")
    h = make().start()
    events = [_event(i) for i in range(3)]
    for e in events:
        h.bus.publish(e)
    assert receiver.wait_for(lambda rs: len(rs) == 3)
    for req, e in zip(sorted(receiver.requests, key=lambda r: json.loads(r.body)["event"]["frame_index"]),
                      events, strict=True):
        assert verify("whsec_test_secret_0123456789", req.headers["x-aisp-signature"], req.body)
        assert not verify("another-secret-0123456789", req.headers["x-aisp-signature"], req.body)
        assert not verify("whsec_test_secret_0123456789", req.headers["x-aisp-signature"], req.body + b" ")
        body = json.loads(req.body)
        assert body["type"] == "event" and body["webhook_id"] == hook.id and body["event"] == e.to_dict()
        assert req.headers["x-aisp-delivery"] == body["id"] and req.headers["x-aisp-attempt"] == "1"
        assert req.headers["content-type"] == "application/json"
        assert req.headers["host"].startswith("127.0.0.1:")
    assert wait_until(lambda: h.dispatcher.ledgers()[0].snapshot().delivered == 3)
    # the ledger settles first, then the delivery log row is written: wait for the rows
    assert wait_until(lambda: [d.status for d in store.webhooks.deliveries(hook.id)] == ["delivered"] * 3)
    log = store.webhooks.deliveries(hook.id)
    assert len(log) == 3 and {d.status for d in log} == {"delivered"}
    assert all(d.attempts == 1 and d.response_status == 200 and d.response_excerpt == "ok" for d in log)
    assert {d.event_id for d in log} == {e.id for e in events}


def test_signature_verification_rejects_old_timestamps():
    header = signature_header("s" * 20, b"{}", now=1_000_000.0)
    assert verify("s" * 20, header, b"{}", now=1_000_100.0)
    assert not verify("s" * 20, header, b"{}", now=1_000_000.0 + 301)
    assert not verify("s" * 20, "t=abc,v1=00", b"{}")
    assert not verify("s" * 20, "", b"{}")


def test_a_failing_receiver_is_retried_with_backoff_then_succeeds(make, store):
    receiver = Receiver([500, 503])
    try:
        hook = store.webhooks.create(receiver.url(), secret="whsec_retry_secret_0123456789")
        h = make().start()
        h.bus.publish(_event())
        assert receiver.wait_for(lambda rs: len(rs) == 3)
        assert [r.headers["x-aisp-attempt"] for r in receiver.requests] == ["1", "2", "3"]
        assert len({r.headers["x-aisp-delivery"] for r in receiver.requests}) == 1  # one delivery
        gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
        assert gaps[0] >= 0.01 * 0.99 and gaps[1] >= 0.02 * 0.99  # 0.01 s, then doubled (jitter = 1.0)
        assert wait_until(lambda: h.dispatcher.ledgers()[0].snapshot().delivered == 1)
        snap = h.dispatcher.ledgers()[0].snapshot()
        assert snap.retried == 2 and snap.failed == 0 and snap.balanced
        # the ledger settles first, then the log row and the webhook's outcome are written
        assert wait_until(lambda: [d.status for d in store.webhooks.deliveries(hook.id)] == ["delivered"])
        (rec,) = store.webhooks.deliveries(hook.id)
        assert rec.status == "delivered" and rec.attempts == 3 and rec.response_status == 200
        assert wait_until(lambda: store.webhooks.get(hook.id).consecutive_failures == 0)
    finally:
        receiver.close()


def test_webhook_is_disabled_after_n_consecutive_failures(make, store):
    receiver = Receiver(default=500)
    try:
        hook = store.webhooks.create(receiver.url(), secret="whsec_failing_secret_0123456789")
        h = make(settings={"webhook_max_attempts": 2, "webhook_disable_after": 2}).start()
        h.bus.publish(_event(0))
        assert wait_until(lambda: h.dispatcher.ledgers()[0].snapshot().failed == 1)
        assert store.webhooks.get(hook.id).enabled
        h.bus.publish(_event(1))
        assert wait_until(lambda: not store.webhooks.get(hook.id).enabled)
        rec = store.webhooks.get(hook.id)
        assert rec.consecutive_failures == 2 and "consecutive failed deliveries" in rec.disabled_reason
        assert len(receiver.requests) == 4  # 2 deliveries x 2 attempts
        failed = store.webhooks.deliveries(hook.id, status="failed")
        assert len(failed) == 2 and all(d.attempts == 2 and d.last_error == "HTTP 500" for d in failed)
        assert wait_until(lambda: h.dispatcher.stats()["enabled"] == 0)
        h.bus.publish(_event(2))  # disabled: nothing is sent any more
        assert h.dispatcher.stats()["disabled_by_failures"] == 1
        snap = h.dispatcher.ledgers()[0].snapshot()
        assert snap.accepted == 2 and snap.failed == 2 and snap.retried == 2 and snap.balanced
        assert len(receiver.requests) == 4
        store.webhooks.update(hook.id, enabled=True)  # an admin enables it again: count cleared
        assert store.webhooks.get(hook.id).consecutive_failures == 0
    finally:
        receiver.close()


def test_permanent_4xx_is_not_retried(make, store):
    receiver = Receiver([410])
    try:
        hook = store.webhooks.create(receiver.url(), secret="whsec_gone_secret_0123456789")
        h = make().start()
        h.bus.publish(_event())
        assert wait_until(lambda: h.dispatcher.ledgers()[0].snapshot().failed == 1)
        assert len(receiver.requests) == 1
        (rec,) = store.webhooks.deliveries(hook.id)
        assert rec.status == "failed" and rec.attempts == 1 and rec.response_status == 410
    finally:
        receiver.close()


def test_loopback_is_refused_by_default_at_delivery(make, store, receiver):
    """A webhook stored earlier (or by another process) is checked again at each delivery."""
    hook = store.webhooks.create(receiver.url(), secret="whsec_loopback_secret_0123456789")
    h = make(settings={"source_hosts": ""}).start()
    h.bus.publish(_event())
    assert wait_until(lambda: h.dispatcher.ledgers()[0].snapshot().failed == 1)
    assert receiver.requests == []
    (rec,) = store.webhooks.deliveries(hook.id)
    assert rec.status == "failed" and rec.attempts == 1 and rec.last_error.startswith("SOURCE_NOT_ALLOWED")


def test_dns_rebinding_is_caught_at_delivery(make, store, receiver):
    """The name passed when it was created; at delivery it resolves to loopback: refused, and the
    request never leaves (the connection would go to the checked address only)."""
    names = {"hooks.example.test": ["93.184.216.34"]}
    h = make(settings={"source_hosts": "93.184.216.0/24"}, resolver=lambda host: names.get(host, []))
    hook = store.webhooks.create(f"http://hooks.example.test:{receiver.port}/hook",
                                 secret="whsec_rebind_secret_0123456789")
    assert h.dispatcher._sender.check(hook.url) == ["93.184.216.34"]
    names["hooks.example.test"] = ["127.0.0.1"]
    h.start()
    h.bus.publish(_event())
    assert wait_until(lambda: h.dispatcher.ledgers()[0].snapshot().failed == 1)
    assert receiver.requests == []
    (rec,) = store.webhooks.deliveries(hook.id)
    assert "SOURCE_NOT_ALLOWED" in rec.last_error


def test_pinned_connection_sends_the_original_host(make, store, receiver):
    """A name is resolved once, checked, and the request goes to that address with its Host."""
    h = make(resolver=lambda host: ["127.0.0.1"] if host == "hooks.internal.test" else [])
    store.webhooks.create(f"http://hooks.internal.test:{receiver.port}/in",
                          secret="whsec_pin_secret_0123456789")  # the settings allow 127.0.0.1
    h.start()
    h.bus.publish(_event())
    assert receiver.wait_for(lambda rs: len(rs) == 1)
    assert receiver.requests[0].headers["host"] == f"hooks.internal.test:{receiver.port}"
    assert receiver.requests[0].path == "/in"


def test_redirects_to_another_host_are_not_followed(make, store):
    receiver = Receiver([302], headers={"Location": "http://10.9.9.9/elsewhere"})
    try:
        hook = store.webhooks.create(receiver.url(), secret="whsec_redirect_secret_0123456789")
        h = make(settings={"webhook_max_attempts": 1}).start()
        h.bus.publish(_event())
        assert wait_until(lambda: h.dispatcher.ledgers()[0].snapshot().failed == 1)
        assert len(receiver.requests) == 1
        (rec,) = store.webhooks.deliveries(hook.id)
        assert "redirect to another host not followed" in rec.last_error
    finally:
        receiver.close()


def test_filters_select_events(make, store, receiver):
    store.webhooks.create(receiver.url(), secret="whsec_filter_secret_0123456789", event_types=["enter"],
                          streams=["cam2"], labels=["car"])
    h = make().start()
    h.bus.publish(_event(0, type="enter", stream="cam2", label="car", zone="gate"))
    h.bus.publish(_event(1, type="enter", stream="cam2", label="person", zone="gate"))
    h.bus.publish(_event(2, type="exit", stream="cam2", label="car", zone="gate"))
    h.bus.publish(_event(3, type="enter", stream="cam1", label="car", zone="gate"))
    assert receiver.wait_for(lambda rs: len(rs) == 1)
    h.dispatcher.close(timeout=2)
    assert len(receiver.requests) == 1 and json.loads(receiver.requests[0].body)["event"]["frame_index"] == 0


@pytest.mark.parametrize(
    "filters, event, expected",
    [
        ({}, _event(type="stream", label=None, state="failed"), True),
        ({"event_types": ("stream",)}, _event(type="stream", label=None, state="failed"), True),
        ({"labels": ("person",)}, _event(type="stream", label=None, state="failed"), False),
        ({"streams": ("cam1",), "labels": ("person",)}, _event(), True),
        ({"streams": ("cam9",)}, _event(), False),
    ],
)
def test_matches(filters, event, expected):
    from aisp.store import WebhookRecord

    hook = WebhookRecord("h", "", "http://x", filters.get("event_types", ()), filters.get("streams", ()),
                         filters.get("labels", ()), True, 0, None, 0.0, 0.0, "s")
    assert matches(hook, event) is expected


def test_queue_bound_drops_and_counts(make, store):
    receiver = Receiver(default=503)
    try:
        hook = store.webhooks.create(receiver.url(), secret="whsec_bound_secret_0123456789")
        h = make(settings={"webhook_queue_size": 3, "webhook_max_attempts": 20, "webhook_backoff_seconds": 30,
                           "webhook_backoff_max_seconds": 30, "webhook_disable_after": 100})
        h.dispatcher.start(None)  # no bus, so no workers yet: the queue fills deterministically
        for i in range(5):
            h.dispatcher.handle(_event(i))
        snap = h.dispatcher.ledgers()[0].snapshot()
        assert snap.accepted == 5 and snap.dropped == 2 and snap.pending == 3 and snap.balanced
        h.dispatcher.close(timeout=0.5)  # the 3 waiting for a retry are not delivered: failed, counted
        snap = h.dispatcher.ledgers()[0].snapshot()
        assert snap.pending == 0 and snap.failed == 3 and snap.dropped == 2 and snap.balanced
        assert store.webhooks.get(hook.id).enabled  # shutdown is not the receiver's failure
    finally:
        receiver.close()


def test_test_fire_and_log_redaction(make, store, receiver):
    hook = store.webhooks.create(receiver.url(), secret="whsec_fire_secret_0123456789")
    h = make()
    rec = h.dispatcher.fire_test(hook.id)
    assert rec.status == "delivered" and rec.event_type == "test" and rec.attempts == 1
    body = json.loads(receiver.requests[0].body)
    assert body["type"] == "test" and body["event"] is None
    assert verify("whsec_fire_secret_0123456789", receiver.requests[0].headers["x-aisp-signature"],
                  receiver.requests[0].body)
    assert loggable_url("https://u:pw@h.example/x?token=abc") == "https://u:***@h.example/x?..."
    assert "fire_secret" not in repr(store.webhooks.get(hook.id))
    assert "secret" not in store.webhooks.get(hook.id).to_dict()


def test_same_host_redirects_are_followed(make, store):
    receiver = Receiver([307], headers={"Location": "/moved"})
    try:
        hook = store.webhooks.create(receiver.url("/old"), secret="whsec_moved_secret_0123456789")
        h = make().start()
        h.bus.publish(_event())
        assert receiver.wait_for(lambda rs: len(rs) == 2)
        assert [r.path for r in receiver.requests] == ["/old", "/moved"]
        assert receiver.requests[0].body == receiver.requests[1].body  # 307 keeps the method and body
        assert wait_until(lambda: h.dispatcher.ledgers()[0].snapshot().delivered == 1)
        assert wait_until(lambda: [d.status for d in store.webhooks.deliveries(hook.id)] == ["delivered"])
        (rec,) = store.webhooks.deliveries(hook.id)
        assert rec.status == "delivered" and rec.attempts == 1
    finally:
        receiver.close()


@pytest.mark.parametrize(
    "attempt, retry_after, jitter, expected",
    [
        (1, None, 1.0, 0.01),
        (2, None, 1.0, 0.02),
        (3, None, 0.0, 0.02),  # jitter: half of 0.04
        (10, None, 1.0, 0.05),  # capped
        (1, 0.04, 1.0, 0.04),  # Retry-After, within the cap
        (1, 600.0, 1.0, 0.05),  # Retry-After beyond the cap: the cap
    ],
)
def test_backoff(tmp_path, store, attempt, retry_after, jitter, expected):
    d = WebhookDispatcher(_settings(tmp_path), store.webhooks, jitter=lambda: jitter)
    try:
        assert d._backoff(attempt, retry_after) == pytest.approx(expected)
    finally:
        d.close(timeout=0.1)


def test_delivery_log_retention(tmp_path):
    now = [1_000_000.0]
    settings = _settings(tmp_path, webhook_log_retention_hours=1.0)
    with Store(f"sqlite:///{tmp_path / 'ret.db'}", settings=settings, clock=lambda: now[0]) as s:
        hook = s.webhooks.create("http://127.0.0.1/x", secret="whsec_retention_0123456789")
        s.webhooks.log_delivery("old", hook.id, event_id="e1", event_type="enter",
                                status="delivered", attempts=1)
        now[0] += 3 * 3600
        s.webhooks.log_delivery("new", hook.id, event_id="e2", event_type="enter",
                                status="delivered", attempts=1)
        d = WebhookDispatcher(settings, s.webhooks, wall=lambda: now[0])
        try:
            d._maybe_prune()
        finally:
            d.close(timeout=0.1)
        assert [r.id for r in s.webhooks.deliveries(hook.id)] == ["new"]
