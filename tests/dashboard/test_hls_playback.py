"""HLS in the dashboard, in Chromium, under the page's real CSP: the vendored hls.js plays the demo
stream (the <video>'s currentTime advances), with the key sent as a header, and the card goes
back to MJPEG on request."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.conftest import SCREENSHOTS, Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

WAIT_MS = 45_000
VENDOR = Path(__file__).resolve().parents[2] / "src" / "aisp" / "api" / "static" / "vendor"
#: hls.js 1.6.15, dist/hls.min.js from `npm pack hls.js@1.6.15` (see static/vendor/README.md)
HLS_JS_SHA256 = "413a83e2bb0c77ed0bf0be105d539d17ef45dfd984a0b13ecd3b14a901383938"


def test_vendored_hls_js_is_the_pinned_release() -> None:
    assert hashlib.sha256((VENDOR / "hls.min.js").read_bytes()).hexdigest() == HLS_JS_SHA256
    assert "Apache License" in (VENDOR / "hls.js.LICENSE").read_text()
    assert "1.6.15" in (VENDOR / "README.md").read_text()


def _until(page: Any, expression: str, **kwargs: Any) -> Any:
    """Wait for a JS expression (as a function: the CSP forbids eval) to be truthy."""
    return page.wait_for_function(f"() => ({expression})", **kwargs)


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[tuple[Any, list[str], list[str]]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=server.url)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    urls: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("request", lambda r: urls.append(r.url))
    page.goto("/")
    page.locator("#login-key").fill(server.admin_key)
    page.locator("#login-form button[type=submit]").click()
    page.locator("#app").wait_for(state="visible")
    try:
        yield page, errors, urls
    finally:
        context.close()


def test_hls_plays_in_the_dashboard_and_falls_back_to_mjpeg(page: Any, server: Server) -> None:
    p, errors, urls = page
    card = p.locator('.stream[data-stream-id="demo"]')
    card.locator("img.mjpeg").wait_for(state="visible")
    card.locator(".hls-toggle").click()  # the admin turns HLS on for the demo stream and plays it
    video = card.locator("video.hls")
    video.wait_for(state="visible")
    now = "document.querySelector('.stream[data-stream-id=\"demo\"] video.hls').currentTime"
    _until(p, f"{now} > 1.0")
    first = video.evaluate("v => v.currentTime")
    _until(p, f"{now} > {first} + 1")  # and it keeps playing
    size = video.evaluate("v => [v.videoWidth, v.videoHeight]")
    assert size == [640, 480]
    assert card.locator("img.mjpeg").is_hidden()
    video.screenshot(path=str(SCREENSHOTS / "hls-playback.png"))
    hls_urls = [u for u in urls if "/hls/" in u]
    assert any(u.endswith("/hls/index.m3u8") for u in hls_urls) and any(u.endswith(".ts") for u in hls_urls)
    assert not any("key=" in u for u in hls_urls)  # the key went in a header
    assert not errors, errors
    card.locator(".hls-toggle").click()  # back to MJPEG
    card.locator("img.mjpeg").wait_for(state="visible")
    assert video.is_hidden()
    assert not errors, errors
