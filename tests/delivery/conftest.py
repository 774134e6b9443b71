"""Fixtures for the delivery tests: real Mosquitto brokers, and a real HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require_service
from tests.delivery.mosquitto import MOSQUITTO, MOSQUITTO_PASSWD, OPENSSL, Broker, broker
from tests.delivery.receiver import Receiver


@pytest.fixture
def mqtt_broker() -> Iterator[Broker]:
    pytest.importorskip("paho.mqtt.client")
    require_service(MOSQUITTO is not None, "mosquitto is not installed (apt-get install mosquitto)")
    with broker() as b:
        yield b


@pytest.fixture
def mqtt_auth_broker() -> Iterator[Broker]:
    pytest.importorskip("paho.mqtt.client")
    require_service(MOSQUITTO is not None and MOSQUITTO_PASSWD is not None,
                    "mosquitto / mosquitto_passwd are not installed (apt-get install mosquitto)")
    with broker(users={"aisp": "s3cret-pw", "reader": "reader-pw"}) as b:
        yield b


@pytest.fixture
def mqtt_tls_broker() -> Iterator[Broker]:
    pytest.importorskip("paho.mqtt.client")
    require_service(MOSQUITTO is not None and OPENSSL is not None,
                    "mosquitto / openssl are not installed (apt-get install mosquitto openssl)")
    with broker(tls=True) as b:
        yield b


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()
