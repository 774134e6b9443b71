"""``GET /api/events/{id}/clip``: the MP4 clip an event recorded (see docs/outputs.md).

404 when the event recorded no clip (its stream has no ``record`` rule that selects it, or the
clip was deleted by retention); 409 with ``Retry-After`` while the clip is still being written.
Served with range support, so a browser ``<video>`` can seek in it.
"""

from __future__ import annotations

import math

import anyio.to_thread
from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse

from aisp.api.schemas import error_responses
from aisp.api.video_outputs import VideoOutputs
from aisp.errors import ConflictError, NotFoundError

router = APIRouter(prefix="/api/events", tags=["video out"])

_EVENT_ID = Path(description="Event id.", pattern=r"^[A-Za-z0-9_-]{1,64}$")


@router.get(
    "/{event_id}/clip",
    summary="The event's MP4 clip (pre-roll before the event to post-roll after the last merged one).",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, **error_responses(404, 409)},
)
async def event_clip(request: Request, event_id: str = _EVENT_ID) -> FileResponse:
    library = await anyio.to_thread.run_sync(VideoOutputs.of(request.app.state.ctx).library)
    rec = library.for_event(event_id)
    if rec is None:
        raise NotFoundError(f"event '{event_id}' has no clip (no record rule selected it, or retention "
                            "deleted it)", kind="clip", key=event_id)
    if rec.state != "ready":
        retry = max(1, math.ceil(request.app.state.ctx.settings.video_keyframe_seconds))
        raise ConflictError(f"the clip of event '{event_id}' is still being recorded; retry in a few seconds",
                            details={"event_id": event_id, "clip_id": rec.id, "retry_after": retry})
    path = library.path(rec)
    if not path.is_file():
        raise NotFoundError(f"the clip of event '{event_id}' is gone from disk", kind="clip", key=event_id)
    return FileResponse(path, media_type="video/mp4", filename=f"clip-{event_id}.mp4",
                        headers={"Cache-Control": "private, max-age=3600"})
