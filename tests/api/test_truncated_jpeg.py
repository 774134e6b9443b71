"""A truncated JPEG closed with ``FF D9`` is refused, not decoded half grey (issue 13, item 11)."""

from __future__ import annotations

import pytest

from tests.api.conftest import Harness, assert_error

URL = "/api/frames/process"


def _astronaut_jpeg() -> bytes:
    import cv2
    import skimage.data

    bgr = cv2.cvtColor(cv2.resize(skimage.data.astronaut(), (640, 480)), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def _truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)] + b"\xff\xd9"


def test_opencv_alone_would_accept_it() -> None:
    """The premise: the file passes the header checks and OpenCV decodes it without an error,
    into an image whose lower part is flat grey."""
    import cv2
    import numpy as np

    from aisp.api.imageinfo import probe_image

    bad = _truncated(_astronaut_jpeg(), 0.5)
    assert probe_image(bad).complete  # ends with EOI: the old check passed it
    img = cv2.imdecode(np.frombuffer(bad, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (480, 640, 3)
    assert float(img[-40:].std()) < 1.0  # the bottom rows are one grey


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("multipart", [False, True])
def test_truncated_jpeg_is_a_400_naming_the_file_field(api: Harness, keep: float, multipart: bool) -> None:
    bad = _truncated(_astronaut_jpeg(), keep)
    if multipart:  # through the route
        r = api.client.post(URL, params={"models": "fake"}, files={"file": ("a.jpg", bad, "image/jpeg")})
    else:  # through the fast path
        headers = {"Content-Type": "image/jpeg"}
        r = api.client.post(URL, params={"models": "fake"}, content=bad, headers=headers)
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert err["details"]["field"] == "file"
    assert "truncated or corrupt" in err["message"] and "premature end" in err["message"].lower()
    assert api.client.get("/health").status_code == 200


def test_annotate_and_reduced_decode_refuse_it_too(api: Harness) -> None:
    bad = _truncated(_astronaut_jpeg(), 0.6)
    for query in ({"annotate": "true"}, {"reduced_decode": "true"}):
        r = api.client.post(URL, params={"models": "face_detection", **query}, content=bad)
        assert_error(r, 400, "VALIDATION_ERROR")


def test_the_whole_file_still_decodes(api: Harness) -> None:
    good = _astronaut_jpeg()
    r = api.client.post(URL, params={"models": "fake"}, content=good)
    assert r.status_code == 200, r.text
    # trailing bytes after EOI, or fill bytes, are not data loss
    r = api.client.post(URL, params={"models": "fake"}, content=good + b"\x00\x00")
    assert r.status_code == 200, r.text


def test_a_harmless_libjpeg_warning_is_tolerated() -> None:
    """Extraneous bytes before a marker (written by some cameras) warn but lose no data: decoded,
    equal to OpenCV's decode."""
    import cv2
    import numpy as np
    import simplejpeg

    from aisp.api.decode import decode_rgb, is_data_loss
    from aisp.api.imageinfo import probe_image

    good = _astronaut_jpeg()
    sof = good.index(b"\xff\xc0")
    end = sof + 2 + int.from_bytes(good[sof + 2 : sof + 4], "big")
    odd = good[:end] + b"\x00\x00\x00" + good[end:]  # stray bytes between two header segments
    with pytest.raises(ValueError, match="extraneous bytes"):
        simplejpeg.decode_jpeg(odd, colorspace="RGB", strict=True)  # strict mode alone would refuse it
    out = decode_rgb(odd, probe_image(odd))
    want = cv2.cvtColor(cv2.imdecode(np.frombuffer(good, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert out.shape == want.shape and np.abs(out.astype(int) - want).max() <= 1
    assert is_data_loss("Corrupt JPEG data: premature end of data segment")
    assert is_data_loss("Premature end of JPEG file")
    assert not is_data_loss("Corrupt JPEG data: 3 extraneous bytes before marker 0xd9")
