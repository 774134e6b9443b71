"""ModelConfig: the Settings defaults, from_settings, validation, immutability."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from aisp.errors import ValidationError
from aisp.models import ModelConfig
from aisp.settings import load_settings


def test_defaults_are_the_settings_defaults(tmp_path: Path) -> None:
    from aisp.cpu_budget import plan_from_settings

    settings = load_settings(environ={}, data_dir=tmp_path)
    config = ModelConfig.from_settings(settings)
    plan = plan_from_settings(settings)  # the ONNX Runtime threads come from this machine's CPU plan
    threads = {"ort_intra_op_threads": plan.ort_intra_op_threads,
               "ort_inter_op_threads": plan.ort_inter_op_threads,
               "ort_spinning": plan.ort_spinning, "onnx_session_per_worker": plan.ort_session_per_worker}
    assert config == dataclasses.replace(ModelConfig(), **threads)
    assert ModelConfig.from_settings(settings, plan) == config


def test_from_settings_reads_every_field(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "AISP_MIN_DETECTION_CONFIDENCE": "0.7",
            "AISP_MEDIAPIPE_GRAPH_THREADS": "2",
            "AISP_ONNX_PROVIDERS": "cuda, cpu",
            "AISP_LOG_LEVEL": "DEBUG",
        },
        data_dir=tmp_path,
    )
    config = ModelConfig.from_settings(settings)
    assert dataclasses.replace(
        config, ort_intra_op_threads=0, ort_inter_op_threads=0, ort_spinning=None,
        onnx_session_per_worker=False,
    ) == ModelConfig(
        min_detection_confidence=0.7,
        mediapipe_graph_threads=2,
        onnx_providers=("cuda", "cpu"),
        log_level="DEBUG",
    )


def test_frozen_keyword_only_and_providers_become_a_tuple() -> None:
    config = ModelConfig(onnx_providers=["cpu"])  # type: ignore[arg-type]
    assert config.onnx_providers == ("cpu",) and hash(config) == hash(ModelConfig(onnx_providers=("cpu",)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.log_level = "DEBUG"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ModelConfig(0.5)  # type: ignore[misc]
    assert "min_detection_confidence=0.5" in repr(config)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_detection_confidence": 1.5}, "min_detection_confidence: expected a number in 0..1, got 1.5"),
        ({"min_detection_confidence": True}, "min_detection_confidence: expected a number in 0..1"),
        ({"mediapipe_graph_threads": -1}, "mediapipe_graph_threads: expected an int in 0..64, got -1"),
        ({"mediapipe_graph_threads": 1.0}, "mediapipe_graph_threads: expected an int"),
        ({"onnx_providers": "cpu"}, "onnx_providers: expected a sequence of provider names"),
        ({"onnx_providers": ("cpu", "")}, "onnx_providers: expected non-empty provider names"),
        ({"log_level": "LOUD"}, "log_level: expected DEBUG | INFO"),
    ],
)
def test_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        ModelConfig(**kwargs)
    assert info.value.details["field"] == next(iter(kwargs))
