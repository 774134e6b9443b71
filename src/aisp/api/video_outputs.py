"""``VideoOutputs``: the API's side of video out (HLS, push, clips), one per app.

The stream manager asks it for each stream's extra sink (:meth:`sink_for`), which creates the
stream's :class:`~aisp.pipeline.video_out.StreamVideo` from the stream's ``output`` and ``record``
specs; the HLS and clip routes look streams and clips up here. Clip requests come from the
runtime's event bus (one subscriber, ``clips``, handing each event to its stream's recorder).

Checks of user input live here too: the push URL must pass the source policy
(``SourcePolicy.check_url`` with the push schemes) and ``record`` must parse as a
:class:`~aisp.pipeline.clips.ClipRule`.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from aisp.api.context import AppContext
from aisp.errors import NotFoundError, SourceNotAllowedError, ValidationError
from aisp.netpolicy import SourcePolicy, redact_url

if TYPE_CHECKING:  # the pipeline pulls numpy and PyAV: imported with the first stream
    from aisp.events import Event
    from aisp.pipeline.clip_index import ClipLibrary
    from aisp.pipeline.video_out import StreamVideo

__all__ = ["VideoOutputs", "check_output", "check_record"]

log = logging.getLogger("aisp.api")

_PUSH_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps")


def check_output(ctx: AppContext, output: Any) -> dict[str, Any] | None:
    """A stream's ``output`` spec, validated: ``{"hls": bool, "push": url | None}``."""
    if output is None:
        return None
    if not isinstance(output, dict):
        raise ValidationError("output must be an object", field="output", value=output,
                              expected='{"hls": bool, "push": url | null}')
    unknown = set(output) - {"hls", "push"}
    if unknown:
        raise ValidationError(f"output: unknown field(s) {sorted(unknown)}", field="output",
                              value=sorted(unknown), expected="hls, push")
    hls = output.get("hls", False)
    if not isinstance(hls, bool):
        raise ValidationError("output.hls must be true or false", field="output.hls", value=hls,
                              expected="a boolean")
    push = output.get("push")
    if push is not None:
        if not isinstance(push, str) or not push.strip() or len(push) > 2048:
            raise ValidationError("output.push must be a URL of at most 2048 characters",
                                  field="output.push", value=None, expected="rtsp:// or rtmp:// URL")
        push = push.strip()
        policy = SourcePolicy.from_settings(ctx.settings)
        try:
            policy.check_url(push, schemes=_PUSH_SCHEMES, setting_for_scheme="output.push")
        except SourceNotAllowedError as exc:
            raise SourceNotAllowedError(f"output.push ({redact_url(push)}): "
                                        f"{exc.message.removeprefix('source: ')}",
                                        setting=exc.setting) from None
        except ValidationError as exc:
            raise ValidationError(f"output.push ({redact_url(push)}): "
                                  f"{exc.message.removeprefix('source: ')}",
                                  field="output.push", expected="rtsp:// or rtmp:// URL") from None
    return {"hls": hls, "push": push}


def check_record(record: Any) -> dict[str, Any] | None:
    """A stream's ``record`` spec, validated and with its defaults filled in."""
    if record is None:
        return None
    from aisp.pipeline.clips import ClipRule

    return ClipRule.parse(record).to_dict()


def public_output(output: dict[str, Any] | None) -> dict[str, Any] | None:
    """``output`` as shown to users: the push URL's password hidden."""
    if not output:
        return output
    push = output.get("push")
    return {**output, "push": redact_url(push) if push else None}


class VideoOutputs:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._streams: dict[str, StreamVideo] = {}
        self._library: ClipLibrary | None = None
        self._subscribed = False

    @classmethod
    def of(cls, ctx: AppContext) -> VideoOutputs:
        mgr = getattr(ctx, "_video_outputs", None)
        if mgr is None:
            with ctx._lock:
                mgr = getattr(ctx, "_video_outputs", None)
                if mgr is None:
                    mgr = cls(ctx)
                    ctx._video_outputs = mgr  # type: ignore[attr-defined]
        return mgr

    # --- clips -------------------------------------------------------------------------------
    def library(self) -> ClipLibrary:
        with self._lock:
            if self._library is None:
                from aisp.pipeline.clip_index import ClipLibrary

                s = self.ctx.settings
                self._library = ClipLibrary(s.resolved_clip_dir, max_age_days=s.clip_retention_days,
                                            max_total_bytes=int(s.clip_max_total_mb * (1 << 20)))
            return self._library

    def _subscribe(self) -> None:
        with self._lock:
            if self._subscribed or self.ctx.runtime is None:
                return
            self._subscribed = True
        self.ctx.runtime.events.subscribe("clips", self._on_event, maxsize=1000)

    def _on_event(self, event: Event) -> None:
        with self._lock:
            video = self._streams.get(event.stream_id)
        if video is not None:
            video.on_event(event)

    # --- streams ---------------------------------------------------------------------------
    def sink_for(self, stream_id: str, spec: dict[str, Any]) -> Any:
        """The encode sink of ``stream_id`` (its :class:`StreamVideo` is made on first use)."""
        from aisp.pipeline.clips import ClipRule
        from aisp.pipeline.video_out import StreamVideo

        with self._lock:
            video = self._streams.get(stream_id)
        if video is None:
            output = spec.get("output") or {}
            record = spec.get("record")
            rule = ClipRule.parse(record) if record is not None else None
            video = StreamVideo(stream_id, self.ctx.settings, hls=bool(output.get("hls")),
                                push=output.get("push"),
                                push_display=redact_url(output["push"]) if output.get("push") else None,
                                record=rule,
                                library=self.library() if rule is not None else None,
                                clock=self.ctx.require_engine().clock)
            with self._lock:
                self._streams[stream_id] = video
            if rule is not None:
                self._subscribe()
            if output.get("push"):
                log.info("stream %s: pushing to %s", stream_id, redact_url(output["push"]))
        return video.sink()

    def get(self, stream_id: str) -> StreamVideo:
        with self._lock:
            video = self._streams.get(stream_id)
        if video is None:
            raise NotFoundError(f"stream '{stream_id}' not found", kind="stream", key=stream_id)
        return video

    def find(self, stream_id: str) -> StreamVideo | None:
        with self._lock:
            return self._streams.get(stream_id)

    def remove(self, stream_id: str) -> None:
        with self._lock:
            video = self._streams.pop(stream_id, None)
        if video is not None:
            video.close()

    def close(self) -> None:
        with self._lock:
            videos = list(self._streams.values())
            self._streams.clear()
            subscribed, self._subscribed = self._subscribed, False
        if subscribed and self.ctx.runtime is not None:
            self.ctx.runtime.events.unsubscribe("clips")
        for video in videos:
            video.close()
