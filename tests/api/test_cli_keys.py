"""``aisp keys create|list|revoke`` against a store in a temporary data dir."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aisp.cli.main import app


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"AISP_DATA_DIR": str(tmp_path), "AISP_LOG_LEVEL": "WARNING"}
    r = runner.invoke(app, ["keys", "create", "--role", "admin", "--name", "ops"], env=env)
    assert r.exit_code == 0, r.output
    token = re.search(r"(aisp_([0-9a-f]{12})_\S+)", r.output)
    assert token
    key_id = token.group(2)
    r = runner.invoke(app, ["keys", "list"], env=env)
    assert r.exit_code == 0 and key_id in r.output and "ops" in r.output and token.group(1) not in r.output

    from aisp.settings import load_settings
    from aisp.store import Store

    s = load_settings(environ={}, data_dir=tmp_path)
    store = Store(s.resolved_database_url, settings=s).open(background=False)
    try:
        assert store.keys.verify(token.group(1)).role == "admin"
        r = runner.invoke(app, ["keys", "revoke", key_id], env=env)
        assert r.exit_code == 0 and "revoked" in r.output
        assert store.keys.verify(token.group(1)) is None
    finally:
        store.close()


def test_keys_bad_input_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aisp.cli.main import main

    monkeypatch.setenv("AISP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AISP_LOG_LEVEL", "WARNING")
    for args in (["keys", "create", "--role", "root"], ["keys", "revoke", "nope"]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2, args
