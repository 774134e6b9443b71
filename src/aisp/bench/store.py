"""The store benchmark (``aisp bench store``): JSON figures.

Measured side by side in one run, on a temporary SQLite file (and on PostgreSQL when
``AISP_BENCH_POSTGRES_URL`` is set):

- ``submit_us``: what the frame path pays per event with :class:`EventWriter` (p50, p99),
  beside ``sync_insert_us``, one synchronous single-row insert per event (the naive way), and
  their ratio;
- ``writer_events_per_s``: batched throughput of the writer thread, from the first submit to
  the last row committed;
- ``verify_key_us``: one API key check (p50, p99), which every request pays.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aisp.settings import load_settings
from aisp.store import EventSummary, Store

__all__ = ["run"]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values_s: list[float]) -> dict[str, float]:
    us = [v * 1e6 for v in values_s]
    return {"p50": round(statistics.median(us), 2), "p99": round(_pct(us, 0.99), 2), "n": len(us)}


def _bench_url(url: str, n: int) -> dict[str, Any]:

    settings = load_settings(environ={}, data_dir=Path(tempfile.mkdtemp(prefix="aisp-bench-")),
                             event_buffer_size=n + 10)
    out: dict[str, Any] = {}
    with Store(url, settings=settings) as store:
        if store.db is not None and store.db.dialect == "postgresql":
            from sqlalchemy import text

            with store.db.session() as s:  # a clean table, so runs compare
                s.execute(text("DELETE FROM events"))
        now = time.time()
        events = [EventSummary("bench", now + i, now + i + 1, 30, i % 5, {"face": i % 5}, 0.9)
                  for i in range(n)]

        # the naive way: one synchronous insert per event, on the caller's thread
        sync = []
        for e in events[: max(50, n // 20)]:
            t0 = time.perf_counter()
            store.event_log.insert_many([e])
            sync.append(time.perf_counter() - t0)

        writer = store.events
        subs = []
        t_start = time.perf_counter()
        for e in events:
            t0 = time.perf_counter()
            writer.submit(e)
            subs.append(time.perf_counter() - t0)
        assert writer.flush(120), "the event writer did not drain"
        elapsed = time.perf_counter() - t_start
        out["submit_us"] = _summary(subs)
        out["sync_insert_us"] = _summary(sync)
        ratio = out["sync_insert_us"]["p50"] / max(out["submit_us"]["p50"], 1e-9)
        out["sync_over_submit_p50"] = round(ratio, 1)
        out["writer_events_per_s"] = round(n / elapsed, 1)
        out["writer"] = writer.stats().to_dict()

        _, token = store.keys.create("viewer", "bench")
        verify = []
        for _ in range(200):
            t0 = time.perf_counter()
            store.keys.verify(token)
            verify.append(time.perf_counter() - t0)
        out["verify_key_us"] = _summary(verify)
    return out


def run(quick: bool = False) -> dict[str, Any]:
    n = 2_000 if quick else 20_000
    with tempfile.TemporaryDirectory(prefix="aisp-bench-") as tmp:
        results: dict[str, Any] = {"events": n, "sqlite": _bench_url(f"sqlite:///{tmp}/bench.db", n)}
    pg = os.environ.get("AISP_BENCH_POSTGRES_URL")
    if pg:
        results["postgresql"] = _bench_url(pg, n)
    return results
