"""The CPU budget's arithmetic (aisp.cpu_budget), its settings, and where the runtime applies it."""

from __future__ import annotations

import json

import pytest

from aisp.cpu_budget import (
    BatchPolicy,
    CpuPlan,
    Workload,
    detect_cores,
    plan_cpu,
    plan_from_settings,
    reader_decode_threads,
)
from aisp.settings import load_settings


def test_two_cores_one_worker_per_core_and_single_threaded_sessions() -> None:
    plan = plan_cpu(2)
    assert plan.workers == 2
    assert plan.ort_intra_op_threads == 1 and plan.ort_inter_op_threads == 1
    assert plan.ort_spinning is False  # one thread: no pool to spin
    assert plan.ort_session_per_worker is True
    assert plan.opencv_threads == 1  # the workers fill the cores
    assert plan.decode_threads == 3  # cores + 1 for the one reader
    assert plan.api_threads == 3  # cores + 1, at most 4
    assert plan.batching == BatchPolicy(enabled=False, max_size=8, max_delay_ms=2.0)  # pipeline: off
    assert plan.api_batching == BatchPolicy(enabled=True, max_size=8, max_delay_ms=2.0)  # API: it won
    assert plan.compute_threads == 2 and not plan.oversubscribed
    assert plan.overrides == ()


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16, 64])
def test_the_pipeline_never_exceeds_the_cores_by_default(cores: int) -> None:
    for workers in (0, 1, min(2, cores), cores):  # up to the cores: more is an oversubscribing override
        plan = plan_cpu(cores, workers=workers)
        assert plan.compute_threads <= cores, plan
        assert plan.ort_intra_op_threads >= 1 and plan.decode_threads >= 2
        assert 1 <= plan.api_threads <= 4
        assert plan.opencv_threads >= 1


def test_fewer_workers_than_cores_get_an_intra_op_pool_that_may_spin() -> None:
    plan = plan_cpu(8, workers=2)
    assert plan.ort_intra_op_threads == 4
    assert plan.ort_spinning is True  # 2 x 4 = 8 threads: the pool has its cores to itself
    assert plan.ort_session_per_worker is False  # multi-threaded sessions: one shared
    assert plan.opencv_threads == 7  # cores the workers leave, plus one
    assert plan.compute_threads == 8
    # concurrent batch tasks: nobody spins, readers share the codec threads
    busy = plan_cpu(8, workers=2, workload=Workload(streams=2, tasks=2))
    assert busy.ort_spinning is False and busy.decode_threads == 2


#: codec threads of a reader that starts while ``readers`` run (itself included): (cores + 1) // readers,
#: at least 1; written out, not recomputed
READER_THREADS = {  # cores: readers 1..5
    1: (2, 1, 1, 1, 1),
    2: (3, 1, 1, 1, 1),
    4: (5, 2, 1, 1, 1),
    8: (9, 4, 3, 2, 1),
    16: (17, 8, 5, 4, 3),
}


@pytest.mark.parametrize("cores", sorted(READER_THREADS))
def test_codec_threads_are_shared_out_over_the_readers(cores: int) -> None:
    for readers, expected in enumerate(READER_THREADS[cores], start=1):
        assert reader_decode_threads(cores, readers) == expected, (cores, readers)
        # the decode_threads setting is used as given, whatever the readers and the cores
        assert reader_decode_threads(cores, readers, explicit=4) == 4
        assert reader_decode_threads(cores, readers, explicit=1) == 1
    # the plan's own figure for a workload is the same rule
    assert plan_cpu(cores, workload=Workload(streams=2, tasks=1)).decode_threads == READER_THREADS[cores][2]


@pytest.mark.parametrize("kwargs,field", [({"cores": 0}, "cores"), ({"readers": 0}, "readers"),
                                          ({"readers": True}, "readers"), ({"explicit": -1}, "explicit"),
                                          ({"cores": 2.0}, "cores")])
def test_reader_decode_threads_refuses_impossible_values(kwargs: dict, field: str) -> None:
    args = {"cores": 2, "readers": 1, **kwargs}
    with pytest.raises(ValueError, match=field):
        reader_decode_threads(args["cores"], args["readers"], args.get("explicit", 0))


