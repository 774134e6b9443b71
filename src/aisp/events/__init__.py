"""AISP's discrete events: one model (:class:`Event`) and one in-process fan-out (:class:`EventBus`).

Producers (trackers, zones and lines, stream state changes) publish; consumers (the store's event
table, ``WS /ws/events``, MQTT, webhooks, clips) subscribe. Publishing never blocks: each
subscriber has its own bounded queue and thread, and what overflows is dropped and counted.

This package imports only core, so every layer above core may use it.
"""

from aisp.events.bus import EventBus, Subscription, SubscriptionStats
from aisp.events.model import EVENT_TYPES, Event, new_event_id

__all__ = ["EVENT_TYPES", "Event", "EventBus", "Subscription", "SubscriptionStats", "new_event_id"]
