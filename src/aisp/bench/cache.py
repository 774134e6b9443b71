"""``aisp bench cache``: the model cache's hit path, single-flight storm and eviction policies.

* ``hit_path``: ns per ``get`` (p50, p99 over batches), AISP ``ModelCache`` (all statistics on:
  per-model counters, sliding-window hit rate, alert check, idle TTL refresh) side by side with
  ``cachetools.LRUCache`` behind a ``threading.Lock`` and a plain ``dict.get``, interleaved in
  the same run. ``aisp`` and ``aisp_get_or_load`` ask with a ``ModelKey`` (what the model
  registry passes); ``aisp_text_key`` asks with the key's text, which the cache parses once and
  remembers. Goal: AISP p50 at most 2x cachetools+Lock.
* ``single_flight``: 16 threads ask for one cold model whose loader sleeps 200 ms; loader calls
  (must be 1) and wall time.
* ``zipf``: a Zipf(1.0) trace over 20 models whose load costs are spread 10x (log-spaced
  10..100 ms, assigned at random to popularity ranks), capacity 5. The load cost is simulated
  by advancing an injected fake clock inside the loader, so the run is fast and deterministic.
  Hit rate and total load time for ``lru`` and ``cost``, medians over fixed seeds. Goal: ``cost``
  spends at least 15% less total load time than ``lru``.
"""

from __future__ import annotations

import logging
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from aisp.cache import ModelCache, ModelKey

__all__ = ["run", "hit_path", "single_flight", "zipf"]

HIT_PATH_GOAL_RATIO = 2.0
ZIPF_GOAL_SAVING = 0.15


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[index]


class _Model:
    __slots__ = ("size_bytes", "__weakref__")

    def __init__(self, size_bytes: int = 1 << 20) -> None:
        self.size_bytes = size_bytes


def hit_path(rounds: int = 2000, batch: int = 200) -> dict[str, Any]:
    import cachetools

    cache = ModelCache(max_size=8, default_ttl_seconds=3600, background_sweep=False)
    key = ModelKey("model")
    cache.put(key, _Model())
    text_cache = ModelCache(max_size=8, default_ttl_seconds=3600, background_sweep=False)
    text_cache.put("model", _Model())
    lru: cachetools.LRUCache[str, Any] = cachetools.LRUCache(maxsize=8)
    lru["model"] = _Model()
    lock = threading.Lock()
    plain = {"model": _Model()}

    def cachetools_get(key: str) -> Any:
        with lock:
            return lru.get(key)

    def aisp_get_or_load(key: ModelKey, _loader: Callable[[], Any] = _Model) -> Any:
        return cache.get_or_load(key, _loader)

    # each implementation with the argument it is called with
    impls: dict[str, tuple[Callable[[Any], Any], object]] = {
        "aisp": (cache.get, key),
        "aisp_get_or_load": (aisp_get_or_load, key),
        "aisp_text_key": (text_cache.get, "model"),
        "cachetools_lock": (cachetools_get, "model"),
        "dict": (plain.get, "model"),
    }
    samples: dict[str, list[float]] = {name: [] for name in impls}
    names = list(impls)
    timer = time.perf_counter_ns
    loop = range(batch)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate: no fixed position bias
        for name in order:
            fn, arg = impls[name]
            t0 = timer()
            for _ in loop:
                fn(arg)
            samples[name].append((timer() - t0) / batch)
    result: dict[str, Any] = {}
    for name, values in samples.items():
        result[name] = {
            "p50_ns": round(_percentile(values, 50), 1),
            "p99_ns": round(_percentile(values, 99), 1),
        }
    base = result["cachetools_lock"]["p50_ns"]
    result["ratio_p50_vs_cachetools"] = round(result["aisp"]["p50_ns"] / base, 3)
    result["ratio_p50_get_or_load_vs_cachetools"] = round(result["aisp_get_or_load"]["p50_ns"] / base, 3)
    result["ratio_p50_text_key_vs_cachetools"] = round(result["aisp_text_key"]["p50_ns"] / base, 3)
    result["goal_ratio_max"] = HIT_PATH_GOAL_RATIO
    result["goal_met"] = result["ratio_p50_vs_cachetools"] <= HIT_PATH_GOAL_RATIO
    result["rounds"], result["batch"] = rounds, batch
    result["aisp_hits_counted"] = cache.get_stats().hits
    cache.close()
    text_cache.close()
    return result


