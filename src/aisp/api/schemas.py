"""Pydantic models of the API's requests and responses (they make ``/docs`` complete).

Each request contract is declared here once. :class:`FramesQuery`, the query of the hot frames
route, is read by FastAPI for the route and by :meth:`FramesQuery.parse` for the fast path
(:mod:`aisp.api.fastpath`): one set of names, limits, defaults and boolean rules, one set of errors.

Responses that wrap another area's ``to_dict()`` (cache statistics, model results, stream
statistics) declare the fields the API promises and allow extra ones, so a new statistic in
another area shows up without breaking response validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from aisp.api.errors import invalid_request
from aisp.api.modelops import parse_model_list


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- errors ---------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    code: int = Field(description="HTTP status code.", examples=[400])
    name: str = Field(description="Stable error name, e.g. VALIDATION_ERROR.", examples=["VALIDATION_ERROR"])
    message: str = Field(description="What was wrong, naming the field and what was expected.")
    timestamp: str
    details: dict[str, Any] = Field(default_factory=dict)
    path: str | None = None
    method: str | None = None


class ErrorResponse(BaseModel):
    status: Literal["error"] = "error"
    error: ErrorDetail


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting the unified error body for ``codes``."""
    text = {
        400: "Invalid input (VALIDATION_ERROR).",
        401: "Missing or invalid API key (UNAUTHORIZED).",
        403: "The key's role may not do this (FORBIDDEN).",
        404: "Unknown model, stream, task or route (NOT_FOUND).",
        409: "Conflict with the current state (CONFLICT).",
        413: "Upload or image too large (PAYLOAD_TOO_LARGE).",
        415: "Not a JPEG, PNG or WebP image (UNSUPPORTED_MEDIA).",
        422: "A source that cannot be opened (SOURCE_ERROR) or an unusable model file (INVALID_MODEL).",
        500: "Unexpected error (INTERNAL_ERROR) or model load failure (MODEL_LOAD_ERROR).",
        501: "An optional dependency is missing (MISSING_DEPENDENCY).",
        503: "Overloaded, starting or store unavailable (OVERLOADED, STORE_ERROR); see Retry-After.",
    }
    return {c: {"model": ErrorResponse, "description": text.get(c, "Error.")} for c in codes}


COMMON_ERRORS = error_responses(400, 401, 403, 500, 503)


# --- status ---------------------------------------------------------------------------------
class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    uptime_s: float


class ReadyResponse(BaseModel):
    ready: bool
    pending: list[str] = Field(description="Components still starting (503 while not empty).")
    components: dict[str, str] = Field(description="component -> pending|running|done|failed|skipped")
    errors: dict[str, str] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(default_factory=dict)


class StatusResponse(BaseModel):
    version: str
    uptime_s: float
    started_at: str
    ready: bool
    auth: Literal["on", "off"]
    components: dict[str, str]
    errors: dict[str, str] = Field(
        default_factory=dict,
        description="component -> why it failed: the error type for a viewer, the text (passwords as ***) "
        "for an admin.")
    warm: bool = Field(description="True when every prewarm model is loaded.")
    warmed_models: list[str] = Field(default_factory=list)
    prewarm: list[str] = Field(default_factory=list)
    streams: int = 0
    timings_ms: dict[str, float] = Field(default_factory=dict)
    cpu_plan: dict[str, Any] | None = Field(
        None,
        description="The CPU budget (aisp.cpu_budget.CpuPlan): the app's one plan, which its runtime, its "
        "inference pool and its batcher follow.",
    )
    delivery: dict[str, Any] | None = Field(
        default=None, description="Events out: MQTT and webhook accounting (as /api/delivery)."
    )


class StreamPerf(_Open):
    id: str
    state: str
    input_fps: float | None = None
    processed_fps: float | None = None
    dropped: int | None = None
    latency_p99_ms: float | None = None


