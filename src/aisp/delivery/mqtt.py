"""MQTT out: every event, the current counts and the latest snapshot, through paho-mqtt.

Stages::

    EventBus ─► subscriber queue (bounded, 10,000) ─► aisp-events-mqtt thread
        ─► paho publish() (never blocks: appends to paho's queue) ─► paho network thread ─► broker

Broker loss never blocks the frame path (the bus never blocks, and paho's ``publish`` only
queues). While the broker is away, messages at QoS 1/2 wait in paho's own queue, bounded by
``max_queued_messages_set(mqtt_buffer_size)``; what is refused beyond the bound is dropped and
counted. When the broker returns, paho sends the queue in publication order (at most 20 in
flight, the rest as acknowledgements come back); every event message that had to wait for a
reconnect (buffered during the outage, or in flight when the connection broke and so sent
again) is counted in ``retried``: delivery is at least once, so a subscriber may
see a message twice, never miss one within the bound. At QoS 0 nothing is buffered: a publish
while disconnected is dropped and counted.

Accounting (:class:`~aisp.delivery.accounting.DeliveryLedger`, target ``mqtt``): each event's
message on ``<prefix>/events`` is ``delivered`` when the broker acknowledges it (QoS 1/2) or paho
has written it (QoS 0). Count, snapshot and discovery messages are counted apart (``messages``).
They carry state, not a stream: while the broker is away they are not buffered (the buffer is
for events); every connect publishes the current counts and each stream's latest snapshot again.

``<prefix>/available`` is ``online`` (retained) after each connect, and ``offline`` as the last
will (the broker publishes it when the connection dies) and on a clean :meth:`MqttPublisher.close`.
The broker URL's password never reaches a log line or the status: both show
:func:`aisp.netpolicy.redact_url`.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from aisp.delivery.accounting import DeliveryLedger
from aisp.delivery.counts import CountBoard
from aisp.delivery.snapshots import SnapshotLookup
from aisp.delivery.topics import Topics, ha_discovery
from aisp.errors import ConfigError
from aisp.events import Event, EventBus, Subscription
from aisp.netpolicy import redact_url

if TYPE_CHECKING:
    from aisp.settings import Settings

__all__ = ["MqttConfig", "MqttPublisher"]

log = logging.getLogger("aisp.delivery")

_MAX_INFLIGHT = 20
_HOP_QUEUE = 10_000


@dataclass(frozen=True)
class MqttConfig:
    """Where and how to publish; built from the settings by :meth:`from_settings`."""

    host: str
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = "aisp"
    qos: int = 1
    prefix: str = "aisp"
    ca_file: Path | None = None
    buffer_size: int = 10_000
    keepalive: int = 30
    ha_discovery: bool = False
    ha_prefix: str = "homeassistant"
    counts_from_tracks: bool = True  # from_settings: settings.mqtt_counts == "events"
    url: str = field(default="", repr=False)  # as configured; shown only through redact_url
    reconnect_min_delay: float = 1.0
    reconnect_max_delay: float = 30.0

    @property
    def display_url(self) -> str:
        return redact_url(self.url) if self.url else f"mqtt://{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MqttConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(
                f"mqtt_url {redact_url(url)!r}: expected mqtt://[user:pass@]host[:port] or mqtts://...",
                field="mqtt_url", value=redact_url(url),
            )
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            url=url,
            **options,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> MqttConfig:
        if not settings.mqtt_url:
            raise ConfigError("mqtt_url is not set", field="mqtt_url")
        client_id = settings.mqtt_client_id or f"aisp-{socket.gethostname()}-{settings.port}"
        return cls.from_url(
            settings.mqtt_url,
            client_id=client_id[:128],
            qos=settings.mqtt_qos,
            prefix=settings.mqtt_topic_prefix,
            ca_file=settings.mqtt_ca_file,
            buffer_size=settings.mqtt_buffer_size,
            keepalive=settings.mqtt_keepalive_seconds,
            ha_discovery=settings.mqtt_ha_discovery,
            ha_prefix=settings.mqtt_ha_prefix,
            counts_from_tracks=settings.mqtt_counts == "events",
        )


class MqttPublisher:
    """Publishes a bus's events to one broker; see the module doc. ``start()``, then ``close()``."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        snapshots: SnapshotLookup | None = None,
        version: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.topics = Topics(config.prefix)
        self.ledger = DeliveryLedger("mqtt", buffer_bound=config.buffer_size, clock=clock)
        self.counts = CountBoard(self._publish_count, tracks=config.counts_from_tracks)
        self._snapshots = snapshots
        self._version = version
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._inflight: dict[int, tuple[str, str | None]] = {}  # mid -> (kind, event id)
        self._early: set[int] = set()  # acknowledged before publish() returned
        self._discovered: set[tuple[str, str | None, str]] = set()
        self._latest_snapshot: dict[str, bytes] = {}  # stream -> JPEG, republished on connect
        self._messages = {"published": 0, "dropped": 0, "failed": 0}
        self._connected = threading.Event()
        self._connects = self._disconnects = 0
        self._last_error: str | None = None
        self._client: Any = None
        self._sub: Subscription | None = None
        self._bus: EventBus | None = None
        self._closing = self._closed = False

    def __repr__(self) -> str:
        return f"MqttPublisher({self.config.display_url!r}, client_id={self.config.client_id!r})"

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, bus: EventBus | None = None) -> MqttPublisher:
        """Connect in the background (a broker that is down now is retried) and follow ``bus``."""
        from aisp._lazy import require

        require("paho.mqtt.client")
        import paho.mqtt.client as mqtt

        cfg = self.config
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id, protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            client.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None)
        client.max_queued_messages_set(cfg.buffer_size)
        client.max_inflight_messages_set(_MAX_INFLIGHT)
        client.reconnect_delay_set(cfg.reconnect_min_delay, cfg.reconnect_max_delay)  # type: ignore[arg-type]
        client.will_set(self.topics.available, "offline", qos=max(1, cfg.qos), retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_connect_fail = self._on_connect_fail
        self._client = client
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive)
        client.loop_start()
        log.info("mqtt: publishing to %s as %s (qos %s, buffer %s, prefix %s)", cfg.display_url,
                 cfg.client_id, cfg.qos, cfg.buffer_size, cfg.prefix)
        if bus is not None:
            # the hop to paho: it only holds bursts (publish() never waits), so it is not the bound
            self._bus = bus
            self._sub = bus.subscribe("mqtt", self.handle, maxsize=max(cfg.buffer_size, _HOP_QUEUE))
        return self

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop following the bus, send what is buffered (within ``timeout``), publish ``offline``,
        disconnect. What is still unsent is counted ``failed``. Idempotent."""
        if self._closed or self._closing:
            return
        self._closing = True
        deadline = time.monotonic() + timeout
        if self._sub is not None and self._bus is not None:
            self._bus.unsubscribe("mqtt")  # what the hop holds is published first
        self._closed = True
        client = self._client
        if client is None:
            return
        with self._settled:
            while self._inflight and self._connected.is_set() and time.monotonic() < deadline:
                self._settled.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        if self._connected.is_set():
            info = client.publish(self.topics.available, "offline", qos=max(1, self.config.qos), retain=True)
            try:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            except (ValueError, RuntimeError) as exc:
                log.warning("mqtt: could not publish 'offline' at shutdown: %s", exc)
        client.disconnect()
        client.loop_stop()
        lost = self.ledger.settle_all("failed")
        snap = self.ledger.snapshot()
        log.info("mqtt closed: delivered=%s dropped=%s failed=%s (undelivered at shutdown: %s) retried=%s",
                 snap.delivered, snap.dropped, snap.failed, lost, snap.retried)

    # --- in: events and counts -----------------------------------------------------------------
    def handle(self, event: Event) -> None:
        """Publish one event (its JSON, the counts it moves, its snapshot). Called on the bus's
        subscriber thread; also callable directly."""
        payload = json.dumps(event.to_dict(), separators=(",", ":"), default=str)
        self._publish("event", self.topics.events, payload, retain=False, event=event)
        try:  # the event is accounted above; what follows must not count it a second time
            self.counts.apply(event)
            if event.snapshot and self._snapshots is not None:
                data = self._snapshots(event)
                if data is not None:
                    with self._lock:
                        self._latest_snapshot[event.stream_id] = data
                    if self._connected.is_set():  # else published on the next connect
                        self._publish("snapshot", self.topics.snapshot(event.stream_id), data, retain=True)
        except Exception:  # noqa: BLE001 - a count or snapshot problem must not stop the events
            log.exception("mqtt: counts or snapshot of event %s failed", event.id)

    def set_counts(self, stream: str, counts: dict[str, int], *, zone: str | None = None) -> None:
        """The :class:`~aisp.delivery.counts.CountFeed` interface: exact counts from a producer."""
        self.counts.set_counts(stream, counts, zone=zone)

    # --- out ------------------------------------------------------------------------------------
    def _publish(self, kind: str, topic: str, payload: str | bytes, *, retain: bool,
                 event: Event | None = None, qos: int | None = None) -> None:
        import paho.mqtt.client as mqtt

        client = self._client
        qos = self.config.qos if qos is None else qos
        if client is None or self._closed and kind != "available":
            self._refuse(kind, event, "failed")
            return
        try:
            info = client.publish(topic, payload, qos=qos, retain=retain)
        except Exception as exc:  # noqa: BLE001 - a bad message must not stop the publisher
            log.warning("mqtt: cannot publish to %s: %s", topic, exc)
            self._refuse(kind, event, "failed")
            return
        rc = info.rc
        if rc == mqtt.MQTT_ERR_QUEUE_SIZE or (rc == mqtt.MQTT_ERR_NO_CONN and qos == 0):
            self._refuse(kind, event, "dropped")
            return
        if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self._refuse(kind, event, "failed")
            return
        mid = info.mid
        if event is not None:
            self.ledger.accept(event.id, event.time)
        with self._lock:
            self._messages["published"] += 1
            if mid in self._early:
                self._early.discard(mid)
                early = True
            else:
                self._inflight[mid] = (kind, event.id if event is not None else None)
                early = False
        if early and event is not None:
            self.ledger.settle(event.id, "delivered")

    def _refuse(self, kind: str, event: Event | None, outcome: str) -> None:
        with self._lock:
            self._messages["dropped" if outcome == "dropped" else "failed"] += 1
        if event is not None:
            self.ledger.refuse(outcome)

    def _publish_count(self, stream: str, zone: str | None, label: str, count: int) -> None:
        # Counts are state, not a stream: while the broker is away they are not queued (the
        # buffer is for events); each connect publishes the current values again.
        if not self._connected.is_set():
            return
        key = (stream, zone, label)
        if self.config.ha_discovery and key not in self._discovered:
            self._discover(key)
        self._publish("count", self.topics.count(stream, label, zone), str(count), retain=True)

    def _discover(self, key: tuple[str, str | None, str]) -> None:
        stream, zone, label = key
        topic, payload = ha_discovery(
            self.topics, ha_prefix=self.config.ha_prefix, node_id=self.config.client_id, stream=stream,
            label=label, zone=zone, version=self._version,
        )
        self._publish("discovery", topic, json.dumps(payload, separators=(",", ":")), retain=True)
        with self._lock:
            self._discovered.add(key)

    # --- paho callbacks (its network thread) --------------------------------------------------
    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        if reason_code.is_failure:
            self._last_error = f"connection refused: {reason_code}"
            log.error("mqtt: %s refused the connection: %s", self.config.display_url, reason_code)
            return
        with self._lock:
            self._connects += 1
            reconnect = self._connects > 1
            pending_events = sum(1 for kind, _ in self._inflight.values() if kind == "event")
        self._last_error = None
        self._connected.set()
        if reconnect:
            self.ledger.retried(pending_events)
            log.info("mqtt: reconnected to %s; sending %s buffered event(s)", self.config.display_url,
                     pending_events)
        else:
            log.info("mqtt: connected to %s", self.config.display_url)
        self._publish("available", self.topics.available, "online", retain=True, qos=max(1, self.config.qos))
        # the broker may have lost its retained state: discovery and counts again
        with self._lock:
            self._discovered.clear()
        self.counts.replay()  # in order with live changes: never a stale value after a new one
        with self._lock:
            snapshots = list(self._latest_snapshot.items())
        for stream, data in snapshots:
            self._publish("snapshot", self.topics.snapshot(stream), data, retain=True)

    def _on_connect_fail(self, _client: Any, _userdata: Any) -> None:
        self._last_error = "cannot connect"
        log.debug("mqtt: cannot connect to %s; retrying", self.config.display_url)

    def _on_disconnect(
        self, _client: Any, _userdata: Any, _flags: Any, reason_code: Any, _props: Any
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        with self._settled:
            self._disconnects += 1
            self._settled.notify_all()
        if was and not self._closed:
            self._last_error = f"disconnected: {reason_code}"
            log.warning("mqtt: lost the connection to %s (%s); buffering up to %s messages",
                        self.config.display_url, reason_code, self.config.buffer_size)

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        with self._settled:
            entry = self._inflight.pop(mid, None)
            if entry is None:
                self._early.add(mid)
            self._settled.notify_all()
        if entry is not None and entry[0] == "event" and entry[1] is not None:
            self.ledger.settle(entry[1], "delivered")

    # --- status ---------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        snap = self.ledger.snapshot().to_dict()
        sub = self._sub.stats() if self._sub is not None else None
        if sub is not None:  # events the bus hop dropped, still holds, or failed to hand us count too
            snap["accepted"] += sub.dropped + sub.queued + sub.failed
            snap["dropped"] += sub.dropped
            snap["pending"] += sub.queued
            snap["failed"] += sub.failed
        with self._lock:
            messages = dict(self._messages)
            messages["inflight"] = len(self._inflight)
            connects, disconnects = self._connects, self._disconnects
        return {
            "url": self.config.display_url,
            "client_id": self.config.client_id,
            "qos": self.config.qos,
            "prefix": self.config.prefix,
            "connected": self.connected,
            "connects": connects,
            "disconnects": disconnects,
            "last_error": self._last_error,
            "events": snap,
            "messages": messages,
        }
