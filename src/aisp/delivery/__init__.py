"""Events out: MQTT and webhooks, with delivery accounting.

- :class:`MqttPublisher` (:mod:`aisp.delivery.mqtt`): every event, current counts, the latest
  snapshot and availability to an MQTT broker (paho-mqtt, extra ``mqtt``), buffered while the
  broker is away;
- :class:`WebhookDispatcher` (:mod:`aisp.delivery.webhooks`): signed, retried deliveries to the
  webhooks admins define through ``/api/webhooks``;
- :class:`DeliveryLedger` (:mod:`aisp.delivery.accounting`): per target, every event is
  delivered, dropped (beyond a bound), failed, or still pending;
- :class:`DeliveryService`: both, as the server runs them.

Layer: beside the runtime. Imports core (events, netpolicy, settings) and the store; the
API starts it. See ``docs/delivery.md``.
"""

from aisp.delivery.accounting import DeliveryLedger, LedgerSnapshot
from aisp.delivery.counts import CountBoard, CountFeed
from aisp.delivery.mqtt import MqttConfig, MqttPublisher
from aisp.delivery.service import DeliveryService
from aisp.delivery.signing import SIGNATURE_HEADER, signature_header, verify
from aisp.delivery.snapshots import DataDirSnapshots, SnapshotLookup
from aisp.delivery.topics import Topics, topic_level
from aisp.delivery.webhooks import WebhookDispatcher, matches

__all__ = [
    "CountBoard",
    "CountFeed",
    "DataDirSnapshots",
    "DeliveryLedger",
    "DeliveryService",
    "LedgerSnapshot",
    "MqttConfig",
    "MqttPublisher",
    "SIGNATURE_HEADER",
    "SnapshotLookup",
    "Topics",
    "WebhookDispatcher",
    "matches",
    "signature_header",
    "topic_level",
    "verify",
]
