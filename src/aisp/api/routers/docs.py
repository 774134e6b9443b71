"""``/docs``: Swagger UI served from this server, so it works offline and under a strict CSP.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script; neither
works on a machine without internet access or under ``script-src 'self'``. Here the page is a
small HTML file whose scripts and styles all come from this server:

* Swagger UI 5 (it reads OpenAPI 3.1, which FastAPI writes) from the ``fastapi-offline`` package,
  which ships Swagger UI's release files and nothing we run (pinned in ``pyproject.toml``), under
  ``/docs/static/<file>``, only the files the page uses (an allow-list: no path from the request
  reaches the file system);
* its start-up script from ``api/static/swagger-init.js`` (no inline script).

The page, like the dashboard, may load and connect to this server only (:data:`DOCS_CSP`). The
routes are open (no key), like ``/openapi.json``: the API's description is not a secret, and
"Try it out" sends the key the user types into "Authorize". ReDoc is not served.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from aisp.errors import NotFoundError

__all__ = ["router", "DOCS_CSP", "swagger_ui_dir"]

_OWN = Path(__file__).resolve().parent.parent / "static"
#: The page may load and connect to this server only; images may be data: URIs (Swagger UI's icons).
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'none'"
)
_HEADERS = {
    "Content-Security-Policy": DOCS_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}


def swagger_ui_dir() -> Path:
    """The directory of Swagger UI's files in the installed ``fastapi-offline`` package (found
    without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or spec.origin is None:  # pragma: no cover - a core dependency
        raise NotFoundError("Swagger UI is not installed (pip install fastapi-offline)", kind="file")
    return Path(spec.origin).parent / "static"

router = APIRouter(include_in_schema=False)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API docs</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/static/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-init.js"></script>
</body>
</html>
"""


@router.get("/docs")
async def docs_page(request: Request) -> HTMLResponse:
    app = request.app
    page = _PAGE.format(title=html.escape(app.title), openapi=html.escape(app.openapi_url or "/openapi.json"))
    return HTMLResponse(page, headers=_HEADERS)


@router.get("/docs/static/{name}")
async def docs_file(name: str) -> FileResponse:
    if name == "swagger-init.js":
        path, media_type = _OWN / name, "text/javascript; charset=utf-8"
    elif name in _FILES:
        path, media_type = swagger_ui_dir() / name, _FILES[name]
    else:
        raise NotFoundError(f"no docs file {name!r}", kind="file", key=name)
    return FileResponse(path, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})
