"""The dashboard in a real browser against a real ``aisp serve`` (demo stream, auth on).

Pages sign in through the page's own form (one admin page is shared by the module; the viewer
and wrong-key tests open their own). Tests wait on what the page shows (Playwright waits with
timeouts, never sleeps), check that no console error or page error happened so far, and write
screenshots to ``artifacts/screenshots/``. Runs under the page's real CSP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.conftest import SCREENSHOTS, Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

WAIT_MS = 30_000


@dataclass
class Session:
    page: Any
    errors: list[str] = field(default_factory=list)

    def shot(self, name: str, locator: Any = None) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        if locator is None:
            self.page.evaluate("window.scrollTo(0, 0)")  # a full-page shot starts at the top
        (locator or self.page).screenshot(path=str(path), **({} if locator else {"full_page": True}))
        return path


def _until(page: Any, expression: str, **kwargs: Any) -> None:
    """Wait until a JS expression is truthy. Passed as a function, because the page's CSP
    (script-src 'self') forbids the eval Playwright would use for a bare expression."""
    page.wait_for_function(f"() => ({expression})", **kwargs)


def _open(browser: Any, server: Server, key: str) -> Session:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=server.url)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    session = Session(page)

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            session.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: session.errors.append(f"pageerror: {exc}"))
    page.goto("/")
    page.locator("#login-key").fill(key)
    page.locator("#login-form button[type=submit]").click()
    page.locator("#app").wait_for(state="visible")
    _until(page, "document.querySelector('#conn').textContent === 'live'")
    return session


@pytest.fixture(scope="module")
def admin(browser: Any, server: Server) -> Iterator[Session]:
    """One signed-in admin page shared by the tests below (each asserts no console error so far)."""
    s = _open(browser, server, server.admin_key)
    yield s
    s.page.context.close()


def _points(page: Any) -> int:
    return int(page.locator("#hit-rate-chart").get_attribute("data-points") or 0)


def test_page_loads_live_with_no_console_errors(admin: Session, server: Server) -> None:
    page = admin.page
    assert page.locator("#role").text_content() == "admin"
    # The live feed fills the System section and the cache chart gains a point per second.
    _until(page, "/\\d/.test(document.querySelector('#sys-uptime').textContent)")
    start = _points(page)
    _until(
        page,
        f"Number(document.querySelector('#hit-rate-chart').dataset.points) >= {start + 3}"
    )
    assert _points(page) >= start + 3
    assert page.locator("#cluster").is_hidden()  # one machine: no Cluster section
    # The History section drew the store's snapshots (taken every second in this server).
    page.locator("#history-refresh").click()
    _until(
        page,
        "Number(document.querySelector('canvas[data-metric=rss]').dataset.points) > 0"
    )
    admin.shot("dashboard-admin")
    assert admin.errors == [], "\n".join(admin.errors)


# Draw the <img> into a small canvas and remember each distinct picture; true after three.
_FRAME_SIGNATURES = """(img) => {
  if (!img.complete || !img.naturalWidth) return false;
  const c = document.createElement('canvas'); c.width = 96; c.height = 54;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0, 96, 54);
  const d = g.getImageData(0, 0, 96, 54).data;
  let h = 2166136261;
  for (let i = 0; i < d.length; i += 4) {
    h = Math.imul(h ^ (d[i] + 3 * d[i + 1] + 7 * d[i + 2]), 16777619) >>> 0;
  }
  window.__frames = window.__frames || new Set();
  window.__frames.add(h);
  return window.__frames.size >= 3;
}"""


def test_demo_stream_view_shows_changing_frames(admin: Session) -> None:
    page = admin.page
    card = page.locator('.stream[data-stream-id="demo"]')
    card.wait_for(state="visible")
    _until(
        page,
        "document.querySelector('.stream[data-stream-id=\"demo\"]').dataset.state === 'running'"
    )
    img = card.locator("img.mjpeg")
    img.wait_for(state="visible")
    src = img.get_attribute("src") or ""
    assert "/api/streams/demo/mjpeg?ticket=tkt_" in src and "key=" not in src
    page.wait_for_function(_FRAME_SIGNATURES, arg=img.element_handle(), polling=100)
    first = admin.shot("demo-stream-1", img)
    # Two element screenshots taken apart differ too (the view is live, not a still).
    page.evaluate("window.__frames = new Set()")
    page.wait_for_function(_FRAME_SIGNATURES, arg=img.element_handle(), polling=100)
    second = admin.shot("demo-stream-2", img)
    assert first.read_bytes() != second.read_bytes()
    fps = card.locator(".out-fps").text_content()
    assert fps and fps != "–"
    admin.shot("streams-section", page.locator("#streams"))
    assert admin.errors == [], "\n".join(admin.errors)


MOTION_STATE = "document.querySelector('#models-table tr[data-model=\"motion\"] td.state').dataset.state"


def test_model_loads_from_the_ui(admin: Session) -> None:
    page = admin.page
    row = page.locator('#models-table tr[data-model="motion"]')
    row.wait_for(state="visible")
    state = row.locator("td.state")
    if state.text_content() == "loaded":  # another test loaded it: unload first, through the UI
        row.locator("button[data-action=unload]").click()
        _until(page, f"{MOTION_STATE} !== 'loaded'")
    row.locator("button[data-action=load]").click()
    _until(page, f"{MOTION_STATE} === 'loaded'")
    assert state.text_content() == "loaded"
    assert row.locator("button[data-action=unload]").is_visible()
    # The cache figures come from the live cache: a load time is shown for the loaded model.
    _until(
        page,
        "document.querySelector('#models-table tr[data-model=\"motion\"] td.load').textContent !== '–'"
    )
    admin.shot("cache-section", page.locator("#cache"))
    assert admin.errors == [], "\n".join(admin.errors)


def test_stream_is_added_stopped_started_and_removed_from_the_ui(admin: Session) -> None:
    page = admin.page
    form = page.locator("#stream-form")
    form.locator("input[name=source]").fill("demo")
    form.locator("select[name=live]").select_option("true")  # the demo clip, paced and endless
    form.locator("input[name=id]").fill("ui-added")
    form.locator("input[name=priority]").fill("-1")
    form.locator("input[name=max_fps]").fill("5")
    form.locator("input[type=checkbox][value=fake]").check()
    form.locator("button[type=submit]").click()
    card = page.locator('.stream[data-stream-id="ui-added"]')
    card.wait_for(state="visible")
    state = "document.querySelector('.stream[data-stream-id=\"ui-added\"]').dataset.state"
    _until(page, f"{state} === 'running'")
    assert "fake" in (card.locator(".meta").text_content() or "")
    card.locator("button[data-action=stop]").click()
    _until(page, f"{state} === 'stopped'")
    assert card.locator("img.mjpeg").is_hidden()  # no MJPEG connection held for a stopped stream
    card.locator("button[data-action=start]").click()
    _until(page, f"{state} === 'running'")
    page.once("dialog", lambda dialog: dialog.accept())
    card.locator("button[data-action=remove]").click()
    card.wait_for(state="detached")
    assert admin.errors == [], "\n".join(admin.errors)


def test_cache_stats_export_downloads(admin: Session) -> None:
    page = admin.page
    with page.expect_download() as info:
        page.locator("button[data-export=csv]").click()
    download = info.value
    assert download.suggested_filename == "aisp-cache-stats.csv"
    text = Path(download.path()).read_text()
    assert "hits" in text.splitlines()[0]
    with page.expect_download() as info:
        page.locator("button[data-export=prometheus]").click()
    assert "aisp_cache" in Path(info.value.path()).read_text()
    assert admin.errors == [], "\n".join(admin.errors)


def _write_video(path: Path, frames: int = 45) -> Path:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (160, 120))
    assert writer.isOpened(), "OpenCV could not open an mp4v writer"
    for i in range(frames):
        img = np.full((120, 160, 3), 30, np.uint8)
        x = 10 + i * 2
        img[40:80, x : x + 30] = (0, 200, 255)
        writer.write(img)
    writer.release()
    return path


def test_task_submitted_from_the_ui_reaches_100(admin: Session, server: Server) -> None:
    page = admin.page
    media = server.data_dir / "media"  # the API opens files only inside AISP_MEDIA_DIRS
    media.mkdir(exist_ok=True)
    video = _write_video(media / "clip.mp4")
    form = page.locator("#task-form")
    form.locator("input[name=source]").fill(str(video))
    form.locator("input[type=checkbox][value=motion]").check()
    before = page.locator("#tasks-table tr[data-task-id]").count()
    form.locator("button[type=submit]").click()
    _until(page, f"document.querySelectorAll('#tasks-table tr[data-task-id]').length > {before}")
    row = page.locator("#tasks-table tr[data-task-id]").first
    assert row.locator("td.source").get_attribute("title") == str(video)
    bar = row.locator(".progress")
    _until(
        page,
        "document.querySelector('#tasks-table tr[data-task-id] td.state').dataset.state === 'completed'",
        timeout=90_000,
    )
    _until(
        page,
        "document.querySelector('#tasks-table tr[data-task-id] .progress').dataset.progress === '100'"
    )
    assert bar.locator(".pct").text_content() == "100%"
    events = row.locator("button[data-dl][data-file$='events.jsonl']")
    with page.expect_download() as info:
        events.click()
    lines = Path(info.value.path()).read_text().splitlines()
    assert len(lines) >= 1 and lines[0].startswith("{")  # one JSON object per frame
    admin.shot("tasks-section", page.locator("#tasks"))
    assert admin.errors == [], "\n".join(admin.errors)


def test_viewer_key_hides_the_actions(browser: Any, server: Server) -> None:
    viewer = _open(browser, server, server.viewer_key)
    page = viewer.page
    try:
        assert page.locator("#role").text_content() == "viewer"
        page.locator('#models-table tr[data-model="motion"]').wait_for(state="visible")
        page.locator('.stream[data-stream-id="demo"]').wait_for(state="visible")
        for selector in ("#cache-actions", "#stream-form", "#task-form"):
            assert page.locator(selector).is_hidden(), f"{selector} is visible to a viewer"
        for selector in ("#models-table button[data-action]", ".stream button[data-action]",
                         "#tasks-table button[data-action]"):
            buttons = page.locator(selector)
            assert all(not buttons.nth(i).is_visible() for i in range(buttons.count())), selector
        # Read-only parts stay: the export buttons and the live figures.
        assert page.locator("button[data-export=csv]").is_visible()
        viewer.shot("dashboard-viewer")
        assert viewer.errors == [], "\n".join(viewer.errors)
        # Revoking the key (as an admin, through the API) signs the open page out.
        _revoke(server, "dashboard-test-viewer")
        page.locator("#login").wait_for(state="visible")
        assert "no longer accepts" in (page.locator("#login-error").text_content() or "")
        assert page.evaluate("localStorage.getItem('aisp.apiKey')") is None
    finally:
        page.context.close()


def _revoke(server: Server, name: str) -> None:
    import httpx

    headers = {"X-API-Key": server.admin_key}
    keys = httpx.get(server.url + "/api/auth/keys", headers=headers, timeout=10).json()["keys"]
    key_id = next(k["id"] for k in keys if k["name"] == name)
    r = httpx.delete(f"{server.url}/api/auth/keys/{key_id}", headers=headers, timeout=10)
    assert r.status_code == 200, r.text


def test_wrong_key_is_refused_with_a_message(browser: Any, server: Server) -> None:
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto("/")
        page.locator("#login-key").fill("aisp_not_a_real_key")
        page.locator("#login-form button[type=submit]").click()
        error = page.locator("#login-error")
        error.wait_for(state="visible")
        assert "refused" in (error.text_content() or "")
        assert page.locator("#app").is_hidden()
        assert page.evaluate("localStorage.getItem('aisp.apiKey')") is None
        page.screenshot(path=str(SCREENSHOTS / "login-refused.png"))
    finally:
        context.close()


def test_zones_are_drawn_over_the_view_and_an_admin_draws_a_new_one(admin: Session, server: Server) -> None:
    import httpx

    headers = {"X-API-Key": server.admin_key}
    body = {"id": "zoned", "source": "demo", "live": True, "models": ["fake"], "max_fps": 5,
            "zones": [{"name": "porch", "polygon": [[0.1, 0.1], [0.6, 0.1], [0.6, 0.6]], "relative": True}],
            "lines": [{"name": "gate", "start": [0, 0.8], "end": [1, 0.8], "relative": True}]}
    assert httpx.post(server.url + "/api/streams", json=body, headers=headers, timeout=30).status_code == 201
    page = admin.page
    card = page.locator('.stream[data-stream-id="zoned"]')
    card.locator('svg.zones-overlay polygon[data-zone="porch"]').wait_for(state="attached")
    card.locator('svg.zones-overlay line[data-line="gate"]').wait_for(state="attached")
    _until(page, "document.querySelector('.stream[data-stream-id=\"zoned\"] .zones-counts')"
           ".textContent.includes('gate: in')")
    card.locator("button.zones-draw").click()
    view = card.locator("svg.zones-overlay")
    box = view.bounding_box()
    assert box is not None
    for fx, fy in ((0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7)):
        view.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
    page.once("dialog", lambda dialog: dialog.accept("drawn"))
    card.locator("button.zones-save").click()
    card.locator('svg.zones-overlay polygon[data-zone="drawn"]').wait_for(state="attached")
    spec = httpx.get(server.url + "/api/streams/zoned", headers=headers, timeout=30).json()
    drawn = next(z for z in spec["zones"] if z["name"] == "drawn")
    assert drawn["relative"] is True and len(drawn["polygon"]) == 4
    assert [z["name"] for z in spec["zones"]] == ["porch", "drawn"] and spec["track"] is True
    admin.shot("zones", card)
    assert httpx.delete(server.url + "/api/streams/zoned", headers=headers, timeout=30).status_code == 204
    card.wait_for(state="detached")
    assert admin.errors == [], "\n".join(admin.errors)


def test_server_stops_promptly_with_the_page_open(admin: Session, server: Server) -> None:
    """Runs last: SIGTERM with the live feed and an MJPEG view open neither hangs nor errors.

    The live feed is a WebSocket because uvicorn closes those on shutdown; the page then shows
    that it lost the server and retries.
    """
    import signal
    import subprocess

    page = admin.page
    page.locator('.stream[data-stream-id="demo"] img.mjpeg').wait_for(state="visible")
    assert page.locator("#conn").text_content() == "live"
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(timeout=server_drain_budget())
    except subprocess.TimeoutExpired:
        pytest.fail(f"aisp serve still running after SIGTERM with the dashboard open\n{server.log_tail()}")
    assert code == 0, server.log_tail()
    _until(page, "['offline', 'connecting'].includes(document.querySelector('#conn').textContent)")


def server_drain_budget() -> float:
    """The server's drain timeout (default 10 s) plus room for the interpreter to exit."""
    from aisp.settings import Settings

    return float(Settings.model_fields["drain_timeout_seconds"].default) + 10.0
