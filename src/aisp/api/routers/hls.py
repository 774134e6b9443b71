"""HLS of a stream's annotated video: ``/api/streams/{id}/hls/index.m3u8`` and its segments.

Auth is the same as every read route: ``X-API-Key`` or ``Authorization: Bearer`` (a viewer key
is enough); hls.js sends it on each request through ``xhrSetup``, so no key ever sits in a
playlist or segment URL. The first request starts the encoder; it stops after
``hls_idle_timeout_seconds`` without a request. ``POST .../hls/start|stop`` (admin) allows or
forbids HLS on the stream and is saved with its definition.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from aisp.api.routers.streams import _limiter
from aisp.api.schemas import StreamOut, error_responses
from aisp.api.stream_manager import StreamManager
from aisp.api.video_outputs import VideoOutputs
from aisp.errors import NotFoundError, OverloadedError

router = APIRouter(prefix="/api/streams", tags=["video out"])

_ID = Path(description="Stream id.", max_length=128)
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"


def _video(request: Request, stream_id: str):  # noqa: ANN202 - StreamVideo is imported lazily
    ctx = request.app.state.ctx
    StreamManager.of(ctx).get(stream_id)  # 404 for an unknown stream
    video = VideoOutputs.of(ctx).get(stream_id)
    if not video.hls_enabled:
        raise NotFoundError(
            f"HLS is off for stream '{stream_id}': create it with output.hls=true, or POST "
            f"/api/streams/{stream_id}/hls/start with an admin key", kind="hls", key=stream_id)
    return video


@router.get(
    "/{stream_id}/hls/index.m3u8",
    summary="The stream's live HLS playlist (MPEG-TS segments of H.264); starts encoding on first use.",
    response_class=Response,
    responses={200: {"content": {PLAYLIST_TYPE: {}}}, **error_responses(404, 503)},
)
async def playlist(request: Request, stream_id: str = _ID) -> Response:
    video = _video(request, stream_id)
    video.hls.touch()
    settings = request.app.state.ctx.settings
    wait_s = 3 * settings.video_keyframe_seconds + 2.0
    ready = await anyio.to_thread.run_sync(video.segmenter.wait_ready, wait_s, limiter=_limiter(request.app))
    text = video.segmenter.playlist(lambda seq: f"seg-{seq}.ts") if ready else None
    if text is None:
        raise OverloadedError(
            f"stream '{stream_id}' has no HLS segment yet (is it running and delivering frames?); "
            "retry shortly",
            retry_after=1, details={"stream_id": stream_id, "state": StreamManager.of(request.app.state.ctx)
                                    .get(stream_id).state})
    return Response(text, media_type=PLAYLIST_TYPE, headers={"Cache-Control": "no-store"})


@router.get(
    "/{stream_id}/hls/seg-{seq}.ts",
    summary="One HLS segment (MPEG-TS), while it is in the stream's segment ring.",
    response_class=Response,
    responses={200: {"content": {SEGMENT_TYPE: {}}}, **error_responses(404)},
)
async def segment(request: Request, stream_id: str = _ID,
                  seq: int = Path(ge=0, le=2**53, description="Media sequence number.")) -> Response:
    video = _video(request, stream_id)
    video.hls.touch()
    seg = video.segmenter.segment(seq)
    if seg is None:
        raise NotFoundError(f"HLS segment {seq} of stream '{stream_id}' is not in the ring (expired or not "
                            "yet written); reload the playlist", kind="hls_segment", key=str(seq))
    return Response(seg.data, media_type=SEGMENT_TYPE, headers={"Cache-Control": "private, max-age=60"})


@router.post(
    "/{stream_id}/hls/start",
    response_model=StreamOut,
    summary="Allow HLS on a stream and start encoding now (admin; saved with the stream).",
    responses=error_responses(404),
)
async def start_hls(request: Request, stream_id: str = _ID) -> StreamOut:
    mgr = StreamManager.of(request.app.state.ctx)
    return StreamOut(**await anyio.to_thread.run_sync(mgr.set_hls, stream_id, True))


@router.post(
    "/{stream_id}/hls/stop",
    response_model=StreamOut,
    summary="Stop HLS on a stream and forbid it until started again (admin; saved with the stream).",
    responses=error_responses(404),
)
async def stop_hls(request: Request, stream_id: str = _ID) -> StreamOut:
    mgr = StreamManager.of(request.app.state.ctx)
    return StreamOut(**await anyio.to_thread.run_sync(mgr.set_hls, stream_id, False))
