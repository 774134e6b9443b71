"""``ModelConfig``: everything a model reads from the outside world, as one frozen value.

Models never read the process settings. Whoever builds them (a :class:`~aisp.models.registry.
ModelRegistry`, a test, a benchmark) passes a ``ModelConfig``, usually made once from a
``Settings`` object with :meth:`ModelConfig.from_settings`. Two registries with different
configs in one process therefore build differently configured models, side by side.

The defaults are the ``Settings`` defaults, so ``ModelConfig()`` is what an unconfigured AISP uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    """

    min_detection_confidence: float = 0.5
    mediapipe_graph_threads: int = 0
    onnx_providers: tuple[str, ...] = ("auto",)
    log_level: str = "INFO"

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
        if self.log_level not in LOG_LEVELS:
            raise _invalid("log_level", " | ".join(LOG_LEVELS), self.log_level)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelConfig:
        """The model part of ``settings``."""
        return cls(
            min_detection_confidence=settings.min_detection_confidence,
            mediapipe_graph_threads=settings.mediapipe_graph_threads,
            onnx_providers=tuple(settings.onnx_providers),
            log_level=settings.log_level,
        )


def _invalid(field: str, expected: str, value: object) -> ValidationError:
    return ValidationError(
        f"{field}: expected {expected}, got {value!r}", field=field, expected=expected, value=repr(value)
    )
