"""What the client's calls return: the library's own types where the server sends them
(:class:`~aisp.models.ModelResult` and its ``Detections``/``Landmarks``/..., the cache's
:class:`~aisp.cache.stats.CacheStats`/:class:`~aisp.cache.stats.ModelStats`,
:class:`~aisp.models.ModelInfo`, :class:`~aisp.events.Event`) and small frozen records for the
API's own shapes (a frame's answer, a stream, a task, a stream message).

Every record keeps the server's JSON as ``raw`` (fields a newer server adds are there). The
``from_dict`` constructors import numpy (through :mod:`aisp.models`) when first called, not
with this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from aisp.errors import ValidationError

if TYPE_CHECKING:
    from aisp.cache.stats import CacheStats, ModelStats
    from aisp.models import ModelInfo, ModelResult

__all__ = [
    "FrameResult",
    "StreamResult",
    "StreamInfo",
    "TaskInfo",
    "CacheReport",
    "model_info",
    "TASK_DONE_STATES",
]

#: task states in which a task no longer changes by itself
TASK_DONE_STATES = frozenset({"completed", "failed", "cancelled", "interrupted"})


def _results(models: Any) -> dict[str, ModelResult]:
    from aisp.models import ModelResult

    if not isinstance(models, dict):
        raise ValidationError(
            f"server answer: expected 'models' to be an object, got {type(models).__name__}", field="models"
        )
    return {name: ModelResult.from_dict(data, model=name) for name, data in models.items()}


def _obj(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(f"server answer: expected {what} as an object, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class FrameResult:
    """``POST /api/frames/process``'s answer: each model's typed result, in request order.

    With ``annotate=True`` the server answers with the annotated JPEG only: ``results`` is then
    empty and ``annotated`` holds the JPEG (:meth:`annotated_image` decodes it to RGB).
    """

    results: dict[str, ModelResult]
    width: int | None = None
    height: int | None = None
    format: str | None = None
    inference_ms: dict[str, float] = field(default_factory=dict)
    decode_ms: float | None = None
    decode_scale: int = 1
    total_ms: float | None = None
    annotated: bytes | None = field(default=None, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameResult:
        data = _obj(data, "the frame result")
        return cls(
            results=_results(data.get("models", {})),
            width=data.get("width"),
            height=data.get("height"),
            format=data.get("format"),
            inference_ms=dict(data.get("inference_ms") or {}),
            decode_ms=data.get("decode_ms"),
            decode_scale=int(data.get("decode_scale", 1)),
            total_ms=data.get("total_ms"),
            raw=data,
        )

    def __getitem__(self, model: str) -> ModelResult:
        return self.results[model]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.results.values())

    @property
    def num_detections(self) -> int:
        return sum(r.num_detections for r in self.results.values())

    def annotated_image(self) -> Any:
        """The annotated image as an RGB ``uint8`` array (numpy, OpenCV); None when not asked."""
        if self.annotated is None:
            return None
        from aisp.client._encode import decode_jpeg_rgb

        return decode_jpeg_rgb(self.annotated)


@dataclass(frozen=True)
class StreamResult:
    """One message of ``/ws/streams/{id}``: a frame's typed results."""

    stream: str
    seq: int
    state: str | None
    index: int | None
    pts: float | None
    captured_at: float | None
    width: int | None
    height: int | None
    results: dict[str, ModelResult]
    error: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamResult:
        data = _obj(data, "the stream message")
        return cls(
            stream=str(data.get("stream") or data.get("stream_id") or ""),
            seq=int(data.get("seq", 0)),
            state=data.get("state"),
            index=data.get("index"),
            pts=data.get("pts"),
            captured_at=data.get("captured_at"),
            width=data.get("width"),
            height=data.get("height"),
            results=_results(data.get("results", {})),
            error=data.get("error"),
            raw=data,
        )

    @property
    def num_detections(self) -> int:
        return sum(r.num_detections for r in self.results.values())


@dataclass(frozen=True)
class StreamInfo:
    """A stream as ``/api/streams`` shows it."""

    id: str
    source: str
    models: list[str]
    state: str
    priority: int = 0
    max_fps: float | None = None
    every: int = 1
    live: bool | None = None
    last_error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    #: the cluster node that runs the stream (None on one machine)
    node_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamInfo:
        return _record(cls, _obj(data, "the stream"))


@dataclass(frozen=True)
class TaskInfo:
    """A task as ``/api/tasks`` shows it (``progress`` in percent)."""

    id: str
    state: str
    source: str
    models: list[str]
    progress: float = 0.0
    frames_done: int = 0
    frames_total: int | None = None
    fps: float | None = None
    eta_s: float | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    downloads: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskInfo:
        return _record(cls, _obj(data, "the task"))

    @property
    def done(self) -> bool:
        """True in a final state (completed, failed, cancelled, interrupted)."""
        return self.state in TASK_DONE_STATES


def _record(cls: Any, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)} - {"raw"}
    kwargs = {k: v for k, v in data.items() if k in known and v is not None}
    try:
        return cls(**kwargs, raw=data)
    except TypeError as exc:
        raise ValidationError(f"server answer: {cls.__name__}: {exc}") from None


def model_info(data: dict[str, Any]) -> ModelInfo:
    """A :class:`~aisp.models.ModelInfo` from one row of ``GET /api/models``."""
    from aisp.models import ModelInfo

    return _known(ModelInfo, _obj(data, "the model"))


def _known(cls: Any, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise ValidationError(f"server answer: {cls.__name__}: {exc}") from None


@dataclass(frozen=True)
class CacheReport:
    """``GET /api/cache/stats``: the totals (the cache's own :class:`~aisp.cache.stats.CacheStats`),
    each model key's :class:`~aisp.cache.stats.ModelStats` (by the key's text, ``"name#instance"``),
    and the prewarm state, recent alerts and configuration as the server sends them."""

    basic: CacheStats
    models: dict[str, ModelStats]
    prewarm: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CacheReport:
        from aisp.cache.keys import ModelKey
        from aisp.cache.stats import CacheStats, ModelStats

        data = _obj(data, "the cache statistics")
        models = {}
        for name, row in _obj(data.get("models", {}), "the cache's models").items():
            row = _obj(row, "a model's statistics")
            models[name] = _known(ModelStats, {**row, "key": ModelKey.parse(str(row.get("name", name)))})
        return cls(
            basic=_known(CacheStats, _obj(data.get("basic_stats"), "basic_stats")),
            models=models,
            prewarm=dict(data.get("prewarm") or {}),
            alerts=list(data.get("alerts") or []),
            config=dict(data.get("config") or {}),
            raw=data,
        )
