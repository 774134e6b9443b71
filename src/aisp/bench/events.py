"""``aisp bench events``: what tracking, zones, lines, event snapshots, MQTT and clips cost, and
how fast an event gets out.

MQTT is a real broker: a throwaway Mosquitto (Debian's ``mosquitto``, on the PATH or
``/usr/sbin/mosquitto``) on a free loopback port for the whole run
(:mod:`aisp.bench._mosquitto`), with the server's :class:`~aisp.delivery.DeliveryService` (the
real :class:`~aisp.delivery.MqttPublisher`) on the run's event bus and the server's frame-count
sink on the stream. Without a broker, ``mqtt.skipped`` says why and the runs go on without MQTT
(``goals.mqtt_in_on_set`` is false). MQTT's accounting (events accepted, delivered, dropped,
failed) is read after each run's publisher sent what it held.

* ``throughput``: the pipeline benchmark's 640x480 video (900 frames; quick: 150) through one
  engine stream with model ``face_detection_full`` as fast as it goes, with tracking, two zones,
  two lines, event snapshots and MQTT **off** and **on**, alternated in the same run (5 rounds;
  quick: 1). Processed FPS medians, their ratio, and the median of the per-round ratios (steadier
  on a busy machine); goal: on >= 0.9x off.
* ``live_all``: the live demo source (``demo:live``, 640x480 paced at 30 FPS, a face on a
  Lissajous path) through an engine stream as the server runs one (its encode sink attached), for
  20 s (quick: 6 s) after a 2 s warm-up per side, **off** and with **everything on**: tracking,
  the zones and lines, event snapshots, MQTT and clip recording (a ``record`` rule selecting every
  object event, 5 s pre-roll ring, clips written to a temporary clip library), alternated 2
  rounds (quick: 1). Processed FPS (ratio, goal >= 0.9), frames dropped, this process's CPU (% of
  one core, ``psutil`` CPU time over wall time) and CPU ms per processed frame, and what ``on``
  adds per frame.
* ``latency``: the live demo source at 30 FPS through a real ``aisp serve`` app (uvicorn on a free
  loopback port, auth on, SQLite store) for 30 s (quick: 10 s). For every event: capture-to-publish
  (the bus hands it to a subscriber) and capture-to-WebSocket (a ``WS /ws/events`` client in this
  process receives it), both against the frame's ``captured_at`` on the engine's clock
  (``time.monotonic``). p50/p95/p99/max in ms (goal: p99 <= 100 ms).

``goals`` gathers the goal flags. Every engine, bus, publisher, encoder, the broker and the
temporary directory are stopped or removed when the run ends, also on an error. All parts run on
whatever else the machine is doing; ``machine_load_*`` say how busy it was.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from aisp.bench._mosquitto import Mosquitto, find_mosquitto
from aisp.bench.pipeline import MODEL, machine_load, make_video
from aisp.events import Event, EventBus
from aisp.pipeline import CallbackSink, Engine, SnapshotWriter, StreamSpec, VideoFileSource
from aisp.pipeline.clip_index import ClipLibrary
from aisp.pipeline.clips import ClipRule
from aisp.pipeline.video_out import StreamVideo
from aisp.runtime import Runtime, build
from aisp.runtime.build import make_snapshot_writer
from aisp.settings import Settings, load_settings

if TYPE_CHECKING:
    from aisp.delivery import DeliveryService
    from aisp.pipeline.sinks import Sink

__all__ = ["run", "throughput_run", "live_run", "live_all", "latency_run", "ZONES", "LINES", "RECORD"]

log = logging.getLogger("aisp.bench")

GOAL_RATIO = 0.9
GOAL_P99_MS = 100.0
ZONES = [
    {"name": "left", "polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]], "relative": True, "dwell": 2},
    {"name": "top", "polygon": [[0, 0], [1, 0], [1, 0.5], [0, 0.5]], "relative": True},
]
LINES = [
    {"name": "vertical", "start": [0.5, 0], "end": [0.5, 1], "relative": True},
    {"name": "horizontal", "start": [0, 0.6], "end": [1, 0.6], "relative": True},
]
#: the live stream's clip rule when everything is on: every object event, 5 s pre- and post-roll
RECORD: dict[str, Any] = {"pre_seconds": 5.0, "post_seconds": 5.0}
_MQTT_EVENT_KEYS = ("accepted", "delivered", "dropped", "failed", "pending", "retried")


def _quantiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"n": len(values), "p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": round(ordered[-1], 2)}


def _mqtt_delivery(settings: Settings, bus: EventBus, mqtt_url: str | None, client_id: str,
                   snapshot_dir: Path) -> DeliveryService | None:
    """MQTT on ``bus`` as the server starts it (a :class:`DeliveryService` whose settings name the
    broker; no store, so no webhooks), connected before the clock starts; None without a broker."""
    if mqtt_url is None:
        return None
    from aisp.delivery import DeliveryService
    from aisp.delivery.snapshots import DataDirSnapshots

    mqtt_settings = settings.model_copy(update={"mqtt_url": mqtt_url, "mqtt_client_id": client_id})
    service = DeliveryService(mqtt_settings, bus, snapshots=DataDirSnapshots(snapshot_dir)).start()
    assert service.mqtt is not None  # mqtt_url is set
    if not service.mqtt.wait_connected(10):
        service.close(2)
        raise RuntimeError(f"MQTT: no connection to {mqtt_url} within 10 s")
    return service


def _count_sinks(settings: Settings, delivery: DeliveryService | None, stream_id: str) -> list[Sink]:
    """The server's per-stream MQTT count sink (``mqtt_counts=frames``, the default), or none."""
    if delivery is None or delivery.counts is None or settings.mqtt_counts != "frames":
        return []
    from aisp.api.count_feed import FrameCountFeed

    feed = FrameCountFeed(delivery.counts, stream_id, interval=settings.mqtt_count_interval_seconds)
    return [CallbackSink(feed)]


