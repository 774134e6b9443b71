"""``/docs`` in a real browser against a real ``aisp serve``: Swagger UI comes from this server
(the ``fastapi-offline`` package), renders every operation under the page's CSP, and the page
makes no request to any other host (issue 13, item 15). Outside requests are aborted and
recorded, so a CDN link or an outside validator badge fails the test instead of hanging it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.dashboard.conftest import SCREENSHOTS, Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

WAIT_MS = 30_000


@pytest.fixture
def docs_page(browser: Any, server: Server) -> Iterator[tuple[Any, list[str], list[str]]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    outside: list[str] = []
    errors: list[str] = []
    local = urlsplit(server.url).netloc

    def route(r: Any) -> None:
        parts = urlsplit(r.request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != local:
            outside.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    yield page, outside, errors
    context.close()


def test_docs_render_every_operation_offline_under_csp(
    docs_page: tuple[Any, list[str], list[str]], server: Server
) -> None:
    page, outside, errors = docs_page
    response = page.goto(server.url + "/docs")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    page.locator(".opblock").first.wait_for(state="visible")
    spec = httpx.get(server.url + "/openapi.json", timeout=10).json()
    methods = ("get", "post", "put", "delete", "patch")
    expected = sum(1 for ops in spec["paths"].values() for method in ops if method in methods)
    assert page.locator(".opblock").count() == expected
    assert page.locator(".opblock-summary-path[data-path='/api/frames/process']").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "docs.png"))
    assert outside == [], f"requests to other hosts: {outside}"
    assert errors == [], errors  # a CSP violation is a console error


def test_try_it_out_reaches_the_api(docs_page: tuple[Any, list[str], list[str]], server: Server) -> None:
    """The page's connect-src lets Swagger UI's "Try it out" call this server."""
    page, outside, errors = docs_page
    page.goto(server.url + "/docs")
    block = page.locator(".opblock", has=page.locator(".opblock-summary-path[data-path='/health']"))
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for(state="visible")
    assert status.inner_text().strip() == "200"
    assert outside == [] and errors == [], (outside, errors)


def test_docs_files_are_served_from_the_package_and_nothing_else(server: Server) -> None:
    from aisp.api.routers.docs import swagger_ui_dir

    r = httpx.get(server.url + "/docs/static/swagger-ui-bundle.js", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.content == (swagger_ui_dir() / "swagger-ui-bundle.js").read_bytes()
    for name in ("index.html", "..%2F..%2Fsettings.py", "redoc.standalone.js", "%2Fetc%2Fpasswd"):
        r = httpx.get(f"{server.url}/docs/static/{name}", timeout=10)
        assert r.status_code == 404 and r.json()["status"] == "error", name
