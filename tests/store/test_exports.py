"""The store's public surface is stated explicitly, and importing it stays free of the pipeline."""

from __future__ import annotations

import subprocess
import sys

import aisp.store


def test_all_names_resolve():
    for name in aisp.store.__all__:
        assert getattr(aisp.store, name) is not None, name


def test_import_store_does_not_import_the_pipeline_or_alembic():
    code = ("import sys, aisp.store; "
            "print(sorted(m for m in ('numpy', 'cv2', 'alembic', 'aisp.pipeline') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_db_module_is_light():
    code = "import sys, aisp.cli.db; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
