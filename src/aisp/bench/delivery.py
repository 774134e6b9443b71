"""The delivery benchmark (``aisp bench delivery``): how long an event takes to leave AISP.

One event bus feeds the MQTT publisher and the webhook dispatcher at once, as in the server.
Events are published at a steady rate (``rate`` per second, each with ``time`` = its publication
on the wall clock); a paho subscriber on ``aisp/events`` and an HTTP receiver on loopback record
when each arrives. Reported per path: publication-to-arrival latency (p50, p99, max, in ms), how
many arrived, and the target's accounting.

The broker is a throwaway Mosquitto on a free port (Debian's ``mosquitto``), or
``AISP_BENCH_MQTT_URL``; without either, the MQTT half is skipped and says why. The webhook
half uses a temporary SQLite store.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aisp.bench._mosquitto import mosquitto
from aisp.delivery import MqttConfig, MqttPublisher, WebhookDispatcher
from aisp.events import Event, EventBus
from aisp.settings import load_settings

__all__ = ["run"]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50_ms": round(_pct(ms, 0.5), 2), "p99_ms": round(_pct(ms, 0.99), 2),
            "max_ms": round(max(ms), 2)}


@contextmanager
def _mosquitto() -> Iterator[str | None]:
    url = os.environ.get("AISP_BENCH_MQTT_URL")
    if url:
        yield url
        return
    with mosquitto() as broker:
        yield broker.url if broker is not None else None


class _Arrivals:
    def __init__(self) -> None:
        self.ms: list[float] = []
        self.cond = threading.Condition()

    def add(self, sent: float) -> None:
        with self.cond:
            self.ms.append((time.time() - sent) * 1000.0)
            self.cond.notify_all()

    def wait(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.ms) < n and time.monotonic() < deadline:
                self.cond.wait(max(0.0, deadline - time.monotonic()))


def _receiver(arrivals: _Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrivals.add(json.loads(body)["event"]["time"])
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def run(quick: bool = False, *, rate: float = 30.0) -> dict[str, Any]:
    n = 150 if quick else 900
    from aisp.store import Store

    with tempfile.TemporaryDirectory(prefix="aisp-bench-delivery-") as tmp, _mosquitto() as mqtt_url:
        settings = load_settings(environ={}, data_dir=Path(tmp), source_hosts=["127.0.0.1"])
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}", settings=settings).open()
        bus = EventBus()
        web, mq = _Arrivals(), _Arrivals()
        server = _receiver(web)
        store.webhooks.create(f"http://127.0.0.1:{server.server_address[1]}/hook",
                              secret="bench-secret-0123456789")
        dispatcher = WebhookDispatcher(settings, store.webhooks).start(bus)
        publisher = sub = None
        out: dict[str, Any] = {"events": n, "rate_per_s": rate}
        try:
            if mqtt_url is not None:
                import paho.mqtt.client as mqtt

                subscribed = threading.Event()
                sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="aisp-bench-sub")
                sub.on_connect = lambda c, *_: c.subscribe("aisp/events", qos=1)
                sub.on_subscribe = lambda *_: subscribed.set()
                sub.on_message = lambda _c, _u, msg: mq.add(json.loads(msg.payload)["time"])
                cfg = MqttConfig.from_url(mqtt_url, client_id="aisp-bench")
                sub.connect(cfg.host, cfg.port)
                sub.loop_start()
                subscribed.wait(10)
                publisher = MqttPublisher(cfg).start(bus)
                publisher.wait_connected(10)
            # warm-up: connections, the first SQLite writes
            for _ in range(5):
                bus.publish(Event("cross", "bench", time.time(), label="car", zone="line", direction="in"))
            web.wait(5, 10)
            mq.wait(5 if publisher else 0, 10)
            web.ms.clear()
            mq.ms.clear()
            t0 = time.perf_counter()
            for i in range(n):
                target = t0 + i / rate
                delay = target - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)  # pacing the producer at `rate` events per second
                bus.publish(Event("cross", "bench", time.time(), frame_index=i, label="car", zone="line",
                                  direction="in"))
            web.wait(n, 30)
            mq.wait(n if publisher else 0, 30)
            deadline = time.monotonic() + 10  # let the last confirmations land before reading the ledgers
            while time.monotonic() < deadline and any(t["pending"] for t in dispatcher.stats()["targets"]):
                time.sleep(0.05)
            out["webhook"] = {"latency": _summary(web.ms), "accounting": dispatcher.stats()["targets"]}
            if publisher is not None:
                out["mqtt"] = {"latency": _summary(mq.ms),
                               "accounting": publisher.ledger.snapshot().to_dict()}
            else:
                out["mqtt"] = {"skipped": "no mosquitto binary and no AISP_BENCH_MQTT_URL"}
        finally:
            if publisher is not None:
                publisher.close(2)
            if sub is not None:
                sub.disconnect()
                sub.loop_stop()
            dispatcher.close(2)
            bus.close()
            server.shutdown()
            server.server_close()
            store.close()
    return out
