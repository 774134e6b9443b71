"""MQTT topic names and Home Assistant discovery payloads.

With the default prefix ``aisp``::

    aisp/available                 online | offline (retained; the last will)
    aisp/events                    one JSON object per event
    aisp/<stream>/<label>          current count of <label> on <stream> (retained)
    aisp/<stream>/<zone>/<label>   current count of <label> inside <zone> (retained)
    aisp/<stream>/snapshot         JPEG of the latest event that has one (retained)

Stream ids, labels and zone names come from users: :func:`topic_level` turns each into one safe
topic level (no ``/``, ``+``, ``#``, NUL or control characters; at most 64 characters), so a
name can neither add levels nor subscribe-match by accident. A name that is changed gets a short
hash suffix, so two different names never share a topic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Topics", "topic_level", "ha_discovery"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:@=-]")
_MAX_LEVEL = 64
#: levels a stream id must not take, or it would collide with AISP's own topics
_RESERVED = frozenset({"available", "events"})


def topic_level(name: str) -> str:
    """``name`` as one topic level: kept when already safe, else cleaned and suffixed by a hash."""
    text = str(name)
    clean = _UNSAFE.sub("_", text)[:_MAX_LEVEL].strip("_") or "_"
    if clean == text and text not in _RESERVED:
        return text
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return f"{clean[: _MAX_LEVEL - 7]}-{digest}"


@dataclass(frozen=True)
class Topics:
    prefix: str = "aisp"

    @property
    def available(self) -> str:
        return f"{self.prefix}/available"

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    def count(self, stream: str, label: str, zone: str | None = None) -> str:
        if zone is None:
            return f"{self.prefix}/{topic_level(stream)}/{_label_level(label)}"
        return f"{self.prefix}/{topic_level(stream)}/{topic_level(zone)}/{_label_level(label)}"

    def snapshot(self, stream: str) -> str:
        return f"{self.prefix}/{topic_level(stream)}/snapshot"


def _label_level(label: str) -> str:
    # a label called "snapshot" would share the stream's snapshot topic
    level = topic_level(label)
    return f"{level}-label" if level == "snapshot" else level


def ha_discovery(
    topics: Topics,
    *,
    ha_prefix: str,
    node_id: str,
    stream: str,
    label: str,
    zone: str | None = None,
    version: str = "",
) -> tuple[str, Mapping[str, Any]]:
    """``(config topic, payload)`` of a Home Assistant MQTT discovery sensor for one count."""
    parts = [node_id, stream, zone or "", label]
    uid = "aisp_" + hashlib.sha1("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    name = f"{stream} {zone} {label}" if zone else f"{stream} {label}"
    payload = {
        "name": f"{name} count",
        "unique_id": uid,
        "object_id": uid,
        "state_topic": topics.count(stream, label, zone),
        "availability_topic": topics.available,
        "payload_available": "online",
        "payload_not_available": "offline",
        "unit_of_measurement": "objects",
        "state_class": "measurement",
        "icon": "mdi:counter",
        "device": {
            "identifiers": [f"aisp-{node_id}"],
            "name": f"AISP {node_id}",
            "manufacturer": "AISP",
            "sw_version": version,
        },
    }
    return f"{ha_prefix}/sensor/{topic_level(node_id)}/{uid}/config", payload
