"""``/api/tasks``: batch jobs over a video file, folder or URL: submit, list, inspect (progress
%, FPS, ETA, result summary), cancel, retry (resumes from the saved progress), downloads, delete.

A task's source must pass the source policy (:mod:`aisp.api.sources`): 403 ``SOURCE_NOT_ALLOWED``
before anything is queued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path as FsPath
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import FileResponse, Response, StreamingResponse

from aisp.api import modelops
from aisp.api.context import AppContext
from aisp.api.schemas import TaskCreate, TaskListResponse, TaskOut, error_responses
from aisp.api.sources import check_source
from aisp.api.task_runner import EVENTS, VIDEO, task_view
from aisp.errors import NotFoundError

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

_ID = Path(description="Task id.", max_length=64)


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def _view(ctx: AppContext, rec: Any) -> TaskOut:
    runner = ctx.tasks
    task_dir = runner.task_dir(rec.id) if runner is not None else None
    return TaskOut(**task_view(rec, task_dir))


@router.post(
    "",
    response_model=TaskOut,
    status_code=status.HTTP_201_CREATED,
    summary="Submit a batch job (queued, then run in the background).",
    responses=error_responses(403, 404),
)
async def create_task(request: Request, body: TaskCreate) -> TaskOut:
    ctx = _ctx(request)
    runner = ctx.require_tasks()
    await anyio.to_thread.run_sync(check_source, ctx, body.source)  # resolves names: off the loop
    models = await anyio.to_thread.run_sync(modelops.check_models, body.models,
                                            ctx.settings.resolved_model_dir)
    params = {"max_fps": body.max_fps, "every": body.every, "video": body.video}
    rec = await anyio.to_thread.run_sync(lambda: runner.submit(body.source, models, params))
    return _view(ctx, rec)


@router.get("", response_model=TaskListResponse, summary="Tasks, newest first.")
async def list_tasks(
    request: Request,
    state: str | None = Query(
        None,
        description="Only tasks in this state.",
        pattern="^(queued|running|completed|failed|cancelled|interrupted)$",
    ),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> TaskListResponse:
    ctx = _ctx(request)
    store = ctx.require_store()
    recs = await anyio.to_thread.run_sync(lambda: store.tasks.list(state=state, limit=limit, offset=offset))
    return TaskListResponse(tasks=[_view(ctx, r) for r in recs])


@router.get(
    "/{task_id}",
    response_model=TaskOut,
    summary="State, progress %, FPS, ETA and result summary.",
    responses=error_responses(404),
)
async def get_task(request: Request, task_id: str = _ID) -> TaskOut:
    ctx = _ctx(request)
    store = ctx.require_store()
    return _view(ctx, await anyio.to_thread.run_sync(store.tasks.get, task_id))


@router.post(
    "/{task_id}/cancel",
    response_model=TaskOut,
    summary="Cancel a queued or running task.",
    responses=error_responses(404, 409),
)
async def cancel_task(request: Request, task_id: str = _ID) -> TaskOut:
    ctx = _ctx(request)
    runner = ctx.require_tasks()
    return _view(ctx, await anyio.to_thread.run_sync(runner.cancel, task_id))


@router.post(
    "/{task_id}/retry",
    response_model=TaskOut,
    summary="Queue a failed, cancelled or interrupted task again; it resumes from its saved progress.",
    responses=error_responses(404, 409),
)
async def retry_task(request: Request, task_id: str = _ID) -> TaskOut:
    ctx = _ctx(request)
    runner = ctx.require_tasks()
    return _view(ctx, await anyio.to_thread.run_sync(runner.retry, task_id))


@router.delete(
    "/{task_id}",
    status_code=204,
    summary="Delete a task: cancel it if it runs, then remove its outputs and its record.",
    responses=error_responses(404, 503),
)
async def delete_task(request: Request, task_id: str = _ID) -> Response:
    ctx = _ctx(request)
    runner = ctx.require_tasks()
    await anyio.to_thread.run_sync(runner.delete, task_id)
    return Response(status_code=204)


def _output(ctx: AppContext, task_id: str, name: str) -> FsPath:
    store = ctx.require_store()
    store.tasks.get(task_id)  # 404 for an unknown task
    runner = ctx.require_tasks()
    path = runner.task_dir(task_id) / name
    if not path.is_file():
        raise NotFoundError(f"task '{task_id}' has no {name} (yet)", kind="task_output", key=name)
    return path


def _event_files(ctx: AppContext, task_id: str) -> list[FsPath]:
    """``events.jsonl`` and the running attempt's part, in frame order (404 when there is none)."""
    ctx.require_store().tasks.get(task_id)  # 404 for an unknown task
    task_dir = ctx.require_tasks().task_dir(task_id)
    files = [p for p in [task_dir / EVENTS, *sorted(task_dir.glob("events.part-*.jsonl"))] if p.is_file()]
    if not files:
        raise NotFoundError(f"task '{task_id}' has no events (yet)", kind="task_output", key=EVENTS)
    return files


def _complete_lines(files: list[FsPath]) -> Iterator[bytes]:
    for path in files:
        try:
            with open(path, "rb") as f:
                for line in f:
                    if line.endswith(b"\n"):  # a line still being written is left for the next download
                        yield line
        except FileNotFoundError:  # folded into events.jsonl meanwhile
            continue


@router.get(
    "/{task_id}/events",
    summary="Download the per-frame results (JSON Lines); while a task runs, the frames so far.",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **error_responses(404)},
)
async def download_events(request: Request, task_id: str = _ID) -> StreamingResponse:
    files = await anyio.to_thread.run_sync(_event_files, _ctx(request), task_id)
    return StreamingResponse(
        _complete_lines(files),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{task_id}-events.jsonl"'},
    )


@router.get(
    "/{task_id}/video",
    summary="Download the annotated video (MP4).",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, **error_responses(404)},
)
async def download_video(request: Request, task_id: str = _ID) -> FileResponse:
    path = await anyio.to_thread.run_sync(_output, _ctx(request), task_id, VIDEO)
    return FileResponse(path, media_type="video/mp4", filename=f"{task_id}-annotated.mp4")
