""":class:`DeliveryService`: the MQTT publisher and the webhook dispatcher of one server, together.

Built by the API's start-up (:mod:`aisp.api.lifecycle`) once the runtime and the store exist:
MQTT when ``AISP_MQTT_URL`` is set, webhooks when there is a store (they are defined through
``/api/webhooks``). Both follow the runtime's :class:`~aisp.events.EventBus`; :meth:`stats` is
what ``/api/status``, ``/api/delivery`` and ``/metrics`` show; :meth:`close` stops both (MQTT
publishes ``offline``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from aisp.delivery.accounting import LedgerSnapshot
from aisp.delivery.counts import CountFeed
from aisp.delivery.mqtt import MqttConfig, MqttPublisher
from aisp.delivery.snapshots import DataDirSnapshots, SnapshotLookup
from aisp.delivery.webhooks import WebhookDispatcher

if TYPE_CHECKING:
    from aisp.events import EventBus
    from aisp.settings import Settings
    from aisp.store import Store

__all__ = ["DeliveryService"]

log = logging.getLogger("aisp.delivery")


class DeliveryService:
    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        *,
        store: Store | None = None,
        snapshots: SnapshotLookup | None = None,
        version: str = "",
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.mqtt: MqttPublisher | None = None
        self.webhooks: WebhookDispatcher | None = None
        if settings.mqtt_url:
            # the events area's SnapshotWriter writes under `resolved_event_snapshot_dir`
            lookup = snapshots or DataDirSnapshots(settings.resolved_event_snapshot_dir)
            self.mqtt = MqttPublisher(MqttConfig.from_settings(settings), snapshots=lookup, version=version)
        if store is not None:
            self.webhooks = WebhookDispatcher(settings, store.webhooks, version=version)

    def start(self) -> DeliveryService:
        """Webhooks first, then MQTT: an MQTT that cannot start (a CA file that cannot be read,
        paho missing) raises, and leaves the webhooks running."""
        if self.webhooks is not None:
            self.webhooks.start(self.bus)
        if self.mqtt is not None:
            try:
                self.mqtt.start(self.bus)
            except BaseException:
                self.mqtt = None
                raise
        return self

    @property
    def counts(self) -> CountFeed | None:
        """Where exact per-stream counts go (the MQTT count topics), or None without MQTT."""
        return self.mqtt

    def ledgers(self) -> list[LedgerSnapshot]:
        out = []
        if self.mqtt is not None:
            out.append(self.mqtt.ledger.snapshot())
        if self.webhooks is not None:
            out.extend(ledger.snapshot() for ledger in self.webhooks.ledgers())
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "mqtt": self.mqtt.stats() if self.mqtt is not None else None,
            "webhooks": self.webhooks.stats() if self.webhooks is not None else None,
        }

    def close(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for name, part in (("webhooks", self.webhooks), ("mqtt", self.mqtt)):
            if part is None:
                continue
            try:
                part.close(max(0.1, (deadline - time.monotonic()) / 2))
            except Exception:  # noqa: BLE001 - close the other one too
                log.exception("closing %s delivery failed", name)