class PerformanceResponse(BaseModel):
    cpu_percent: float | None = Field(
        description="Percent of one core since the previous reading or the start (None within 0.5 s of it)."
    )
    rss_mb: float
    threads: int
    system_memory_percent: float
    inference_inflight: int
    inference_capacity: int
    streams: list[StreamPerf]
    cache: dict[str, Any]


# --- models and cache -----------------------------------------------------------------------
class ModelInfoOut(_Open):
    name: str
    backend: str | None = None
    status: str | None = None


class ModelListResponse(BaseModel):
    models: list[ModelInfoOut]


class ModelLoadResponse(BaseModel):
    name: str
    loaded: bool
    load_ms: float
    cached: list[str] = Field(default_factory=list, description="Cache keys now held for this model.")


class ModelUnloadResponse(BaseModel):
    name: str
    unloaded: list[str] = Field(description="Cache keys removed (instances included).")


class PrewarmRequest(BaseModel):
    models: list[str] = Field(min_length=1, max_length=64, examples=[["face_detection"]])


class PrewarmResponse(BaseModel):
    loaded: list[str]
    failed: dict[str, str] = Field(default_factory=dict)
    duration_ms: float


class CacheStatsResponse(_Open):
    pass


class CacheClearResponse(BaseModel):
    cleared: int


# --- frames ---------------------------------------------------------------------------------
#: The longest ``models`` value the frames route takes (characters).
MAX_MODELS_LEN = 1000


class FramesQuery(BaseModel):
    """The query of ``POST /api/frames/process``.

    The route declares it as ``Annotated[FramesQuery, Query()]`` (FastAPI reads, validates and
    documents it); the fast path calls :meth:`parse`. The rules, the same in both:

    * a parameter given twice counts once, by its last value (Starlette's ``QueryParams``);
      unknown parameters are ignored;
    * ``models`` is required, at most :data:`MAX_MODELS_LEN` characters; :meth:`names` splits it;
    * booleans are pydantic's: ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off``,
      ``t``/``f``, ``y``/``n`` in any case; nothing else, not even with spaces around;
    * a bad query is a 400 ``VALIDATION_ERROR`` naming every bad parameter
      (:func:`aisp.api.errors.invalid_request`).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    models: str = Field(
        description="Comma-separated model names, e.g. face_detection,hands.", max_length=MAX_MODELS_LEN
    )
    annotate: bool = Field(False, description="Return the annotated image as image/jpeg.")
    reduced_decode: bool | None = Field(
        None,
        description="Allow decoding a JPEG at half scale when every model resizes the frame to a much "
        "smaller network input: faster, but boxes and scores then differ slightly from `model.infer()` "
        "on the full image (results are in the original pixels either way; `decode_scale` in the "
        "response says which scale was used). Default: the setting `AISP_FRAMES_REDUCED_DECODE` "
        "(false: a full decode, the same answer as the library).",
    )

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> FramesQuery:
        """The query from ``params`` (a ``QueryParams``: ``params[name]`` is the last value), read
        as the route reads it; raises the route's 400 ``ValidationError`` when it is invalid."""
        given = {name: params[name] for name in cls.model_fields if name in params}
        try:
            return cls.model_validate(given)
        except pydantic.ValidationError as exc:
            raise invalid_request(exc.errors(), loc=("query",)) from None

    def names(self) -> list[str]:
        """The model names, stripped and de-duplicated in order; 400 when there is none."""
        return parse_model_list(self.models)


class FrameProcessResponse(BaseModel):
    width: int
    height: int
    format: str
    models: dict[str, dict[str, Any]] = Field(description="model name -> its result (to_dict()).")
    inference_ms: dict[str, float]
    decode_ms: float
    decode_scale: int = Field(
        1, description="JPEG decode scale divisor (1 or 2; see the reduced_decode parameter)."
    )
    total_ms: float


# --- streams --------------------------------------------------------------------------------
class StreamOutputSpec(BaseModel):
    """Video out of a stream (docs/outputs.md)."""

    model_config = ConfigDict(extra="forbid")
    hls: StrictBool = Field(
        False, description="Viewers may watch HLS (encoding starts on the first request)."
    )
    push: str | None = Field(
        None, min_length=1, max_length=2048,
        description="rtsp://, rtsps://, rtmp:// or rtmps:// URL to push to.",
        examples=["rtsp://mediamtx:8554/cam1"],
    )