def _mqtt_stats(delivery: DeliveryService) -> dict[str, int]:
    """The MQTT target's event accounting and its other messages (counts, snapshots, availability)."""
    assert delivery.mqtt is not None
    stats = delivery.mqtt.stats()
    return {**{k: int(stats["events"][k]) for k in _MQTT_EVENT_KEYS},
            "messages_published": int(stats["messages"]["published"]),
            "messages_dropped": int(stats["messages"]["dropped"])}


def _mqtt_total(runs: list[dict[str, Any]]) -> dict[str, int] | None:
    parts = [r["mqtt"] for r in runs if r.get("mqtt")]
    if not parts:
        return None
    return {k: sum(p[k] for p in parts) for k in parts[0]}


def _close(engine: Engine | None, writer: SnapshotWriter | None, delivery: DeliveryService | None,
           bus: EventBus, video: StreamVideo | None = None) -> None:
    """Stop one run's parts in order (the engine, so no new events; the snapshot writer, which
    publishes what it holds; MQTT, which sends what it holds; the bus's other subscribers; the
    encoder and clip recorder). Every part is tried; the first failure is raised after."""
    steps: list[tuple[str, Callable[[], object]]] = []
    if engine is not None:
        steps.append(("engine", lambda: engine.shutdown(30)))
    if writer is not None:
        steps.append(("snapshot writer", lambda: writer.close(30)))
    if delivery is not None:
        steps.append(("mqtt", lambda: delivery.close(10)))
    steps.append(("event bus", bus.close))
    if video is not None:
        steps.append(("video", video.close))
    error: BaseException | None = None
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - stop the other parts too
            log.exception("bench events: stopping the %s failed", name)
            error = error or exc
    if error is not None:
        raise error


def _event_counter(bus: EventBus) -> tuple[dict[str, int], threading.Lock]:
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def count(event: Event) -> None:
        with lock:
            counts[event.type] = counts.get(event.type, 0) + 1

    bus.subscribe("count", count)
    return counts, lock


