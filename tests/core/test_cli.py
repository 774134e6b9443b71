"""The CLI turns bad configuration into one line and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _aisp(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "aisp", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=60,
    )


def test_version_and_help() -> None:
    out = _aisp("--version")
    assert out.returncode == 0 and out.stdout.startswith("aisp ")
    helped = _aisp("--help")
    assert helped.returncode == 0
    for cmd in ("serve", "run", "models", "keys", "db", "bench"):
        assert cmd in helped.stdout


def test_bad_env_value_exits_2_without_traceback() -> None:
    out = _aisp("serve", env={"AISP_PORT": "notaport"})
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "port='notaport'" in out.stderr and "AISP_PORT" in out.stderr


def test_typo_in_config_file_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "aisp.toml"
    cfg.write_text("prot = 9000\n")
    out = _aisp("--config", str(cfg), "serve")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "unknown setting 'prot'" in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1


@pytest.mark.parametrize("bad", ["--nope", "frobnicate"])
def test_usage_errors_exit_2(bad: str) -> None:
    out = _aisp(bad)
    assert out.returncode == 2 and "Traceback" not in out.stderr