class StreamRecordSpec(BaseModel):
    """Which events of the stream record a clip, and the margins (docs/outputs.md)."""

    model_config = ConfigDict(extra="forbid")
    types: list[str] | None = Field(None, max_length=16, description="Event types; default all but `stream`.")
    labels: list[str] | None = Field(None, max_length=64, description="Only events with these labels.")
    zones: list[str] | None = Field(None, max_length=64, description="Only events in these zones/lines.")
    pre_seconds: float = Field(5.0, ge=0, le=60, description="Video kept before the event.")
    post_seconds: float = Field(5.0, ge=0, le=300, description="Video kept after the last matching event.")


_ZONE_NAME = r"^[A-Za-z0-9_.-]{1,64}$"


class ZoneIn(BaseModel):
    """A polygon of a stream (see docs/events.md); checked further by ``aisp.pipeline.zones``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_ZONE_NAME, examples=["door"])
    polygon: list[tuple[float, float]] = Field(
        min_length=3, max_length=64, examples=[[[0, 0], [1, 0], [1, 1]]]
    )
    labels: list[str] | None = Field(None, min_length=1, max_length=32, description="Only these labels.")
    relative: bool = Field(False, description="Coordinates are fractions of the frame's width/height.")
    dwell: float | None = Field(None, gt=0, le=86_400, description="Seconds inside before a dwell event "
                                "(and between the next ones).")


class LineIn(BaseModel):
    """A counting line of a stream: ``in`` is a crossing from its left to its right (start -> end)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_ZONE_NAME, examples=["gate"])
    start: tuple[float, float]
    end: tuple[float, float]
    labels: list[str] | None = Field(None, min_length=1, max_length=32)
    relative: bool = False


class ZonesUpdate(BaseModel):
    """``PUT /api/streams/{id}/zones``: the stream's zones and lines, replaced whole."""

    model_config = ConfigDict(extra="forbid")
    zones: list[ZoneIn] = Field(default_factory=list, max_length=32)
    lines: list[LineIn] = Field(default_factory=list, max_length=32)


class StreamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Letters, digits, `_`, `.` and `-`, starting with a letter or digit (so never `.` or "
        "`..`), at most 64; defaults to a new id.",
    )
    source: str = Field(min_length=1, max_length=2048, examples=["demo"])
    models: list[str] = Field(min_length=1, max_length=16, examples=[["face_detection"]])
    priority: int = Field(0, ge=-100, le=100)
    max_fps: float | None = Field(None, gt=0, le=1000)
    every: int = Field(1, ge=1, le=1000)
    live: bool | None = None
    track: bool | None = Field(None, description="Give each detection a stable track id (on when zones "
                               "or lines are set).")
    zones: list[ZoneIn] | None = Field(None, max_length=32)
    lines: list[LineIn] | None = Field(None, max_length=32)
    output: StreamOutputSpec | None = None
    record: StreamRecordSpec | None = None
    start: bool = Field(True, description="Start it right away.")


class StreamOut(BaseModel):
    id: str
    source: str
    models: list[str]
    priority: int = 0
    max_fps: float | None = None
    every: int = 1
    live: bool | None = None
    output: dict[str, Any] | None = Field(None, description="Video out; the push URL's password is hidden.")
    record: dict[str, Any] | None = None
    track: bool = False
    zones: list[dict[str, Any]] = Field(default_factory=list)
    lines: list[dict[str, Any]] = Field(default_factory=list)
    state: str
    last_error: str | None = None
    stats: dict[str, Any] = Field(
        default_factory=dict,
        description="Frame statistics; with tracking also zones (count per zone and label), lines "
        "(in/out), events (by type) and tracks.",
    )
    video: dict[str, Any] | None = Field(None, description="Encoder, HLS, push and clip statistics.")
    node_id: str | None = Field(None, description="The cluster node that runs the stream (None on one "
                                "machine, or while it is stopped).")