def throughput_run(runtime: Runtime, path: Path, *, analytics: bool, snapshot_dir: Path,
                   mqtt_url: str | None = None, model: str = MODEL) -> dict[str, Any]:
    """One pass over ``path``: processed FPS, events published by type. With ``analytics``:
    tracking, zones, lines and event snapshots, and MQTT on the bus when ``mqtt_url`` is given
    (its accounting is read after it sent what it held)."""
    bus = EventBus()
    counts, lock = _event_counter(bus)
    engine: Engine | None = None
    writer: SnapshotWriter | None = None
    delivery: DeliveryService | None = None
    try:
        writer = SnapshotWriter(snapshot_dir, bus.publish) if analytics else None
        delivery = _mqtt_delivery(runtime.settings, bus, mqtt_url if analytics else None,
                                  "aisp-bench-events-throughput", snapshot_dir)
        engine = Engine(runtime.settings, runtime.models.load_instance, workers=2, events=bus,
                        snapshots=writer)
        extra: dict[str, Any] = {"zones": ZONES, "lines": LINES} if analytics else {}
        spec = StreamSpec("bench", VideoFileSource(str(path)), [model], **extra)
        # models and the tracker are ready before the clock starts
        stream = engine.add_stream(spec, sinks=_count_sinks(runtime.settings, delivery, "bench"))
        t0 = time.perf_counter()
        engine.start_stream("bench")
        stream.wait(600)
        elapsed = time.perf_counter() - t0
        stats = stream.stats.snapshot()
        stream_analytics = stream.analytics_stats() if analytics else None
    finally:
        _close(engine, writer, delivery, bus)
    with lock:
        events = dict(counts)
    out: dict[str, Any] = {"frames": stats.frames_out, "fps": stats.frames_out / elapsed, "events": events,
                           "state": stream.state, "analytics": stream_analytics}
    if delivery is not None:
        out["mqtt"] = _mqtt_stats(delivery)
    return out


def live_run(runtime: Runtime, settings: Settings, *, on: bool, seconds: float, tag: str, work_dir: Path,
             mqtt_url: str | None = None, warmup: float = 2.0, model: str = MODEL,
             source: str = "demo:live") -> dict[str, Any]:
    """One live stream for ``warmup + seconds`` on an engine of its own, as the server runs one:
    its encode sink always attached (idle without a consumer); ``on`` adds tracking, the zones and
    lines, event snapshots, MQTT (when ``mqtt_url``; with the server's frame-count sink) and clip
    recording (a ``record`` rule selecting every object event, fed from the bus). Measured over
    ``seconds`` after the warm-up: processed FPS, dropped frames, this process's CPU."""
    sid = f"live-{'on' if on else 'off'}-{tag}"
    side = settings.model_copy(update={"event_snapshots": True,
                                       "event_snapshot_dir": work_dir / sid / "events",
                                       "clip_dir": work_dir / sid / "clips"})
    bus = EventBus()
    counts, lock = _event_counter(bus)
    engine: Engine | None = None
    writer: SnapshotWriter | None = None
    delivery: DeliveryService | None = None
    video: StreamVideo | None = None
    try:
        writer = make_snapshot_writer(side, bus) if on else None
        delivery = _mqtt_delivery(side, bus, mqtt_url if on else None, f"aisp-bench-events-{sid}",
                                  side.resolved_event_snapshot_dir)
        engine = Engine(side, runtime.models.load_instance, events=bus, snapshots=writer, plan=runtime.cpu)
        rule = ClipRule.parse(RECORD) if on else None
        library = ClipLibrary(side.resolved_clip_dir) if rule is not None else None
        video = StreamVideo(sid, side, record=rule, library=library, clock=engine.clock)
        if rule is not None:  # as the server's VideoOutputs: one bus subscriber hands events over
            bus.subscribe("clips", video.on_event, maxsize=1000)
        extra: dict[str, Any] = {"zones": ZONES, "lines": LINES} if on else {}
        stream = engine.add_stream(StreamSpec(sid, source, [model], **extra),
                                   sinks=[video.sink(), *_count_sinks(side, delivery, sid)], start=True)
        if not stream.wait_for_state("running", timeout=30):
            raise RuntimeError(f"stream {sid} is {stream.state!r}, not running, after 30 s")
        pause = threading.Event()  # never set: a wait that is not a sleep in a loop
        pause.wait(warmup)  # the encoder's first keyframe, the tracker's first tracks
        proc = psutil.Process()
        s0, cpu0, t0 = stream.stats.snapshot(), proc.cpu_times(), time.monotonic()
        pause.wait(seconds)
        s1, cpu1, wall = stream.stats.snapshot(), proc.cpu_times(), time.monotonic() - t0
        state = stream.state
        ring = video.stats().get("clips")
    finally:
        _close(engine, writer, delivery, bus, video)
    frames = s1.frames_out - s0.frames_out
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    with lock:
        events = dict(counts)
    out: dict[str, Any] = {
        "fps": round(frames / wall, 2), "frames": frames, "dropped": s1.dropped - s0.dropped,
        "process_cpu_pct": round(100.0 * cpu / wall, 1),
        "cpu_ms_per_frame": round(1000.0 * cpu / frames, 2) if frames else None,
        "encoder_frames_dropped": video.stats()["encoder"]["frames_dropped"],
        "events": events, "state": state,
    }
    if ring is not None:  # clips_written after the close: the clip open at the stop is finished then
        out["clips"] = {"written": video.stats()["clips"]["clips_written"], "failed": ring["clips_failed"],
                        "events_matched": ring["events_matched"], "ring_seconds": ring["ring_seconds"],
                        "ring_bytes": ring["ring_bytes"]}
    if delivery is not None:
        out["mqtt"] = _mqtt_stats(delivery)
    return out


