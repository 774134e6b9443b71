"""``aisp remote ...``: use a running AISP server through :mod:`aisp.client`.

    aisp remote process photo.jpg --models face_detection [--out annotated.jpg] [--json]
    aisp remote models
    aisp remote streams
    aisp remote tasks submit /media/clip.mp4 --models face_detection --wait
    aisp remote tasks get <id> | cancel <id>

The server and key come from ``--url`` / ``--key`` or ``AISP_URL`` / ``AISP_API_KEY`` (prefer the
variable for the key: a command line is visible to other users of the machine). Errors are one
line on stderr and a non-zero exit (the root command turns :mod:`aisp.errors` into that).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aisp.cli._common import console

if TYPE_CHECKING:
    from aisp.client import Client

app = typer.Typer(help="Use a remote AISP server (the aisp.client API).", no_args_is_help=True)
tasks_app = typer.Typer(help="Batch tasks on the server.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")

_URL = typer.Option(None, "--url", envvar="AISP_URL", help="Server URL (default http://127.0.0.1:8000).",
                    show_envvar=True)
_KEY = typer.Option(None, "--key", envvar="AISP_API_KEY", help="API key (prefer the AISP_API_KEY variable).",
                    show_envvar=True, show_default=False)
_TIMEOUT = typer.Option(30.0, "--timeout", min=0.1, help="Seconds to wait for one answer.")
_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _client(url: str | None, key: str | None, timeout: float) -> Client:
    from aisp.client import Client

    return Client(url, key, timeout=timeout)


def _models(value: str) -> list[str]:
    return [m.strip() for m in value.split(",") if m.strip()]


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command("process")
def process(
    image: Path = typer.Argument(..., help="A JPEG, PNG or WebP file.", exists=True, dir_okay=False),
    models: str = typer.Option(..., "--models", "-m", help="Comma-separated model names."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the annotated JPEG here."),
    as_json: bool = _JSON,
    url: str | None = _URL,
    key: str | None = _KEY,
    timeout: float = _TIMEOUT,
) -> None:
    """Run models on one image on the server; print the results, or save the annotated image."""
    with _client(url, key, timeout) as client:
        if out is not None:
            frame = client.process(image, _models(models), annotate=True)
            out.write_bytes(frame.annotated or b"")
            ms = "" if frame.total_ms is None else f" ({frame.total_ms:.1f} ms on the server)"
            console.print(f"wrote {out}{ms}", highlight=False)
            return
        frame = client.process(image, _models(models))
    if as_json:
        _emit(frame.raw)
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{image.name}: {frame.width}x{frame.height}", title_justify="left")
    for col in ("model", "found", "ms", "best"):
        table.add_column(col, no_wrap=col != "best")
    for name, res in frame.results.items():
        best = ""
        if res.detections is not None and len(res.detections):
            i = int(res.detections.confidence.argmax())
            box = ", ".join(f"{v:.0f}" for v in res.detections.xyxy[i])
            label = res.detections.labels[i] if res.detections.labels else res.detections.class_id[i]
            best = f"{label} {res.detections.confidence[i]:.2f} [{box}]"
        elif res.classification is not None:
            best = f"{res.classification.label} {res.classification.confidence:.2f}"
        table.add_row(escape(name), str(res.num_detections), f"{res.inference_ms:.1f}", escape(best))
    console.print(table)


@app.command("models")
def models_cmd(
    as_json: bool = _JSON, url: str | None = _URL, key: str | None = _KEY, timeout: float = _TIMEOUT
) -> None:
    """The server's models and their status."""
    with _client(url, key, timeout) as client:
        infos = client.models.list()
    if as_json:
        _emit([i.to_dict() for i in infos])
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table("name", "backend", "status", "load", "instances", title="remote models",
                  title_justify="left")
    for i in infos:
        load = "-" if i.load_ms is None else f"{i.load_ms:.0f} ms"
        table.add_row(escape(i.name), i.backend, i.status, load, str(i.instances))
    console.print(table)


