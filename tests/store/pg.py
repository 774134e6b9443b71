"""Throwaway PostgreSQL servers for the store tests, through ``.ci/start-postgres.sh``.

Each server gets a free port and a new data directory, and :func:`stop_postgres` stops it and
deletes the directory: a test run leaves no server behind and never collides with a port in use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "start-postgres.sh"



def start_postgres() -> dict[str, str] | None:
    """Start a new cluster on a free port; the variables the script exports, or None."""
    env = dict(os.environ)
    env["AISP_TEST_PG_PORT"] = str(free_port())
    env["AISP_TEST_PGDATA"] = tempfile.mkdtemp(prefix="aisp-pg-test-")
    try:
        out = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        shutil.rmtree(env["AISP_TEST_PGDATA"], ignore_errors=True)
        return None
    found: dict[str, str] = {}
    for line in out.stdout.splitlines():
        if not line.startswith("export "):
            continue
        for part in line[len("export "):].split():
            key, _, value = part.partition("=")
            found[key] = value
    if out.returncode != 0 or "AISP_TEST_POSTGRES_URL" not in found:
        stop_postgres({"AISP_TEST_PGDATA": env["AISP_TEST_PGDATA"], **found})
        return None
    return found


def _run(env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess[bytes]:
    cmd = [f"{env['AISP_TEST_PG_BIN']}/pg_ctl", "-D", env["AISP_TEST_PGDATA"], "-w", *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, timeout=60)


def pg_ctl(env: dict[str, str], action: str) -> None:
    """``pg_ctl stop|start`` on the cluster described by ``env`` (as the postgres user when root)."""
    if action == "stop":
        args = ["-m", "fast", "stop"]
    else:
        args = ["-l", f"{env['AISP_TEST_PGDATA']}/server.log", "-o",
                f"-h 127.0.0.1 -p {env['AISP_TEST_PG_PORT']} -k /tmp", "start"]
    _run(env, args).check_returncode()


def stop_postgres(env: dict[str, str]) -> None:
    """Stop the cluster (if it runs) and delete its data directory."""
    if "AISP_TEST_PG_BIN" in env:
        _run(env, ["-m", "immediate", "stop"])
    shutil.rmtree(env["AISP_TEST_PGDATA"], ignore_errors=True)