class StreamListResponse(BaseModel):
    streams: list[StreamOut]


# --- events ---------------------------------------------------------------------------------
class EventRecordOut(_Open):
    id: str
    type: str
    stream_id: str
    time: float = Field(description="Wall-clock epoch seconds of the frame's capture.")
    frame_index: int | None = None
    label: str | None = None
    track_id: int | None = None
    confidence: float | None = None
    box: list[float] | None = Field(None, description="x1, y1, x2, y2 in pixels of the frame.")
    zone: str | None = Field(None, description="Zone or line name.")
    direction: str | None = None
    seconds: float | None = None
    state: str | None = None
    snapshot: str | None = Field(None, description="API path of the JPEG snapshot.")
    message: str | None = None


class EventRecordList(BaseModel):
    events: list[EventRecordOut]
    next_cursor: str | None = Field(None, description="Pass as cursor= for the next (older) page.")


# --- tasks ----------------------------------------------------------------------------------
class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=2048, description="Video file path, glob, folder or URL.")
    models: list[str] = Field(min_length=1, max_length=16, examples=[["face_detection"]])
    max_fps: float | None = Field(None, gt=0, le=1000)
    every: int = Field(1, ge=1, le=1000)
    video: bool = Field(True, description="Also write an annotated MP4.")


class TaskOut(_Open):
    id: str
    state: str
    source: str
    models: list[str]
    progress: float = Field(description="Percent done, 0..100.")
    frames_done: int = 0
    frames_total: int | None = None
    fps: float | None = None
    eta_s: float | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None


class TaskListResponse(BaseModel):
    tasks: list[TaskOut]


# --- auth -----------------------------------------------------------------------------------
class WhoAmI(BaseModel):
    role: Literal["admin", "viewer"]
    auth: Literal["on", "off"]
    key_id: str | None = None
    name: str | None = None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "viewer"]
    name: str = Field(min_length=1, max_length=100)


class KeyOut(_Open):
    id: str
    role: str
    name: str | None = None
    created_at: str | None = None
    revoked: bool | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="The key in plain text. Shown only in this response.")


class KeyListResponse(BaseModel):
    keys: list[KeyOut]


# --- cluster --------------------------------------------------------------------------------
class ClusterNodeOut(_Open):
    node_id: str = Field(description="Ray's node id (hex).")
    address: str = Field(description="The node's IP address as Ray knows it.")
    alive: bool = Field(description="False for a node that left or died (Ray keeps listing it).")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Ray resources of the node: CPU, memory, stream_slot, ...")
    is_head: bool = False
    streams: list[str] = Field(default_factory=list, description="Ids of the streams running on this node.")
    tasks: list[str] = Field(default_factory=list, description="Ids of the tasks with work on this node.")


class ClusterFramesOut(_Open):
    path: Literal["serve", "local"] = Field(
        description="Who answers POST /api/frames/process: Ray Serve replicas, or the API process.")
    replicas: int = Field(0, description="Replicas of the frames deployment (0 on the local path).")


class ClusterEventsOut(_Open):
    relayed: int = Field(0, description="Events of stream actors published to this API's consumers "
                         "(WebSockets, MQTT, webhooks) since it started.")
    local_skipped: int = Field(0, description="Stored events this API published itself (not relayed again).")
    errors: int = Field(0, description="Reads of the store that failed (retried).")
    healthy: bool = Field(True, description="False while reading the store fails.")
    cursor: int | None = Field(None, description="The newest event seq read (null until the store answered).")
    latency_s: float | None = Field(None, description="Capture to publication of the last relayed event.")


class ClusterResponse(BaseModel):
    nodes: list[ClusterNodeOut] = Field(description="Every node Ray knows, the head first, then alive ones.")
    frames: ClusterFramesOut | None = None
    events: ClusterEventsOut | None = Field(
        None, description="The relay of stream actors' events to this API (null without cluster streams).")
