"""The event sink (per-window detection summaries) with a fake writer and with the store's writer."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np
import pytest

import aisp.pipeline as pipeline
from aisp.errors import ValidationError
from aisp.models.results import Detections, ModelResult
from aisp.pipeline import EventSink
from aisp.pipeline.frame_types import Frame, FrameResult
from aisp.pipeline.sinks import Sink

SUMMARY_FIELDS = ["stream_id", "window_start", "window_end", "frames", "detections", "labels",
                  "max_confidence"]


class Collect:
    """A fake writer: keeps what it is handed (the mappings, and a view with attributes)."""

    def __init__(self, accept: bool = True) -> None:
        self.submitted: list[Mapping[str, object]] = []
        self.events: list[SimpleNamespace] = []
        self.accept = accept

    def submit(self, summary: Mapping[str, object], /) -> bool:
        self.submitted.append(summary)
        self.events.append(SimpleNamespace(**summary))
        return self.accept


IMG = np.zeros((4, 4, 3), np.uint8)


def fr(i: int, *results: ModelResult, stream: str = "cam") -> FrameResult:
    return FrameResult(Frame(stream, i, None, float(i), IMG), {r.model: r for r in results})


def boxes(model: str, confs, labels=None) -> ModelResult:
    n = len(confs)
    det = Detections(np.zeros((n, 4), np.float32), np.asarray(confs, np.float32),
                     np.arange(n, dtype=np.int32), None, labels)
    return ModelResult(model, 1.0, detections=det)


def test_is_a_pipeline_sink_that_needs_no_image():
    sink = EventSink(Collect(), window_seconds=1.0)
    assert isinstance(sink, Sink) and sink.needs_image is False
    assert pipeline.EventSink is EventSink and "EventSink" in pipeline.__all__


def test_the_store_no_longer_exports_it():
    import aisp.store

    assert not hasattr(aisp.store, "EventSink") and "EventSink" not in aisp.store.__all__


def test_hands_the_writer_a_plain_mapping_with_the_event_fields():
    out = Collect()
    sink = EventSink(out, window_seconds=2.0, stream_id="door", clock=lambda: 7.5)
    sink.write(fr(0, boxes("face", [0.5], ("face",)), stream="other"))
    sink.close()
    [summary] = out.submitted
    assert isinstance(summary, Mapping) and list(summary) == SUMMARY_FIELDS
    assert dict(summary) == {"stream_id": "door", "window_start": 6.0, "window_end": 8.0, "frames": 1,
                             "detections": 1, "labels": {"face": 1}, "max_confidence": 0.5}


def test_summarises_per_aligned_window():
    now = [10.2]
    out = Collect()
    sink = EventSink(out, window_seconds=1.0, clock=lambda: now[0])
    sink.open()
    sink.write(fr(0, boxes("face", [0.9, 0.5], ("face", "face"))))
    now[0] = 10.7
    sink.write(fr(1, boxes("face", [0.95], ("face",)), boxes("det", [0.3, 0.2])))
    sink.write(fr(2, ModelResult("seg", 2.0)))  # nothing detected
    assert out.events == []  # the window is still open
    now[0] = 11.1
    sink.write(fr(3, boxes("face", [0.4], ("face",))))
    assert len(out.events) == 1
    e = out.events[0]
    assert (e.stream_id, e.window_start, e.window_end, e.frames, e.detections) == ("cam", 10.0, 11.0, 3, 5)
    assert e.labels == {"face": 3, "det:0": 1, "det:1": 1}
    assert e.max_confidence == pytest.approx(0.95)
    now[0] = 15.0
    sink.close()
    sink.close()  # idempotent
    assert len(out.events) == 2
    assert (out.events[1].window_start, out.events[1].frames, out.events[1].detections) == (11.0, 1, 1)


def test_counts_refusals_and_uses_the_window_it_is_given(settings):
    out = Collect(accept=False)
    now = [0.0]
    sink = EventSink(out, window_seconds=settings.event_window_seconds, clock=lambda: now[0])
    assert sink.window_seconds == settings.event_window_seconds
    sink.write(fr(0))
    sink.flush()
    assert sink.emitted == 1 and sink.refused == 1 and out.events[0].detections == 0


def test_bad_arguments():
    with pytest.raises(ValidationError, match="event window"):
        EventSink(Collect(), window_seconds=0)
    with pytest.raises(ValidationError, match="event window"):
        EventSink(Collect(), window_seconds=True)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="submit"):
        EventSink(object(), window_seconds=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EventSink(Collect())  # type: ignore[call-arg]  # the window is always handed in


@pytest.fixture
def store(tmp_path, settings):
    from aisp.store import Store

    s = Store(f"sqlite:///{tmp_path / 'events.db'}", settings=settings, event_flush_interval=0.05).open()
    s.retention.stop()  # tests write rows with fixed timestamps; retention has its own tests
    yield s
    s.close()


def test_into_the_real_writer(store):
    # recent times: the store's retention worker deletes rows older than event_retention_hours
    t0 = math.floor(time.time())
    now = [t0]
    sink = EventSink(store.events, window_seconds=0.5, clock=lambda: now[0])
    for i in range(10):
        now[0] = t0 + i * 0.25
        sink.write(fr(i, boxes("face", [0.8], ("face",)), stream="s1"))
    sink.close()
    assert store.events.flush(10)
    rows = store.event_log.query(stream_id="s1")
    assert [r.frames for r in rows] == [2] * 5
    assert sum(r.detections for r in rows) == 10 and rows[0].labels == {"face": 2}
