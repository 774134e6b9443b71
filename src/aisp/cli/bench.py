"""``aisp bench ...``: benchmarks that print one JSON object to stdout.

Each area has a module ``aisp.bench.<area>`` with ``run(quick: bool = False) -> dict``.
``aisp bench all`` runs every area and prints ``{"<area>": {...}, ...}``.
"""

from __future__ import annotations

import importlib
import json
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import typer

from aisp.cli._common import settings_from_context

if TYPE_CHECKING:
    from aisp.settings import Settings

AREAS = ("cache", "models", "pipeline", "api", "store", "security", "delivery", "events", "outputs",
         "cluster")

app = typer.Typer(help="Benchmarks; each prints JSON to stdout.", no_args_is_help=True)


def _run_area(area: str, quick: bool, settings: Settings) -> dict:
    """Run one area with the command's settings (``aisp --config ... bench``) where models are
    loaded; the cache and store benchmarks build their own isolated caches and databases."""
    module = importlib.import_module(f"aisp.bench.{area}")
    if area == "models":
        from aisp.models import ModelConfig  # numpy: only when this area runs

        return module.run(quick=quick, config=ModelConfig.from_settings(settings))
    if area == "api":  # the frames route, then dynamic batching off against on (an ONNX model)
        from aisp.bench.api_batching import run_batching

        return {**module.run(quick=quick, settings=settings), "onnx_batching": run_batching(quick)}
    if area in ("pipeline", "events", "outputs"):
        return module.run(quick=quick, settings=settings)
    return module.run(quick=quick)


def _emit(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _meta() -> dict:
    import os
    import platform

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def _make(area: str):
    def command(
        ctx: typer.Context,
        quick: bool = typer.Option(False, "--quick", help="Shorter run, for smoke tests."),
    ) -> None:
        _emit({"benchmark": area, **_meta(), "results": _run_area(area, quick, settings_from_context(ctx))})

    command.__doc__ = f"Benchmark the {area} area; JSON to stdout."
    return command


for _area in AREAS:
    if _area != "pipeline":
        app.command(_area)(_make(_area))


@app.command("pipeline")
def bench_pipeline(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Shorter run, for smoke tests."),
    workload: str = typer.Option("onnx,mediapipe,live,soak", "--workload",
                                 help="Comma separated: onnx, mediapipe, live, soak."),
    peer_python: str | None = typer.Option(
        None, "--peer-python", help="A Python interpreter where `import inference` works: also run "
        "Roboflow's InferencePipeline on the ONNX workload."),
) -> None:
    """Benchmark the pipeline area (ONNX and MediaPipe workloads, live latency, soak); JSON to stdout."""
    from aisp.bench import pipeline as bench_module
    from aisp.errors import ValidationError

    names = tuple(part.strip() for part in workload.split(",") if part.strip())
    unknown = sorted(set(names) - set(bench_module.WORKLOADS))
    if not names or unknown:
        raise ValidationError(
            f"--workload: expected some of {', '.join(bench_module.WORKLOADS)}, got {workload!r}",
            field="workload", value=workload,
        )
    settings = settings_from_context(ctx)
    results = bench_module.run(quick=quick, settings=settings, workloads=names, peer_python=peer_python)
    _emit({"benchmark": "pipeline", **_meta(), "results": results})


@app.command("all")
def bench_all(
    ctx: typer.Context, quick: bool = typer.Option(False, "--quick", help="Shorter runs, for smoke tests.")
) -> None:
    """Run every benchmark; one JSON object with a key per area."""
    settings = settings_from_context(ctx)
    results = {}
    for area in AREAS:
        try:
            results[area] = _run_area(area, quick, settings)
        except Exception as exc:  # one failing area must not hide the others' figures
            results[area] = {"error": f"{type(exc).__name__}: {exc}"}
    _emit({"benchmark": "all", **_meta(), "results": results})