def single_flight(threads: int = 16, load_seconds: float = 0.2) -> dict[str, Any]:
    cache = ModelCache(max_size=4, background_sweep=False)
    calls = []
    barrier = threading.Barrier(threads + 1)
    results: list[Any] = []

    def loader() -> _Model:
        calls.append(1)
        time.sleep(load_seconds)  # a real slow load; the benchmark is the only place that sleeps
        return _Model()

    def caller() -> None:
        barrier.wait()
        results.append(cache.get_or_load("cold", loader))

    workers = [threading.Thread(target=caller, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    stats = cache.get_stats()
    cache.close()
    return {
        "threads": threads,
        "loader_ms": load_seconds * 1000,
        "loader_calls": len(calls),
        "wall_ms": round(wall * 1000, 1),
        "same_object": len(results) == threads and all(r is results[0] for r in results),
        "coalesced_waits": stats.coalesced_waits,
        "goal_met": len(calls) == 1,
    }


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _zipf_trace(seed: int, models: int, length: int, s: float) -> tuple[list[str], dict[str, float]]:
    rng = random.Random(seed)
    names = [f"m{i:02d}" for i in range(models)]
    weights = [1.0 / (rank + 1) ** s for rank in range(models)]
    costs = [0.010 * 10 ** (k / (models - 1)) for k in range(models)]  # 10 ms .. 100 ms
    rng.shuffle(costs)
    return rng.choices(names, weights=weights, k=length), dict(zip(names, costs, strict=True))


def _simulate(policy: str, trace: list[str], costs: dict[str, float], capacity: int) -> dict[str, float]:
    clock = _FakeClock()
    cache = ModelCache(
        max_size=capacity,
        max_memory_mb=None,
        default_ttl_seconds=None,
        eviction_policy=policy,
        hit_rate_threshold=0.0,
        clock=clock,
        background_sweep=False,
    )
    loaders = {}
    for name, cost in costs.items():

        def load(cost: float = cost) -> _Model:
            clock.now += cost
            return _Model()

        loaders[name] = load
    for name in trace:
        cache.get_or_load(name, loaders[name])
    stats = cache.get_stats()
    cache.close()
    return {
        "hit_rate": stats.hits / stats.requests,
        "load_time_s": stats.total_load_time_ms / 1000.0,
        "loads": stats.loads,
    }


def zipf(
    seeds: int = 7, length: int = 20_000, models: int = 20, capacity: int = 5, s: float = 1.0
) -> dict[str, Any]:
    per_policy: dict[str, list[dict[str, float]]] = {"lru": [], "cost": []}
    ratios = []
    for seed in range(seeds):
        trace, costs = _zipf_trace(seed, models, length, s)
        runs = {policy: _simulate(policy, trace, costs, capacity) for policy in per_policy}
        for policy, res in runs.items():
            per_policy[policy].append(res)
        ratios.append(runs["cost"]["load_time_s"] / runs["lru"]["load_time_s"])
    out: dict[str, Any] = {
        "models": models,
        "capacity": capacity,
        "zipf_s": s,
        "requests_per_seed": length,
        "seeds": seeds,
        "cost_spread": "10x (10..100 ms, log-spaced)",
    }
    for policy, runs in per_policy.items():
        out[policy] = {
            "hit_rate_median": round(statistics.median(r["hit_rate"] for r in runs), 4),
            "load_time_s_median": round(statistics.median(r["load_time_s"] for r in runs), 3),
            "loads_median": statistics.median(r["loads"] for r in runs),
        }
    ratio = statistics.median(ratios)
    out["cost_vs_lru_load_time_ratio_median"] = round(ratio, 4)
    out["cost_saving_percent_median"] = round((1 - ratio) * 100, 2)
    out["goal_saving_percent_min"] = ZIPF_GOAL_SAVING * 100
    out["goal_met"] = (1 - ratio) >= ZIPF_GOAL_SAVING
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """All three benchmarks; ``quick`` shortens the hit-path rounds and the Zipf traces.

    The cache's INFO lines (one per load) are silenced while the benchmarks run, so that log
    handlers do not take part in the timings.
    """
    logger = logging.getLogger("aisp.cache")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return {
            "hit_path": hit_path(rounds=300 if quick else 2000),
            "single_flight": single_flight(),
            "zipf": zipf(seeds=3 if quick else 7, length=4000 if quick else 20_000),
        }
    finally:
        logger.setLevel(level)
