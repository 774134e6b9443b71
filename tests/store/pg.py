"""Helpers to find or start the throwaway PostgreSQL servers of the store tests (.ci/start-postgres.sh)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "start-postgres.sh"


def start_postgres(port: int | None = None, pgdata: str | None = None) -> dict[str, str] | None:
    """Run .ci/start-postgres.sh (idempotent) and return the variables it exports, or None."""
    env = dict(os.environ)
    if port is not None:
        env["AISP_TEST_PG_PORT"] = str(port)
        env["AISP_TEST_PGDATA"] = pgdata or f"/tmp/aisp-pg-{port}"
    try:
        out = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    found: dict[str, str] = {}
    for line in out.stdout.splitlines():
        if not line.startswith("export "):
            continue
        for part in line[len("export "):].split():
            key, _, value = part.partition("=")
            found[key] = value
    return found if "AISP_TEST_POSTGRES_URL" in found else None


def pg_ctl(env: dict[str, str], action: str) -> None:
    """``pg_ctl stop|start`` on the cluster described by ``env`` (as the postgres user when root)."""
    cmd = [f"{env['AISP_TEST_PG_BIN']}/pg_ctl", "-D", env["AISP_TEST_PGDATA"], "-w"]
    if action == "stop":
        cmd += ["-m", "fast", "stop"]
    else:
        cmd += ["-l", f"{env['AISP_TEST_PGDATA']}/server.log", "-o",
                f"-h 127.0.0.1 -p {env['AISP_TEST_PG_PORT']} -k /tmp", "start"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
