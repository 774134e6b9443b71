"""A real paho subscriber for the tests: records every message it receives, in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """Subscribes to ``topics`` (re-subscribing after every reconnect) and records messages.

    ``durable=True`` keeps a broker-side session (clean_session false, fixed client id, QoS 1), so
    messages published while this client is away are kept for it by the broker.
    """

    def __init__(self, port: int, topics: list[str], *, client_id: str = "", durable: bool = False,
                 username: str | None = None, password: str | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._topics = topics
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=not durable)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client, _userdata, _flags, reason_code, _props) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            return
        client.subscribe([(topic, 1) for topic in self._topics])

    def _on_subscribe(self, _client, _userdata, _mid, _codes, _props) -> None:  # noqa: ANN001
        self.connected.set()  # subscribed: messages published from now on reach us

    def _on_message(self, _client, _userdata, msg) -> None:  # noqa: ANN001
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (for state with no signal to wait on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