@app.command("streams")
def streams_cmd(
    as_json: bool = _JSON, url: str | None = _URL, key: str | None = _KEY, timeout: float = _TIMEOUT
) -> None:
    """The server's streams with state and FPS."""
    with _client(url, key, timeout) as client:
        streams = client.streams.list()
    if as_json:
        _emit([s.raw for s in streams])
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table("id", "state", "source", "models", "fps", "error", title="remote streams",
                  title_justify="left")
    for s in streams:
        fps = s.stats.get("processed_fps")
        table.add_row(escape(s.id), s.state, escape(s.source), escape(",".join(s.models)),
                      "-" if fps is None else f"{fps:.1f}", escape(s.last_error or ""))
    console.print(table)
    if not streams:
        console.print("no streams")


def _task_line(t: Any) -> str:
    total = "?" if t.frames_total is None else str(t.frames_total)
    return f"task {t.id}: {t.state}, {t.progress:.1f}% ({t.frames_done}/{total} frames)"


@tasks_app.command("submit")
def tasks_submit(
    source: str = typer.Argument(..., help="A video file, folder or glob on the server's disk, or a URL."),
    models: str = typer.Option(..., "--models", "-m", help="Comma-separated model names."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the task to finish, with a progress bar."),
    video: bool = typer.Option(True, "--video/--no-video", help="Also write an annotated MP4."),
    max_fps: float | None = typer.Option(None, "--max-fps", help="Process at most this many frames/s."),
    events_out: Path | None = typer.Option(None, "--events-out", help="With --wait: save events.jsonl here."),
    video_out: Path | None = typer.Option(None, "--video-out", help="With --wait: save the MP4 here."),
    url: str | None = _URL,
    key: str | None = _KEY,
    timeout: float = _TIMEOUT,
) -> None:
    """Submit a batch task; with --wait, follow it to the end (exit 1 unless it completed)."""
    with _client(url, key, timeout) as client:
        task = client.tasks.submit(source, _models(models), video=video, max_fps=max_fps)
        console.print(_task_line(task), highlight=False)
        if not wait:
            return
        final = _follow(client, task.id)
        console.print(_task_line(final), highlight=False)
        if final.state != "completed":
            from aisp.cli._common import print_error

            print_error(f"task {final.id} {final.state}: {final.error or 'no error message'}")
            raise typer.Exit(1)
        if events_out is not None:
            client.tasks.download_events(final.id, events_out)
            console.print(f"wrote {events_out}", highlight=False)
        if video_out is not None:
            client.tasks.download_video(final.id, video_out)
            console.print(f"wrote {video_out}", highlight=False)


def _follow(client: Client, task_id: str) -> Any:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[frames]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        row = bar.add_task(task_id, total=100.0, frames="")

        def update(t: Any) -> None:
            total = "?" if t.frames_total is None else t.frames_total
            bar.update(row, completed=t.progress, description=f"{t.id} {t.state}",
                       frames=f"{t.frames_done}/{total} frames")

        return client.tasks.wait(task_id, progress=update)


@tasks_app.command("get")
def tasks_get(
    task_id: str = typer.Argument(...), as_json: bool = _JSON, url: str | None = _URL, key: str | None = _KEY,
    timeout: float = _TIMEOUT,
) -> None:
    """One task's state and progress."""
    with _client(url, key, timeout) as client:
        task = client.tasks.get(task_id)
    if as_json:
        _emit(task.raw)
    else:
        console.print(_task_line(task), highlight=False)


@tasks_app.command("cancel")
def tasks_cancel(
    task_id: str = typer.Argument(...), url: str | None = _URL, key: str | None = _KEY,
    timeout: float = _TIMEOUT,
) -> None:
    """Cancel a queued or running task."""
    with _client(url, key, timeout) as client:
        console.print(_task_line(client.tasks.cancel(task_id)), highlight=False)
