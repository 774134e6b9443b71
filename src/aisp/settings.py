"""AISP settings: one pydantic-settings object.

Sources, highest priority first:

1. keyword arguments to :func:`load_settings` (the CLI passes its flags here);
2. environment variables ``AISP_<FIELD>`` (``AISP_PORT=9000``; lists are comma separated:
   ``AISP_PREWARM=face_detection,selfie_segmentation``);
3. an optional TOML file (``aisp --config PATH`` or ``AISP_CONFIG=PATH``), flat keys named like
   the fields (``port = 9000``);
4. the defaults below, which run with no configuration at all.

Unknown keys in the TOML file and invalid values raise :class:`aisp.errors.ConfigError` with
one line naming the field, the bad value and what is allowed.
"""

from __future__ import annotations

import contextvars
import difflib
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from aisp.errors import ConfigError

__all__ = ["Settings", "load_settings", "get_settings", "set_settings", "ENV_PREFIX"]

ENV_PREFIX = "AISP_"

CommaList = Annotated[list[str], NoDecode]


def default_inference_threads() -> int:
    """CPU cores + 1, at most 4: model work is CPU-bound, and the one extra thread keeps the
    cores busy while a thread waits for the GIL or for its answer to be sent (the thread counts
    measured side by side are in docs/PERFORMANCE.md). At most 4, because each thread holds its
    own instance of every MediaPipe model it runs, within the model cache."""
    return min(4, (os.cpu_count() or 1) + 1)

# Where load_settings() tells the source hook what to read. A context variable keeps
# concurrent loads (tests, threads) from seeing each other's sources.
_SOURCES: contextvars.ContextVar[tuple[Mapping[str, str], Path | None] | None] = contextvars.ContextVar(
    "aisp_settings_sources", default=None
)


