"""`import aisp` and `aisp --help` must stay light: no heavy module may be imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "cv2", "mediapipe", "onnxruntime", "av", "fastapi", "sqlalchemy")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _heavy_after(body: str) -> list[str]:
    code = PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_aisp_is_light() -> None:
    assert _heavy_after("import aisp") == []


def test_cli_help_is_light() -> None:
    body = "from aisp.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    assert _heavy_after(body) == []


@pytest.mark.parametrize("sub", ["run", "serve", "models", "keys", "db", "bench", "remote"])
def test_subcommand_help_is_light(sub: str) -> None:
    body = (
        "import io, contextlib\nfrom aisp.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        main([{sub!r}, '--help'])\n    except SystemExit:\n        pass\n"
    )
    assert _heavy_after(body) == []


def test_public_names_resolve_lazily() -> None:
    body = "import aisp\nassert not aisp._lazy.components.is_resolved('ModelCache')"
    assert _heavy_after(body) == []


def test_the_app_module_imports_no_model_or_database_library() -> None:
    """``/health`` answers before the runtime is built: building the app must not import what the
    runtime needs (the start-up thread does)."""
    body = (
        "from aisp.api.app import create_app\n"
        "from aisp.settings import load_settings\n"
        "import tempfile\n"
        "create_app(load_settings(environ={}, data_dir=tempfile.mkdtemp()))\n"
    )
    assert [m for m in _heavy_after(body) if m != "fastapi"] == []
