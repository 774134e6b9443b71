"""``aisp run SOURCE --model NAME[,NAME]``: run models over a video, images, a camera, a stream or
the demo, with a progress bar and a summary table. Ctrl-C stops cleanly and keeps the outputs."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import typer

from aisp.cli._common import console, err_console, print_error, settings_from_context

SOURCE_HELP = (
    "A video file (mp4, mkv, avi, webm, gif), an image, a folder or glob of images, /dev/videoN or a "
    "camera index, an rtsp:// or http(s):// stream URL, or 'demo'."
)


def run(
    ctx: typer.Context,
    source: str = typer.Argument(..., help=SOURCE_HELP, show_default=False),
    model: str = typer.Option(..., "--model", "-m", help="Model name(s), comma separated.",
                              show_default=False),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the annotated video (mp4) here."),
    events: Path | None = typer.Option(None, "--events", help="Write one JSON line per frame here."),
    workers: int | None = typer.Option(None, "--workers", min=1, max=64, help="Inference workers "
                                          "(default: the `workers` setting)."),
    max_fps: float | None = typer.Option(None, "--max-fps", min=0.001, help="Process at most F frames/s."),
    every: int = typer.Option(1, "--every", min=1, help="Process every N-th frame."),
    duration: float | None = typer.Option(None, "--duration", min=0.001,
                                             help="Stop after this many seconds (for live sources)."),
    start_frame: int = typer.Option(0, "--start-frame", min=0,
                                    help="Start at this frame of a file (seeks to the keyframe before it)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print the CPU plan before running."),
) -> None:
    """Run models over a source; print a summary. Exit 0 on success, 1 when the source broke."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from aisp.runtime import build

    settings = settings_from_context(ctx)
    if workers is not None:  # the runtime's engine (and its CPU plan) gets this many workers
        settings = settings.model_copy(update={"workers": workers})
    runtime = build(settings, store=False)
    if verbose and runtime.cpu is not None:
        err_console.print(runtime.cpu.describe(), highlight=False, soft_wrap=True)
    cancel = threading.Event()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:6.1f} FPS"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    task = progress.add_task(f"{source}", total=None, fps=0.0)

    def on_progress(done: int, total: int | None, fps: float) -> None:
        progress.update(task, completed=done, total=total, fps=fps)

    previous = _install_sigint(cancel)
    try:
        with progress, runtime:
            summary = runtime.run_job(
                source, model, out_video=out, events_path=events, max_fps=max_fps,
                every=every, on_progress=on_progress, cancel=cancel, timeout=duration,
                start_frame=start_frame,
            )
    finally:
        _restore_sigint(previous)
    _print_summary(summary)
    if summary.error:
        print_error(summary.error)
        raise typer.Exit(1)
    if cancel.is_set():
        err_console.print("interrupted: outputs written so far are kept")
        raise typer.Exit(130)


def _install_sigint(cancel: threading.Event) -> Any:
    """First Ctrl-C asks the job to stop cleanly; a second one interrupts for real."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        err_console.print("stopping... (Ctrl-C again to abort)")

    return signal.signal(signal.SIGINT, handler)


def _restore_sigint(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def _print_summary(summary: Any) -> None:
    from rich.table import Table

    table = Table(title="aisp run", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    total = f" of {summary.frames_total}" if summary.frames_total is not None else ""
    table.add_row("frames", f"{summary.frames}{total}")
    table.add_row("detections", str(summary.detections))
    table.add_row("FPS", f"{summary.fps:.1f}")
    table.add_row("latency p50 / p99", f"{summary.latency_p50_ms:.1f} / {summary.latency_p99_ms:.1f} ms")
    table.add_row("inference p50", f"{summary.inference_ms_p50:.1f} ms")
    table.add_row("drops", str(summary.drops))
    table.add_row("duration", f"{summary.duration_s:.2f} s")
    table.add_row("state", summary.state + (" (cancelled)" if summary.cancelled else ""))
    for name, path in summary.outputs.items():
        table.add_row(name, path)
    console.print(table)