class _MappingEnvSource(EnvSettingsSource):
    """``EnvSettingsSource`` reading an injected mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:  # type: ignore[override]
        if self.case_sensitive:
            return dict(self._environ)
        return {k.lower(): v for k, v in self._environ.items()}


class Settings(BaseSettings):
    """Every AISP setting. Field ``x`` is read from ``AISP_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    # --- core -------------------------------------------------------------------------------
    data_dir: Path = Field(Path(".aisp"), description="Directory for the database, task outputs and keys.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Log level. DEBUG also shows MediaPipe/TF Lite native output."
    )
    log_format: Literal["text", "json"] = Field("text", description="Log format: text or JSON Lines.")

    # --- server -----------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `aisp serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `aisp serve` listens on.")
    auth: Literal["on", "off"] = Field(
        "on", description="API key auth. `off` is refused unless the host is a loopback address."
    )
    demo: bool = Field(False, description="Start the demo stream (face detection on the demo source).")
    drain_timeout_seconds: float = Field(10.0, gt=0, description="Shutdown budget for draining streams.")
    max_upload_mb: float = Field(20.0, gt=0, description="Largest accepted upload for /api/frames/process.")
    max_pixels: int = Field(
        40_000_000, gt=0, description="Largest accepted image, in pixels (decompression-bomb guard)."
    )
    inference_threads: int = Field(
        default_factory=default_inference_threads,
        ge=1,
        le=64,
        description="Threads for model work off the event loop; default: CPU cores + 1, at most 4.",
    )
    api_fast_path: bool = Field(
        True,
        description="Answer raw-body POST /api/frames/process without FastAPI's per-request machinery.",
    )
    frames_reduced_decode: bool = Field(
        False,
        description="Default of /api/frames/process `reduced_decode`: decode JPEGs at half scale when "
        "every model's network input is much smaller (faster; results differ slightly from a full decode).",
    )
    mediapipe_graph_threads: int = Field(
        0,
        ge=0,
        le=64,
        description="Where MediaPipe graphs run: 0 on the calling worker thread, N on N graph threads.",
    )

    # --- model cache ------------------------------------------------------------------------
    cache_max_size: int = Field(8, ge=1, description="Most models held in the cache.")
    cache_max_memory_mb: float = Field(2048.0, gt=0, description="Memory budget over all cached models.")
    cache_ttl_seconds: float | None = Field(
        3600.0, description="Idle models expire after this many seconds; empty or 0 means never."
    )
    cache_eviction_policy: Literal["lru", "cost"] = Field(
        "lru", description="`lru`, or `cost` to keep models that are expensive to reload."
    )
    cache_weak_ref: bool = Field(True, description="Revive evicted models still held by a caller.")
    cache_hit_rate_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Alert when the recent hit rate falls below this."
    )
    cache_hit_rate_window: int = Field(100, ge=1, description="Requests in the hit-rate window.")
    cache_hit_rate_min_requests: int = Field(20, ge=1, description="Requests before the alert can fire.")
    prewarm: CommaList = Field(
        default_factory=list, description="Models to load at startup, comma separated."
    )

    # --- models -----------------------------------------------------------------------------
    onnx_providers: CommaList = Field(
        default_factory=lambda: ["auto"],
        description="ONNX Runtime execution providers; `auto` is CUDA when present, else CPU.",
    )
    model_dir: Path | None = Field(
        None,
        description="The only directory the API may load `onnx:<path>` models from; empty means "
        "`<data_dir>/models`.",
    )
    min_detection_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="Default confidence floor for detectors."
    )

    # --- pipeline ---------------------------------------------------------------------------
    workers: int = Field(
        0, ge=0, le=64,
        description="Inference workers shared by all streams; 0: the CPU budget's (one per core).",
    )
    queue_size: int = Field(16, ge=1, description="Capacity of each bounded pipeline queue.")
    drop_policy: Literal["drop_oldest", "drop_newest"] = Field(
        "drop_oldest", description="What a live source drops when its queue is full."
    )
    stall_timeout_seconds: float = Field(
        10.0, gt=0, description="A live source silent this long is reconnected."
    )
    reconnect_initial_delay_seconds: float = Field(0.5, gt=0, description="First reconnect backoff.")
    reconnect_max_delay_seconds: float = Field(30.0, gt=0, description="Longest reconnect backoff.")
    reconnect_max_attempts: int = Field(10, ge=0, description="Attempts before a stream is `failed`.")
    memory_budget_mb: float = Field(
        0.0, ge=0, description="RSS budget for the memory guard; 0 means 75% of system memory."
    )

    # --- store ------------------------------------------------------------------------------
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; empty means SQLite in the data directory."
    )
    event_window_seconds: float = Field(1.0, gt=0, description="Detections are summarised per window.")
    event_buffer_size: int = Field(10_000, ge=1, description="Events buffered while the database is away.")
    event_retention_hours: float = Field(168.0, gt=0, description="How long event rows are kept.")
    snapshot_interval_seconds: float = Field(5.0, gt=0, description="Period of performance snapshots.")
    snapshot_retention_hours: float = Field(168.0, gt=0, description="How long snapshots are kept.")

    # --- streams and tasks: limits and lifetimes -------------------------------------------
    max_streams: int = Field(
        64, ge=1, le=10_000, description="Most streams that may be defined (running or stopped); 409 beyond."
    )
    task_concurrency: int = Field(
        2, ge=1, le=64, description="Tasks that run at once; later ones wait `queued`."
    )
    task_stall_timeout_seconds: float = Field(
        60.0, gt=0, description="A task that reads and processes no new frame this long fails as stalled."
    )
    task_retention_days: float = Field(
        30.0, ge=0, description="Finished tasks (rows and output files) older than this are deleted; 0 keeps "
        "them forever.",
    )

    # --- security: source policy (what the API may open; the CLI is unrestricted) -----------
    media_dirs: CommaList = Field(
        default_factory=list,
        description="Directories API file sources must resolve inside, comma separated; empty means "
        "`<data_dir>/media`. A relative path is taken inside the first one.",
    )
    source_schemes: CommaList = Field(
        default_factory=lambda: ["rtsp", "rtsps", "http", "https", "rtmp"],
        description="URL schemes API sources may use, comma separated.",
    )
    source_hosts: CommaList = Field(
        default_factory=list,
        description="Hosts or CIDRs API sources and outbound calls may reach, comma separated; empty "
        "means any host except loopback, link-local and cloud metadata.",
    )

    # --- security: limits -----------------------------------------------------------------
    frames_max_megapixels_in_flight: float = Field(
        64.0,
        gt=0,
        description="Megapixels of images /api/frames/process may decode at once; larger uploads "
        "wait, an image above it is refused (413).",
    )
    frames_budget_wait_seconds: float = Field(
        30.0, gt=0, description="Longest wait for the megapixel budget before 503 OVERLOADED."
    )
    # (HTTP gate, auth tickets and the failed-key throttle: aisp.api.gate, aisp.api.protocol)
    allowed_hosts: CommaList = Field(
        default_factory=list,
        description="Extra `Host` names the server answers to, comma separated (always: the bind host, "
        "`localhost`, `127.0.0.1`, `[::1]`; any IP address when bound to 0.0.0.0 or ::).",
    )
    allowed_origins: CommaList = Field(
        default_factory=list,
        description="Extra browser origins (`https://app.example:8443`) allowed to send writes and open "
        "WebSockets, comma separated; same-origin pages are always allowed.",
    )
    max_json_body_kb: float = Field(
        64.0, gt=0, description="Largest request body, in KiB, on every route but the frame upload."
    )
    http_max_header_kb: float = Field(
        64.0, gt=0, description="Largest request line plus headers, in KiB (431 beyond it)."
    )
    http_max_headers: int = Field(100, ge=1, description="Most header lines in one request (431 beyond it).")
    http_header_timeout_seconds: float = Field(
        10.0, gt=0, description="A connection must send a request's complete headers within this time."
    )
    http_keepalive_timeout_seconds: float = Field(
        5.0, gt=0, description="An idle keep-alive connection is closed after this many seconds."
    )
    http_body_timeout_seconds: float = Field(
        10.0, gt=0, description="A request body that stalls (no byte) this long is dropped."
    )
    auth_ticket_ttl_seconds: float = Field(
        30.0, gt=0, le=600, description="Lifetime of a single-use URL ticket from `POST /api/auth/ticket`."
    )
    auth_fail_burst: int = Field(
        20, ge=1, description="Wrong keys or tickets a client address may send before it gets 429."
    )
    auth_fail_per_second: float = Field(
        1.0, gt=0, description="Rate at which a client's allowance of wrong keys refills (per second)."
    )

    # --- CPU budget -------------------------------------------------------------------------
    # (aisp.cpu_budget decides; 0 or `auto` lets it; `workers`, `inference_threads` and
    # `mediapipe_graph_threads` above are overrides of the same plan)
    cpu_cores: int = Field(
        0, ge=0, le=1024, description="Cores the CPU budget plans for; 0: the cores this process may use."
    )
    decode_threads: int = Field(
        0, ge=0, le=64,
        description="Codec threads per video reader; 0: cores + 1 shared out over the readers running when "
                    "it starts, at least 1.",
    )
    ort_intra_op_threads: int = Field(
        0, ge=0, le=256,
        description="ONNX Runtime intra-op threads per session; 0: cores / workers, at least 1.",
    )
    ort_inter_op_threads: int = Field(
        0, ge=0, le=256, description="ONNX Runtime inter-op threads per session; 0: 1 (sequential execution)."
    )
    ort_spinning: Literal["auto", "on", "off"] = Field(
        "auto",
        description="ONNX Runtime intra-op threads spin-wait; auto: only for a pool that has its "
        "cores to itself.",
    )
    ort_session_per_worker: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Each pipeline worker gets its own ONNX session; auto: when sessions are "
        "single-threaded.",
    )
    opencv_threads: int = Field(
        0, ge=0, le=256,
        description="OpenCV's own thread pool (cv2.setNumThreads); 0: 1 when workers fill the cores.",
    )
    batching: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Dynamic batching of ONNX models with a batch axis; auto: on in the API, in the "
        "pipeline only for GPU providers (measured, see docs/PERFORMANCE.md).",
    )
    batch_max_size: int = Field(8, ge=1, le=256, description="Most frames or requests in one dynamic batch.")
    batch_max_delay_ms: float = Field(
        2.0, ge=0, le=1000, description="Longest wait for a dynamic batch to fill once its first item is in."
    )

    # --- events out: tracking, zones, MQTT, webhooks, clips -----------------------------------
    # events out: tracking, zones, event store and snapshots (aisp.pipeline, aisp.store)
    track_min_hits: int = Field(
        2, ge=1, le=100, description="Frames a new object must be matched before it gets a track id."
    )
    track_max_lost_frames: int = Field(
        15, ge=1, le=10_000, description="Unmatched frames after which a track ends (a `gone` event)."
    )
    track_max_distance: float = Field(
        0.9, gt=0, le=1, description="Tracker match threshold as 1 - IoU with a track's predicted box."
    )
    events_keep_days: float = Field(
        30.0, gt=0, description="How long discrete events (appeared, enter, cross, ...) are kept."
    )
    event_snapshots: bool = Field(True, description="Write a JPEG snapshot and a thumbnail per event.")
    event_snapshot_dir: Path | None = Field(
        None, description="Where event snapshots are written; empty means `<data_dir>/events`."
    )
    event_snapshot_quality: int = Field(85, ge=10, le=100, description="JPEG quality of event snapshots.")
    event_thumbnail_width: int = Field(320, ge=16, le=4096, description="Width of event thumbnails (pixels).")
    event_snapshot_keep_days: float = Field(7.0, gt=0, description="How long event snapshots are kept.")
    event_snapshot_max_mb: float = Field(
        1024.0, gt=0, description="Total size of event snapshots; the oldest go first beyond it."
    )
    event_snapshot_queue: int = Field(
        32, ge=1, le=10_000, description="Frames held for snapshots (memory: each is a decoded frame); "
        "beyond it events go without one."
    )
    # events out: MQTT (aisp.delivery.mqtt)
    mqtt_url: str | None = Field(
        None,
        description="MQTT broker, `mqtt://user:pass@host:1883` or `mqtts://...` (TLS); empty: no MQTT.",
    )
    mqtt_topic_prefix: str = Field("aisp", description="First level of every AISP MQTT topic.")
    mqtt_client_id: str = Field(
        "", description="MQTT client id; empty means `aisp-<hostname>-<port>` (stable across restarts)."
    )
    mqtt_qos: int = Field(
        1, ge=0, le=2, description="MQTT QoS; 1 or 2 buffer through broker outages, 0 does not."
    )
    mqtt_ca_file: Path | None = Field(
        None, description="CA bundle (PEM) for `mqtts://`; empty means the system's trusted CAs."
    )
    mqtt_buffer_size: int = Field(
        10_000, ge=1, description="MQTT messages held while the broker is away; more are dropped, counted."
    )
    mqtt_keepalive_seconds: int = Field(30, ge=5, le=3600, description="MQTT keepalive interval.")
    mqtt_ha_discovery: bool = Field(
        False, description="Publish Home Assistant MQTT discovery configs for the count sensors."
    )
    mqtt_ha_prefix: str = Field("homeassistant", description="Home Assistant's MQTT discovery prefix.")
    mqtt_counts: Literal["frames", "events"] = Field(
        "frames",
        description="Where `<prefix>/<stream>/<label>` counts come from: `frames` (detections in the "
        "latest frame, any model) or `events` (tracks appeared minus gone; needs tracking).",
    )
    mqtt_count_interval_seconds: float = Field(
        1.0, ge=0, description="Per stream, at most one frame-count update per this many seconds."
    )
    # events out: webhooks (aisp.delivery.webhooks)
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60, description="Timeout of one webhook request.")
    webhook_max_attempts: int = Field(
        5, ge=1, le=20, description="Attempts per webhook delivery (the first and its retries)."
    )
    webhook_backoff_seconds: float = Field(
        1.0, gt=0, description="First retry delay; doubles per attempt, with jitter."
    )
    webhook_backoff_max_seconds: float = Field(60.0, gt=0, description="Longest delay between retries.")
    webhook_disable_after: int = Field(
        10, ge=1, description="A webhook is disabled after this many consecutive failed deliveries."
    )
    webhook_workers: int = Field(
        2, ge=1, le=16, description="Threads sending webhook deliveries (shared by every webhook)."
    )
    webhook_queue_size: int = Field(
        1000, ge=1, description="Webhook deliveries waiting or retrying; beyond this, dropped and counted."
    )
    webhook_log_retention_hours: float = Field(
        168.0, gt=0, description="How long webhook delivery log rows are kept."
    )


    # --- video out: HLS and push -------------------------------------------------------------
    video_preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = Field(
        "ultrafast", description="x264 preset of the annotated-video encoder (HLS, push, clips)."
    )
    video_crf: int = Field(26, ge=0, le=51, description="x264 constant rate factor (lower: better, bigger).")
    video_threads: int = Field(1, ge=1, le=16, description="x264 threads per encoded stream.")
    video_keyframe_seconds: float = Field(
        1.0, ge=0.25, le=10.0, description="Keyframe interval; also the HLS segment length."
    )
    video_queue_frames: int = Field(
        4, ge=1, le=120, description="Frames waiting for the encoder; beyond it frames are dropped."
    )
    hls_segments: int = Field(6, ge=2, le=60, description="HLS segments kept in memory per stream.")
    hls_idle_timeout_seconds: float = Field(
        30.0, gt=0, description="Stop encoding HLS after this long without a playlist or segment request."
    )
    push_queue_packets: int = Field(
        90, ge=1, le=10_000, description="Encoded packets waiting for a push target; beyond it they drop."
    )
    push_timeout_seconds: float = Field(5.0, gt=0, description="Connect and write timeout of a push target.")
    push_reconnect_initial_seconds: float = Field(0.5, gt=0, description="First push reconnect backoff.")
    push_reconnect_max_seconds: float = Field(30.0, gt=0, description="Longest push reconnect backoff.")
    clip_dir: Path | None = Field(
        None, description="Where event clips are written; empty means `<data_dir>/clips`."
    )
    clip_max_seconds: float = Field(
        300.0, gt=0, description="Longest clip; a longer run of events continues in a new clip."
    )
    clip_ring_max_mb: float = Field(
        32.0, gt=0, description="Cap on the encoded pre-roll ring of one stream (memory)."
    )
    clip_retention_days: float = Field(7.0, gt=0, description="Clips older than this are deleted.")
    ray_address: str = Field(
        "",
        description="Ray cluster to run on: empty = no Ray (one machine), `local` = start a local Ray, "
        "`auto`, `host:port` or `ray://host:port` = join that cluster. See docs/cluster.md.",
    )
    ray_stream_slots: int = Field(
        0, ge=0, le=1024,
        description="`stream_slot` resources a local Ray (`AISP_RAY_ADDRESS=local`) declares; 0 = from the "
        "CPU plan. On `ray start` nodes declare them with `--resources`.",
    )
    ray_event_poll_seconds: float = Field(
        0.25, gt=0, le=10,
        description="How often the API reads the events that the cluster's stream actors stored, to "
        "publish them to WebSockets, MQTT and webhooks (each actor commits its events every 0.5 s). "
        "See docs/cluster.md.",
    )
    fake_model_cost_ms: float = Field(
        0.0, ge=0, le=10_000,
        description="Time the `fake` test model spends per frame (sleeping, like native inference): a known, "
        "CPU-free cost for tests and benchmarks of the pipeline and the cluster.",
    )
    ray_frames: Literal["auto", "serve", "local"] = Field(
        "auto",
        description="Who answers `POST /api/frames/process` with a cluster: `serve` = a Ray Serve "
        "deployment with a replica per node, `local` = this API process, `auto` = `serve` when more "
        "than one node is alive at start, else `local` (on one node the hop only costs). "
        "See docs/cluster.md.",
    )
    ray_frames_replicas: int = Field(
        0, ge=0, le=1024,
        description="Replicas of the frames deployment (at most one per node); 0 = one per alive node "
        "at start.",
    )
    clip_max_total_mb: float = Field(
        2048.0, gt=0, description="Clips beyond this total size are deleted, oldest first."
    )

    @property
    def resolved_clip_dir(self) -> Path:
        return (self.clip_dir or self.data_dir / "clips").resolve()

    @field_validator("ray_address")
    @classmethod
    def _ray_address(cls, value: str) -> str:
        value = (value or "").strip()
        if value in ("", "local", "auto"):
            return value
        rest = value[len("ray://"):] if value.startswith("ray://") else value
        host, sep, port = rest.rpartition(":")
        if "://" in rest or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"ray_address must be empty, 'local', 'auto', 'host:port' or 'ray://host:port', got {value!r}"
            )
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value.strip())
            port = parts.port
        except ValueError:
            raise ValueError("expected mqtt://[user:pass@]host[:port] or mqtts://...") from None
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("expected mqtt://[user:pass@]host[:port] or mqtts://... (scheme mqtt or mqtts)")
        if port == 0 or (parts.path not in ("", "/")) or parts.query:
            raise ValueError("expected mqtt://[user:pass@]host[:port] with no path or query")
        return value.strip()

    @field_validator("mqtt_topic_prefix", "mqtt_ha_prefix")
    @classmethod
    def _mqtt_prefix(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ch in value for ch in "+#\0") or value.startswith("/") or value.endswith("/") \
                or "//" in value or len(value) > 128:
            raise ValueError("expected topic levels separated by '/', without '+', '#', empty levels or "
                             "leading/trailing '/'")
        return value

    @field_validator("mqtt_client_id")
    @classmethod
    def _mqtt_client_id(cls, value: str) -> str:
        value = value.strip()
        if len(value) > 128 or any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
            raise ValueError("expected at most 128 printable characters without spaces")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for origin in value:
            text = origin.strip().rstrip("/").lower()
            if "://" not in text or text.count("/") != 2:
                raise ValueError(f"{origin!r} is not an origin: expected scheme://host[:port]")
            out.append(text)
        return out

    @field_validator("source_schemes")
    @classmethod
    def _lower_schemes(cls, value: list[str]) -> list[str]:
        return [v.lower().rstrip(":/") for v in value]

    @field_validator(
        "prewarm", "onnx_providers", "media_dirs", "source_schemes", "source_hosts", "allowed_hosts",
        "allowed_origins", mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "cache_ttl_seconds", "database_url", "model_dir", "clip_dir", "mqtt_url", "mqtt_ca_file",
        "event_snapshot_dir", mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() in ("", "none", "None", "null"):
            return None
        return value

    @field_validator("cache_ttl_seconds")
    @classmethod
    def _ttl(cls, value: float | None) -> float | None:
        if value is not None and value < 0:
            raise ValueError("must be >= 0 (0 or empty means never expire)")
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        ctx = _SOURCES.get()
        environ, config_file = ctx if ctx is not None else (os.environ, None)
        sources: list[PydanticBaseSettingsSource] = [init_settings, _MappingEnvSource(settings_cls, environ)]
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    # --- derived ----------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'aisp.db').resolve()}"

    @property
    def resolved_model_dir(self) -> Path:
        return (self.model_dir or self.data_dir / "models").resolve()

    @property
    def resolved_event_snapshot_dir(self) -> Path:
        return (self.event_snapshot_dir or self.data_dir / "events").resolve()

    @classmethod
    def env_var(cls, field: str) -> str:
        return f"{ENV_PREFIX}{field.upper()}"


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from overrides, the environment and an optional TOML file.

    Raises :class:`ConfigError` with a one-line message on any invalid value.
    """
    env = os.environ if environ is None else environ
    if config_file is None and env.get("AISP_CONFIG"):
        config_file = env["AISP_CONFIG"]
    path: Path | None = None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(
                f"invalid configuration: config file '{path}' does not exist or is not a file",
                field="config",
                value=str(path),
                expected="a readable TOML file",
            )
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"invalid configuration: config file '{path}' is not valid TOML: {exc}",
                field="config",
                value=str(path),
                expected="valid TOML",
            ) from None
    _warn_unknown_env(env)
    token = _SOURCES.set((env, path))
    try:
        return Settings(**overrides)
    except PydanticValidationError as exc:
        raise _config_error(exc, env, path) from None
    finally:
        _SOURCES.reset(token)


def _hide_url_password(value: Any) -> Any:
    """``scheme://user:***@host`` for a URL with a password (an invalid ``mqtt_url`` or
    ``database_url`` must not print its password in the error)."""
    if not isinstance(value, str) or "://" not in value or "@" not in value:
        return value
    scheme, _, rest = value.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return value
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostpart}"


def _config_error(exc: PydanticValidationError, environ: Mapping[str, str], path: Path | None) -> ConfigError:
    parts: list[str] = []
    first_field: str | None = None
    first_value: Any = None
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if not isinstance(x, int)]
        field = loc[0] if loc else "?"
        first_field = first_field or field
        value = _hide_url_password(err.get("input"))
        if err.get("type") == "extra_forbidden":
            where = f" in {path}" if path else ""
            close = difflib.get_close_matches(field, list(Settings.model_fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see the README's configuration reference"
            parts.append(f"unknown setting '{field}'{where}; {hint}")
            continue
        env_name = Settings.env_var(field)
        origin = f" (from {env_name})" if env_name in environ else (f" (from {path})" if path else "")
        first_value = first_value if first_value is not None else value
        parts.append(f"{field}={value!r}{origin}: {err.get('msg')}")
    message = "invalid configuration: " + "; ".join(parts)
    return ConfigError(message, field=first_field, value=first_value)


#: AISP_* variables that are not server settings: the config file, and the client's (aisp.client)
_NOT_SETTINGS = {"AISP_CONFIG", "AISP_URL", "AISP_API_KEY"}


def _warn_unknown_env(environ: Mapping[str, str]) -> None:
    """Log (not fail) AISP_* variables that match no setting: likely typos."""
    known = {Settings.env_var(name) for name in Settings.model_fields}
    for key in environ:
        upper = key.upper()
        if upper.startswith(ENV_PREFIX) and upper not in known and upper not in _NOT_SETTINGS:
            if upper.startswith("AISP_TEST_"):
                continue
            close = difflib.get_close_matches(upper, sorted(known), n=1)
            logging.getLogger("aisp").warning(
                "ignoring unknown environment variable %s%s",
                key,
                f" (did you mean {close[0]}?)" if close else "",
            )


_current: Settings | None = None
_current_lock = threading.Lock()


def get_settings() -> Settings:
    """The settings of the process's default runtime (``aisp.load_model()``, ``aisp.get_model_cache()``),
    loaded from the environment on first use. AISP's own code never reads them: the CLI, the
    server and the benchmarks hand their settings to :func:`aisp.runtime.build`."""
    global _current
    if _current is None:
        with _current_lock:
            if _current is None:
                _current = load_settings()
    return _current


def set_settings(settings: Settings | None) -> None:
    """Replace the default runtime's settings (before it is first built; tests). None: reload
    from the environment on next use."""
    global _current
    with _current_lock:
        _current = settings