def _ratios(off: list[dict[str, Any]], on: list[dict[str, Any]]) -> dict[str, Any]:
    """FPS medians, their ratio, and the median of the per-round ratios (rounds alternate)."""
    off_fps = statistics.median(x["fps"] for x in off)
    on_fps = statistics.median(x["fps"] for x in on)
    rounds = [b["fps"] / a["fps"] if a["fps"] else 0.0 for a, b in zip(off, on, strict=True)]
    ratio = on_fps / off_fps if off_fps else 0.0
    per_round = statistics.median(rounds)
    return {"off_fps_median": round(off_fps, 2), "on_fps_median": round(on_fps, 2),
            "ratio": round(ratio, 3), "ratio_median_of_rounds": round(per_round, 3),
            "round_ratios": [round(r, 3) for r in rounds], "goal_ratio": GOAL_RATIO,
            "meets_goal": ratio >= GOAL_RATIO, "meets_goal_median_of_rounds": per_round >= GOAL_RATIO}


def live_all(runtime: Runtime, settings: Settings, *, seconds: float, rounds: int, work_dir: Path,
             mqtt_url: str | None, warmup: float = 2.0, model: str = MODEL) -> dict[str, Any]:
    """:func:`live_run` off and on, alternated ``rounds`` times; medians, ratios, CPU."""
    off: list[dict[str, Any]] = []
    on: list[dict[str, Any]] = []
    for r in range(rounds):
        off.append(live_run(runtime, settings, on=False, seconds=seconds, tag=str(r), work_dir=work_dir,
                            warmup=warmup, model=model))
        on.append(live_run(runtime, settings, on=True, seconds=seconds, tag=str(r), work_dir=work_dir,
                           mqtt_url=mqtt_url, warmup=warmup, model=model))

    def med(runs: list[dict[str, Any]], key: str) -> float | None:
        values = [x[key] for x in runs if x[key] is not None]
        return round(statistics.median(values), 2) if values else None

    cpu_off, cpu_on = med(off, "cpu_ms_per_frame"), med(on, "cpu_ms_per_frame")
    return {
        "source": "demo:live (640x480, paced at 30 FPS)", "model": model, "seconds": seconds,
        "warmup_seconds": warmup, "rounds": rounds,
        "on_set": ["tracking", "zones", "lines", "event snapshots", *(["mqtt"] if mqtt_url else []),
                   "clip recording"],
        **_ratios(off, on),
        "dropped": {"off": [x["dropped"] for x in off], "on": [x["dropped"] for x in on]},
        "encoder_frames_dropped_on": [x["encoder_frames_dropped"] for x in on],
        "process_cpu_pct": {"off": med(off, "process_cpu_pct"), "on": med(on, "process_cpu_pct")},
        "cpu_ms_per_frame": {"off": cpu_off, "on": cpu_on,
                             "added": round(cpu_on - cpu_off, 2) if cpu_on is not None and cpu_off is not None
                             else None},
        "clips_written": sum(x["clips"]["written"] for x in on),
        "mqtt": _mqtt_total(on),
        "on_events": on[-1]["events"],
        "all_running": all(x["state"] == "running" for x in off + on),
        "runs": {"off": off, "on": on},
    }