def test_one_core_one_worker() -> None:
    plan = plan_cpu(1)
    assert (plan.workers, plan.ort_intra_op_threads, plan.api_threads) == (1, 1, 2)
    assert plan.ort_session_per_worker is False  # one worker: nothing to split


def test_overrides_are_used_as_given_and_reported() -> None:
    plan = plan_cpu(2, workers=4, ort_intra_op_threads=2, ort_spinning="on", ort_session_per_worker="off",
                    opencv_threads=3, decode_threads=1, api_threads=7, batching="on", batch_max_size=4,
                    batch_max_delay_ms=5.0, mediapipe_graph_threads=2)
    assert (plan.workers, plan.ort_intra_op_threads, plan.decode_threads) == (4, 2, 1)
    assert plan.ort_spinning and not plan.ort_session_per_worker
    assert (plan.opencv_threads, plan.api_threads, plan.mediapipe_graph_threads) == (3, 7, 2)
    assert plan.batching == BatchPolicy(True, 4, 5.0) and plan.batching.effective_size == 4
    assert plan.api_batching == plan.batching
    assert plan.compute_threads == 8 and plan.oversubscribed
    assert set(plan.overrides) >= {"workers", "ort_intra_op_threads", "ort_spinning", "batching"}
    assert "overrides" in plan.describe() and "oversubscribed" in plan.to_dict()


def test_gpu_providers_turn_batching_on() -> None:
    assert plan_cpu(2, workload=Workload(gpu=True)).batching.enabled
    off = plan_cpu(2, workload=Workload(gpu=True), batching="off")
    assert not off.batching.enabled and not off.api_batching.enabled
    assert BatchPolicy(False, 8).effective_size == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"workers": -1}, {"ort_intra_op_threads": 1.5}, {"ort_spinning": "yes"}, {"batching": True},
     {"batch_max_size": 0}, {"batch_max_delay_ms": -1.0}, {"api_threads": True}],
)
def test_impossible_values_are_refused_naming_the_field(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        plan_cpu(2, **kwargs)


@pytest.mark.parametrize("cores", [0, -2, True, 2.0])
def test_cores_must_be_a_positive_int(cores) -> None:
    with pytest.raises(ValueError, match="cores"):
        plan_cpu(cores)


def test_workload_validates() -> None:
    with pytest.raises(ValueError, match="tasks"):
        Workload(tasks=-1)


def test_plan_from_settings_reads_the_overrides() -> None:
    plain = plan_from_settings(load_settings(cpu_cores=4))
    assert plain.cores == 4 and plain.workers == 4 and plain.overrides == ()
    assert plain.api_threads == 4
    s = load_settings(cpu_cores=4, workers=2, ort_spinning="off", inference_threads=2, batching="on",
                      batch_max_size=3, batch_max_delay_ms=1.5, decode_threads=1)
    plan = plan_from_settings(s)
    assert (plan.workers, plan.ort_intra_op_threads, plan.ort_spinning) == (2, 2, False)
    assert plan.api_threads == 2 and plan.decode_threads == 1
    assert plan.batching == BatchPolicy(True, 3, 1.5)
    assert {"workers", "ort_spinning", "api_threads", "batching"} <= set(plan.overrides)
    assert plan_from_settings(load_settings(onnx_providers="cuda,cpu", cpu_cores=2)).batching.enabled


def test_detected_cores_and_json() -> None:
    assert detect_cores() >= 1
    plan = plan_from_settings(load_settings())
    assert plan.cores == detect_cores()
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["workers"] == plan.workers and data["batching"]["enabled"] is False
    assert data["api_batching"]["enabled"] is True
    assert isinstance(plan, CpuPlan) and plan.describe().startswith("CPU plan:")


@pytest.mark.parametrize("field,value", [("ort_spinning", "maybe"), ("batch_max_size", 0),
                                         ("decode_threads", -1), ("cpu_cores", -1)])
def test_bad_settings_name_the_field(field: str, value) -> None:
    from aisp.errors import ConfigError

    with pytest.raises(ConfigError, match=field):
        load_settings(**{field: value})
