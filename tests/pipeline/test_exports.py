from __future__ import annotations

import aisp
import aisp.pipeline as pipeline


def test_public_names_resolve() -> None:
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None, name
    assert set(pipeline.__all__) >= {
        "Frame", "FrameResult", "open_source", "Source", "Engine", "Stream", "StreamSpec", "Pipeline",
        "run_job", "JobSummary", "Sink", "JsonlSink", "VideoSink", "MJPEGSink", "LatestResultSink",
        "CallbackSink", "ListSink", "EventSink", "SummaryWriter", "StreamStats", "StreamMeter",
        "LatencySummary", "Loader",
    }
    assert aisp.Pipeline is pipeline.Pipeline