def latency_run(settings: Settings, seconds: float) -> dict[str, Any]:
    """A real app on a free port; one live 30 FPS tracking stream; events timed at the bus and at a
    WebSocket client."""
    import socket

    import httpx
    import uvicorn
    from websockets.sync.client import connect

    from aisp.api import create_app

    with tempfile.TemporaryDirectory(prefix="aisp-bench-events-") as tmp:
        app_settings = settings.model_copy(update={
            "data_dir": Path(tmp), "auth": "on", "demo": False, "prewarm": [MODEL], "database_url": None,
            "snapshot_interval_seconds": 3600.0})
        app = create_app(app_settings)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="on"))
        thread = threading.Thread(target=server.run, name="bench-events-server", daemon=True)
        thread.start()
        publish_ms: list[float] = []
        ws_ms: list[float] = []
        try:
            assert app.state.lifecycle.wait_started(120), "the app did not start"
            ctx = app.state.ctx
            _record, key = ctx.require_store().keys.create("admin", "bench")
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while httpx.get(base + "/ready").status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("the app was not ready within 60 s")
                threading.Event().wait(0.1)

            def on_bus(event: Event) -> None:
                if event.captured_at is not None:
                    publish_ms.append((time.monotonic() - event.captured_at) * 1000.0)

            ctx.runtime.events.subscribe("bench-latency", on_bus)
            stop = threading.Event()

            def client() -> None:
                with connect(f"ws://127.0.0.1:{port}/ws/events?stream=live",
                             additional_headers={"X-API-Key": key}) as ws:
                    while not stop.is_set():
                        try:
                            msg = json.loads(ws.recv(timeout=0.5))
                        except TimeoutError:
                            continue
                        captured = msg.get("event", {}).get("captured_at")
                        if captured is not None:
                            ws_ms.append((time.monotonic() - captured) * 1000.0)

            reader = threading.Thread(target=client, name="bench-events-ws", daemon=True)
            reader.start()
            while ctx.event_fanout.clients < 1:
                threading.Event().wait(0.05)
            body = {"id": "live", "source": "demo:live", "models": [MODEL], "zones": ZONES, "lines": LINES}
            r = httpx.post(base + "/api/streams", json=body, headers={"X-API-Key": key}, timeout=60)
            r.raise_for_status()
            stop.wait(seconds)
            stream = httpx.get(base + "/api/streams/live", headers={"X-API-Key": key}).json()
            stop.set()
            reader.join(5)
        finally:
            server.should_exit = True
            thread.join(60)
        stats = stream["stats"]
        return {
            "seconds": seconds,
            "processed_fps": stats.get("processed_fps"),
            "dropped": stats.get("dropped"),
            "frame_capture_to_sink_ms": stats.get("latency_ms"),
            "events_by_type": stats.get("events"),
            "capture_to_publish_ms": _quantiles(publish_ms),
            "capture_to_websocket_ms": _quantiles(ws_ms),
            "goal_p99_ms": GOAL_P99_MS,
            "meets_goal": bool(ws_ms) and _quantiles(ws_ms)["p99"] <= GOAL_P99_MS,
        }


