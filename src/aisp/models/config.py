"""``ModelConfig``: everything a model reads from the outside world, as one frozen value.

Models never read the process settings. Whoever builds them (a :class:`~aisp.models.registry.
ModelRegistry`, a test, a benchmark) passes a ``ModelConfig``, usually made once from a
``Settings`` object with :meth:`ModelConfig.from_settings`. Two registries with different
configs in one process therefore build differently configured models, side by side.

The defaults are the ``Settings`` defaults, so ``ModelConfig()`` is what an unconfigured AISP uses,
except for ONNX Runtime's threads: ``from_settings`` takes them from the CPU plan of the machine
(:mod:`aisp.cpu_budget`), while ``ModelConfig()`` leaves ONNX Runtime its own defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aisp.cpu_budget import CpuPlan, plan_from_settings
from aisp.errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from aisp.settings import Settings

__all__ = ["ModelConfig", "LOG_LEVELS"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """How built-in models are built.

    Attributes:
        min_detection_confidence: the confidence floor of detectors (MediaPipe's
            ``min_detection_confidence``, the ONNX detector's ``conf_threshold``).
        mediapipe_graph_threads: where a MediaPipe graph runs its calculators: 0 on the calling
            thread, N on a pool of N graph threads (see :mod:`aisp.models._mp_threads`).
        onnx_providers: ONNX Runtime execution providers; ``auto`` is CUDA when present, else CPU.
        log_level: the process log level; below DEBUG, native MediaPipe/TF Lite output is quietened.
        ort_intra_op_threads: ONNX Runtime intra-op threads per session (0: ONNX Runtime's default,
            one per core). The CPU budget (:mod:`aisp.cpu_budget`) sets it.
        ort_inter_op_threads: ONNX Runtime inter-op threads per session (0: its default).
        ort_spinning: whether the intra-op threads spin-wait for work
            (``session.intra_op.allow_spinning``); None leaves ONNX Runtime's default (on).
        onnx_session_per_worker: each pipeline worker (instance ``w<i>``) and each API thread gets
            its own ONNX session; False: one session shared by every caller.
        fake_cost_ms: what the ``fake`` test model spends per frame (``AISP_FAKE_MODEL_COST_MS``).
    """

    min_detection_confidence: float = 0.5
    mediapipe_graph_threads: int = 0
    onnx_providers: tuple[str, ...] = ("auto",)
    log_level: str = "INFO"
    ort_intra_op_threads: int = 0
    ort_inter_op_threads: int = 0
    ort_spinning: bool | None = None
    onnx_session_per_worker: bool = False
    fake_cost_ms: float = 0.0

    def __post_init__(self) -> None:
        conf = self.min_detection_confidence
        if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
            raise _invalid("min_detection_confidence", "a number in 0..1", conf)
        threads = self.mediapipe_graph_threads
        if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= 64:
            raise _invalid("mediapipe_graph_threads", "an int in 0..64", threads)
        providers = self.onnx_providers
        if isinstance(providers, str) or not isinstance(providers, Sequence):
            raise _invalid("onnx_providers", "a sequence of provider names", providers)
        if not all(isinstance(p, str) and p.strip() for p in providers):
            raise _invalid("onnx_providers", "non-empty provider names", providers)
        object.__setattr__(self, "onnx_providers", tuple(providers))
        for name in ("ort_intra_op_threads", "ort_inter_op_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 256:
                raise _invalid(name, "an int in 0..256", value)
        if self.ort_spinning not in (None, True, False):
            raise _invalid("ort_spinning", "True, False or None", self.ort_spinning)
        if not isinstance(self.onnx_session_per_worker, bool):
            raise _invalid("onnx_session_per_worker", "a bool", self.onnx_session_per_worker)
        if self.log_level not in LOG_LEVELS:
            raise _invalid("log_level", " | ".join(LOG_LEVELS), self.log_level)

    @classmethod
    def from_settings(cls, settings: Settings, plan: CpuPlan | None = None) -> ModelConfig:
        """The model part of ``settings``, with the threads of ``plan`` (default: the plan of
        ``settings``, :func:`aisp.cpu_budget.plan_from_settings`)."""
        plan = plan if plan is not None else plan_from_settings(settings)
        return cls(
            min_detection_confidence=settings.min_detection_confidence,
            mediapipe_graph_threads=plan.mediapipe_graph_threads,
            onnx_providers=tuple(settings.onnx_providers),
            log_level=settings.log_level,
            ort_intra_op_threads=plan.ort_intra_op_threads,
            ort_inter_op_threads=plan.ort_inter_op_threads,
            ort_spinning=plan.ort_spinning,
            onnx_session_per_worker=plan.ort_session_per_worker,
            fake_cost_ms=settings.fake_model_cost_ms,
        )


def _invalid(field: str, expected: str, value: object) -> ValidationError:
    return ValidationError(
        f"{field}: expected {expected}, got {value!r}", field=field, expected=expected, value=repr(value)
    )
