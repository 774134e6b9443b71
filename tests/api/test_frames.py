"""POST /api/frames/process: results, annotation, uploads, and every kind of bad input."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.api.conftest import Harness, assert_error, encode, test_image
from tests.api.test_imageinfo import big_png

URL = "/api/frames/process"


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_raw_body(api: Harness, ext: str) -> None:
    ctype = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}[ext]
    r = api.client.post(
        f"{URL}?models=fake", content=encode(test_image(), ext), headers={"Content-Type": ctype}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"], body["format"]) == (
        320,
        240,
        ext.strip(".").replace("jpg", "jpeg"),
    )
    assert body["models"]["fake"]["model"] == "fake" and "fake" in body["inference_ms"]


def test_multipart_upload(api: Harness) -> None:
    files = {"file": ("x.png", encode(test_image(), ".png"), "image/png")}
    r = api.client.post(f"{URL}?models=fake", files=files)
    assert r.status_code == 200, r.text
    assert r.json()["width"] == 320


def test_multipart_without_file_field(api: Harness) -> None:
    r = api.client.post(f"{URL}?models=fake", files={"other": ("x.png", b"123", "image/png")})
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert err["details"]["field"] == "file"


def test_annotate_returns_jpeg(api: Harness) -> None:
    import cv2
    import numpy as np

    r = api.client.post(
        f"{URL}?models=fake&annotate=true",
        content=encode(test_image()),
        headers={"Content-Type": "image/jpeg"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (240, 320, 3)


def test_face_detection_real_model(api: Harness) -> None:
    import cv2
    import skimage.data

    img = cv2.cvtColor(cv2.resize(skimage.data.astronaut(), (640, 480)), cv2.COLOR_RGB2BGR)
    r = api.client.post(
        f"{URL}?models=face_detection", content=encode(img), headers={"Content-Type": "image/jpeg"}
    )
    assert r.status_code == 200, r.text
    result = r.json()["models"]["face_detection"]
    assert result["num_detections"] >= 1
    assert (
        'aisp_inference_seconds_count{model="face_detection",origin="api"}' in api.client.get("/metrics").text
    )


@pytest.mark.parametrize(
    ("content", "ctype", "status", "name"),
    [
        (b"", "image/jpeg", 400, "VALIDATION_ERROR"),
        (bytes(range(256)) * 8, "application/octet-stream", 415, "UNSUPPORTED_MEDIA"),
        (b"<html>hello</html>", "text/html", 415, "UNSUPPORTED_MEDIA"),
    ],
)
def test_bad_bodies(api: Harness, content: bytes, ctype: str, status: int, name: str) -> None:
    assert_error(
        api.client.post(f"{URL}?models=fake", content=content, headers={"Content-Type": ctype}), status, name
    )


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_image(api: Harness, ext: str) -> None:
    data = encode(test_image(), ext)
    err = assert_error(
        api.client.post(f"{URL}?models=fake", content=data[: len(data) * 2 // 3]), 400, "VALIDATION_ERROR"
    )
    assert "truncated" in err["message"] or "damaged" in err["message"]


def test_hundred_megapixel_png_refused_before_decoding(api: Harness) -> None:
    err = assert_error(
        api.client.post(
            f"{URL}?models=fake", content=big_png(10_000, 10_000), headers={"Content-Type": "image/png"}
        ),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert err["details"]["actual"] == 100_000_000 and "max_pixels" in err["message"]
    assert api.client.get("/health").status_code == 200


def test_unknown_or_missing_model(api: Harness) -> None:
    err = assert_error(
        api.client.post(f"{URL}?models=fake,nope", content=encode(test_image())), 404, "NOT_FOUND"
    )
    assert "nope" in err["message"] and "fake" in err["message"]
    err = assert_error(api.client.post(URL, content=encode(test_image())), 400, "VALIDATION_ERROR")
    assert err["details"]["field"] == "models"
    assert_error(api.client.post(f"{URL}?models=,", content=encode(test_image())), 400, "VALIDATION_ERROR")


def test_viewer_cannot_process(api: Harness) -> None:
    assert_error(
        api.client.post(f"{URL}?models=fake", content=encode(test_image()), headers=api.h(api.viewer)),
        403,
        "FORBIDDEN",
    )


class _Blocker:
    """A model whose inference waits for the test: proves the overload path without sleeps."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()


def test_saturated_pool_is_503_with_retry_after(api: Harness) -> None:
    from aisp.api.context import InferencePool
    from aisp.models import FakeModel, register_model, unregister_model

    gate = _Blocker()

    class BlockingModel(FakeModel):
        def infer(self, frame: Any) -> Any:
            gate.started.set()
            assert gate.release.wait(30)
            return super().infer(frame)

    register_model("blocker", lambda: BlockingModel("blocker"), backend="fake")
    old = api.ctx.inference
    api.ctx.inference = InferencePool(1, queue_factor=0, min_waiting=0)
    first: dict[str, Any] = {}
    try:
        t = threading.Thread(
            target=lambda: first.update(
                r=api.client.post(f"{URL}?models=blocker", content=encode(test_image()))
            )
        )
        t.start()
        assert gate.started.wait(30)
        r = api.client.post(f"{URL}?models=blocker", content=encode(test_image()))
        err = assert_error(r, 503, "OVERLOADED")
        assert r.headers["retry-after"] == "1" and err["details"]["capacity"] == 1
        gate.release.set()
        t.join(30)
        assert first["r"].status_code == 200
        assert api.client.post(f"{URL}?models=blocker", content=encode(test_image())).status_code == 200
    finally:
        gate.release.set()
        api.ctx.inference.shutdown()
        api.ctx.inference = old
        unregister_model("blocker")
        for key in api.ctx.cache.keys():  # the app (and its cache) outlive this test
            if key.name == "blocker":
                api.ctx.cache.invalidate(key)
