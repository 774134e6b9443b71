"""The CPU budget: one place decides the threads of everything that computes.

:func:`plan_cpu` turns the cores, the settings and the workload into a :class:`CpuPlan`::

    cores ─┐
    settings (overrides) ─┼─► plan_cpu() ─► CpuPlan
    workload (streams, tasks) ─┘                ├─ workers              pipeline inference threads
                                                ├─ decode_threads       codec threads of a reader (workload's)
                                                ├─ ort_intra_op_threads / ort_inter_op_threads
                                                ├─ ort_spinning         intra-op pool spin-waits
                                                ├─ ort_session_per_worker
                                                ├─ opencv_threads       cv2.setNumThreads
                                                ├─ mediapipe_graph_threads
                                                ├─ api_threads          the API's inference pool
                                                ├─ batching             pipeline: max batch, max delay
                                                └─ api_batching         the frames route: the same

The rule: parallelism comes from the workers, one compute thread per core, and nothing under a
worker starts a pool of its own. ONNX Runtime's default (one intra-op thread per core, spinning,
in every session) gave 2 workers 4+ busy threads on 2 cores, and half the throughput of
``intra_op_num_threads=1`` (docs/PERFORMANCE.md, "CPU budget"). So by default:

* ``workers`` = the cores (at least 1);
* each ONNX session gets ``cores // workers`` intra-op threads (1 when workers >= cores), one
  inter-op thread (sequential execution), and spins only when it has an intra-op pool of its own
  that has the cores to itself (with one thread the pool does not exist and spinning is moot);
* each worker gets its own ONNX session when it has a single intra-op thread (measured a little
  faster than one shared session; a session is small next to the frames in flight);
* OpenCV's own pool is off (1 thread) when the workers already fill the cores;
* each reader's codec gets ``cores + 1`` threads shared out over the readers, at least 1
  (:func:`reader_decode_threads`): decoding on the reader thread alone held a lone reader back (the
  codec threads decode while the reader thread waits, a frame or two ahead; measured 1.5-2x the
  pipeline's FPS with 3 threads instead of 1 on 2 cores, docs/PERFORMANCE.md), and several readers
  share the cores. The engine applies it to each source it starts, counting the readers running at
  that moment; a reader keeps the count it opened with (FFmpeg fixes a codec's threads once open);
* the API's inference pool keeps ``inference_threads`` (cores + 1, at most 4, measured);
* dynamic batching: in the API on (concurrent requests batched: 1.87x the requests/s at
  concurrency 8, p99 no worse, a quarter less CPU per request, measured on 2 cores); in the
  pipeline only for GPU providers (on the CPU a batch of 4 costs more per frame than 4 single runs
  of the benchmark model, and the pipeline gained 1.02-1.08x on a quiet machine but lost,
  0.81-0.89x, on a loaded one; docs/cpu.md).

Streams, batch tasks and API requests of one server share this one plan: tasks and streams run on
the runtime's one engine (its ``workers`` threads), so a second task adds a reader, not a pool.

Every figure can be overridden by a setting (0 or ``auto`` means "let the plan decide"); an
override is used as given, even if the total then exceeds the cores (``oversubscribed`` says so).
This module is pure: :func:`plan_cpu` reads nothing but its arguments; :func:`detect_cores` is the
one function that asks the operating system.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from aisp.settings import Settings

__all__ = ["BatchPolicy", "CpuPlan", "Workload", "detect_cores", "plan_cpu", "plan_from_settings",
           "reader_decode_threads"]

#: Providers that run models off the CPU: batching pays there.
GPU_PROVIDERS = frozenset({"cuda", "tensorrt", "CUDAExecutionProvider", "TensorrtExecutionProvider"})


def detect_cores() -> int:
    """The cores this process may run on (its affinity mask, else ``os.cpu_count()``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Workload:
    """What the plan is for: concurrent streams and batch tasks, and the backends in use."""

    streams: int = 1
    tasks: int = 0
    gpu: bool = False

    def __post_init__(self) -> None:
        for name in ("streams", "tasks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} expected an int >= 0, got {value!r}")


@dataclass(frozen=True)
class BatchPolicy:
    """Dynamic batching in the style of Triton's: up to ``max_size`` requests in one run, waiting at
    most ``max_delay_ms`` for more once the first has arrived. ``enabled=False``: one at a time."""

    enabled: bool = False
    max_size: int = 8
    max_delay_ms: float = 2.0

    @property
    def effective_size(self) -> int:
        return self.max_size if self.enabled else 1


@dataclass(frozen=True)
class CpuPlan:
    """The threads of one AISP process. Build it with :func:`plan_cpu`."""

    cores: int
    workers: int
    decode_threads: int
    ort_intra_op_threads: int
    ort_inter_op_threads: int
    ort_spinning: bool
    ort_session_per_worker: bool
    opencv_threads: int
    mediapipe_graph_threads: int
    api_threads: int
    batching: BatchPolicy = field(default_factory=BatchPolicy)
    api_batching: BatchPolicy = field(default_factory=BatchPolicy)
    #: the settings that overrode the plan's own choice
    overrides: tuple[str, ...] = ()

    @property
    def compute_threads(self) -> int:
        """Threads that may compute at once for the pipeline: each worker with its ORT pool."""
        return self.workers * max(1, self.ort_intra_op_threads)

    @property
    def oversubscribed(self) -> bool:
        """True when the pipeline's compute threads exceed the cores (only an override does that)."""
        return self.compute_threads > self.cores

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["overrides"] = list(self.overrides)
        out["compute_threads"] = self.compute_threads
        out["oversubscribed"] = self.oversubscribed
        return out

    def describe(self) -> str:
        """One line for logs and ``aisp run --verbose``."""
        def show(b: BatchPolicy) -> str:
            return f"on (max {b.max_size}, {b.max_delay_ms:g} ms)" if b.enabled else "off"

        return (
            f"CPU plan: {self.cores} cores; {self.workers} workers; decode {self.decode_threads} thread(s); "
            f"ORT intra {self.ort_intra_op_threads} inter {self.ort_inter_op_threads} "
            f"spin {'on' if self.ort_spinning else 'off'}, "
            f"{'a session per worker' if self.ort_session_per_worker else 'one shared session'}; "
            f"OpenCV {self.opencv_threads}; MediaPipe graph {self.mediapipe_graph_threads}; "
            f"API pool {self.api_threads}; batching: pipeline {show(self.batching)}, "
            f"API {show(self.api_batching)}"
            + (f"; overrides: {', '.join(self.overrides)}" if self.overrides else "")
        )


def reader_decode_threads(cores: int, readers: int, explicit: int = 0) -> int:
    """Codec threads for a reader that starts while ``readers`` readers run, itself included.

    The ``cores + 1`` codec threads of one reader shared out over the readers, at least 1:
    ``max(1, (cores + 1) // readers)``. ``explicit`` (the ``decode_threads`` setting; 0: none) is
    used as given, whatever the readers. Raises ValueError for an impossible value.
    """
    for name, value, least in (("cores", cores, 1), ("readers", readers, 1), ("explicit", explicit, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} expected an int >= {least}, got {value!r}")
    return explicit or max(1, (cores + 1) // readers)


def _tri(value: str, auto: bool) -> bool:
    return auto if value == "auto" else value == "on"


def plan_cpu(
    cores: int,
    *,
    workload: Workload | None = None,
    workers: int = 0,
    decode_threads: int = 0,
    ort_intra_op_threads: int = 0,
    ort_inter_op_threads: int = 0,
    ort_spinning: str = "auto",
    ort_session_per_worker: str = "auto",
    opencv_threads: int = 0,
    mediapipe_graph_threads: int = 0,
    api_threads: int = 0,
    batching: str = "auto",
    batch_max_size: int = 8,
    batch_max_delay_ms: float = 2.0,
) -> CpuPlan:
    """The plan for ``cores`` and ``workload``; every keyword is an override (0/``auto``: decide).

    ``ort_spinning``, ``ort_session_per_worker`` and ``batching`` take ``auto``, ``on`` or ``off``.
    Raises ValueError for an impossible value (the settings validate theirs before).
    """
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise ValueError(f"cores expected an int >= 1, got {cores!r}")
    for name, value in (("workers", workers), ("decode_threads", decode_threads),
                        ("ort_intra_op_threads", ort_intra_op_threads),
                        ("ort_inter_op_threads", ort_inter_op_threads), ("opencv_threads", opencv_threads),
                        ("mediapipe_graph_threads", mediapipe_graph_threads), ("api_threads", api_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} expected an int >= 0 (0: automatic), got {value!r}")
    for name, value in (("ort_spinning", ort_spinning), ("ort_session_per_worker", ort_session_per_worker),
                        ("batching", batching)):
        if value not in ("auto", "on", "off"):
            raise ValueError(f"{name} expected 'auto', 'on' or 'off', got {value!r}")
    if isinstance(batch_max_size, bool) or not isinstance(batch_max_size, int) or batch_max_size < 1:
        raise ValueError(f"batch_max_size expected an int >= 1, got {batch_max_size!r}")
    if not 0.0 <= float(batch_max_delay_ms) <= 1000.0:
        raise ValueError(f"batch_max_delay_ms expected 0..1000, got {batch_max_delay_ms!r}")
    load = workload or Workload()
    overrides = [name for name, value in (
        ("workers", workers), ("decode_threads", decode_threads),
        ("ort_intra_op_threads", ort_intra_op_threads),
        ("ort_inter_op_threads", ort_inter_op_threads), ("opencv_threads", opencv_threads),
        ("api_threads", api_threads)) if value]
    overrides += [name for name, value in (("ort_spinning", ort_spinning),
                                           ("ort_session_per_worker", ort_session_per_worker),
                                           ("batching", batching)) if value != "auto"]

    n_workers = workers or cores
    intra = ort_intra_op_threads or max(1, cores // n_workers)
    inter = ort_inter_op_threads or 1
    # Spinning pays only for a pool that has its cores to itself; with one thread there is no pool.
    spin = _tri(ort_spinning, intra > 1 and n_workers * intra <= cores and load.tasks == 0)
    per_worker = _tri(ort_session_per_worker, intra == 1 and n_workers > 1)
    cv_threads = opencv_threads or (1 if n_workers >= cores else cores - n_workers + 1)
    decode = reader_decode_threads(cores, max(1, load.streams + load.tasks), decode_threads)
    api = api_threads or min(4, cores + 1)
    batch = BatchPolicy(_tri(batching, load.gpu), batch_max_size, float(batch_max_delay_ms))
    api_batch = BatchPolicy(_tri(batching, True), batch_max_size, float(batch_max_delay_ms))
    return CpuPlan(
        cores=cores,
        workers=n_workers,
        decode_threads=decode,
        ort_intra_op_threads=intra,
        ort_inter_op_threads=inter,
        ort_spinning=spin,
        ort_session_per_worker=per_worker,
        opencv_threads=cv_threads,
        mediapipe_graph_threads=mediapipe_graph_threads,
        api_threads=api,
        batching=batch,
        api_batching=api_batch,
        overrides=tuple(overrides),
    )


def plan_from_settings(settings: Settings, *, workload: Workload | None = None,
                       cores: int | None = None) -> CpuPlan:
    """:func:`plan_cpu` with the overrides of ``settings`` (``cpu_cores`` 0: :func:`detect_cores`)."""
    n = cores or settings.cpu_cores or detect_cores()
    gpu = any(p in GPU_PROVIDERS for p in settings.onnx_providers)
    if workload is None:
        workload = Workload(streams=1, tasks=0, gpu=gpu)
    elif gpu and not workload.gpu:
        workload = Workload(workload.streams, workload.tasks, gpu=True)
    return plan_cpu(
        n,
        workload=workload,
        workers=settings.workers,  # 0 (the default): the plan's
        decode_threads=settings.decode_threads,
        ort_intra_op_threads=settings.ort_intra_op_threads,
        ort_inter_op_threads=settings.ort_inter_op_threads,
        ort_spinning=settings.ort_spinning,
        ort_session_per_worker=settings.ort_session_per_worker,
        opencv_threads=settings.opencv_threads,
        mediapipe_graph_threads=settings.mediapipe_graph_threads,
        # its default (cores + 1, at most 4) is the plan's own rule: an override only when set
        api_threads=settings.inference_threads if "inference_threads" in settings.model_fields_set else 0,
        batching=settings.batching,
        batch_max_size=settings.batch_max_size,
        batch_max_delay_ms=settings.batch_max_delay_ms,
    )