def _start_broker(stack: ExitStack) -> tuple[str | None, dict[str, Any]]:
    """A throwaway Mosquitto for the whole run (stopped by ``stack``), or why there is none."""
    binary = find_mosquitto()
    if binary is None:
        return None, {"broker": None, "skipped": "no mosquitto binary (PATH or /usr/sbin/mosquitto): "
                                                 "the runs go without MQTT"}
    broker = Mosquitto(binary)
    stack.callback(broker.stop)
    try:
        broker.start()
    except RuntimeError as exc:
        log.warning("bench events: %s; the runs go without MQTT", exc)
        return None, {"broker": None, "skipped": f"mosquitto did not start ({exc}): the runs go without MQTT"}
    return broker.url, {"broker": f"mosquitto {broker.url} (throwaway, this run only)"}


def run(quick: bool = False, settings: Settings | None = None) -> dict[str, Any]:
    settings = settings if settings is not None else load_settings()
    results: dict[str, Any] = {"model": MODEL, "machine_load_start": machine_load()}
    frames = 150 if quick else 900
    rounds = 1 if quick else 5
    live_seconds = 6.0 if quick else 20.0
    live_rounds = 1 if quick else 2
    with ExitStack() as stack:  # exits in reverse: the runtime, the broker, the directory
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aisp-bench-events-")))
        mqtt_url, results["mqtt"] = _start_broker(stack)
        results["mqtt"]["qos"] = settings.mqtt_qos
        runtime = stack.enter_context(build(settings, store=False))
        import norfair  # noqa: F401 - imported once before any timing (the tracker's library)

        for i in range(2):
            runtime.models.load(MODEL, instance=f"w{i}")
        path = make_video(tmp / "bench.mp4", frames)
        off, on = [], []
        for r in range(rounds):  # alternated, so both see the same machine load
            off.append(throughput_run(runtime, path, analytics=False, snapshot_dir=tmp / f"s{r}"))
            on.append(throughput_run(runtime, path, analytics=True, snapshot_dir=tmp / f"s{r}",
                                     mqtt_url=mqtt_url))
        results["throughput"] = {
            "video": {"width": 640, "height": 480, "frames": frames},
            "rounds": rounds,
            "on_set": ["tracking", "zones", "lines", "event snapshots", *(["mqtt"] if mqtt_url else [])],
            **_ratios(off, on),
            "off_runs_fps": [round(x["fps"], 2) for x in off],
            "on_runs_fps": [round(x["fps"], 2) for x in on],
            "on_events": on[-1]["events"],
            "mqtt": _mqtt_total(on),
            "all_frames": all(x["frames"] == frames and x["state"] == "stopped" for x in off + on),
        }
        results["machine_load_after_throughput"] = machine_load()
        results["live_all"] = live_all(runtime, settings, seconds=live_seconds, rounds=live_rounds,
                                       work_dir=tmp / "live", mqtt_url=mqtt_url)
        results["machine_load_after_live_all"] = machine_load()
    results["latency"] = latency_run(settings, 10.0 if quick else 30.0)
    results["machine_load_end"] = machine_load()
    results["goals"] = {
        "throughput_ratio_ge_0_9": results["throughput"]["meets_goal"],
        "throughput_median_round_ratio_ge_0_9": results["throughput"]["meets_goal_median_of_rounds"],
        "live_all_ratio_ge_0_9": results["live_all"]["meets_goal"],
        "live_all_median_round_ratio_ge_0_9": results["live_all"]["meets_goal_median_of_rounds"],
        "latency_p99_le_100ms": results["latency"]["meets_goal"],
        "mqtt_in_on_set": mqtt_url is not None,
    }
    return results
