"""The pipeline with the real MediaPipe face detector on the demo source (known boxes)."""

from __future__ import annotations

import numpy as np
import pytest

from aisp.cache.keys import ModelKey
from aisp.pipeline import Engine, ListSink, StreamSpec
from aisp.pipeline.demo import DemoSource
from tests.pipeline.helpers import RegistryLoader

pytest.importorskip("mediapipe")


def iou(a, b) -> float:
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    return inter / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter)


@pytest.mark.parametrize("model", ["face_detection", "face_detection_full"])
def test_face_detection_finds_the_demo_face_in_every_frame(settings, model) -> None:
    models = RegistryLoader()
    engine = Engine(settings, models, workers=2, monitor_interval=None)
    sink = ListSink(needs_image=True)
    stream = engine.add_stream(StreamSpec("demo", DemoSource(frames=24), [model]), [sink], start=True)
    assert stream.wait(120)
    assert engine.shutdown(60)
    assert stream.state == "stopped", stream.last_error
    assert [r.frame.index for r in sink.results] == list(range(24))
    for r in sink.results:
        det = r.results[model].detections
        assert det is not None and len(det) >= 1, f"no face in frame {r.frame.index}"
        truth = DemoSource.boxes_for(r.frame.index)[0]
        assert max(iou(box, truth) for box in det.xyxy.tolist()) > 0.5
        assert not np.array_equal(r.annotated, r.frame.image)  # boxes were drawn
    # MediaPipe graphs are not thread-safe: one instance per worker, from the cache
    names = set(models.cache.keys())
    assert ModelKey(model, "w0") in names
    models.close()
