from __future__ import annotations

from pathlib import Path

import pytest

from aisp.errors import ConfigError
from aisp.settings import Settings, load_settings


def test_defaults_need_no_configuration() -> None:
    s = load_settings(environ={})
    assert s.port == 8000 and s.host == "127.0.0.1"
    assert s.prewarm == [] and s.cache_eviction_policy == "lru"
    assert s.resolved_database_url.startswith("sqlite:///")


def test_environment_variables_and_comma_lists() -> None:
    s = load_settings(environ={"AISP_PORT": "9001", "AISP_PREWARM": "face_detection, pose"})
    assert s.port == 9001
    assert s.prewarm == ["face_detection", "pose"]


def test_toml_file_and_priority(tmp_path: Path) -> None:
    cfg = tmp_path / "aisp.toml"
    cfg.write_text('port = 9100\nworkers = 3\nprewarm = ["hands"]\n')
    s = load_settings(cfg, environ={"AISP_WORKERS": "5"})
    assert s.port == 9100  # from the file
    assert s.workers == 5  # env beats file
    assert s.prewarm == ["hands"]
    assert load_settings(cfg, environ={}, port=9200).port == 9200  # overrides beat all


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"AISP_PORT": "notaport"}, "port='notaport' (from AISP_PORT)"),
        ({"AISP_PORT": "70000"}, "less than or equal to 65535"),
        ({"AISP_CACHE_EVICTION_POLICY": "fifo"}, "'lru' or 'cost'"),
        ({"AISP_CACHE_HIT_RATE_THRESHOLD": "1.5"}, "cache_hit_rate_threshold"),
        ({"AISP_LOG_FORMAT": "xml"}, "'text' or 'json'"),
        ({"AISP_CACHE_TTL_SECONDS": "-3"}, "cache_ttl_seconds"),
    ],
)
def test_invalid_values_give_one_clear_line(environ: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_typo_in_toml_is_named_with_a_suggestion(tmp_path: Path) -> None:
    cfg = tmp_path / "aisp.toml"
    cfg.write_text("prot = 9000\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'prot' in .*did you mean 'port'"):
        load_settings(cfg, environ={})


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_ttl_zero_means_never() -> None:
    assert load_settings(environ={"AISP_CACHE_TTL_SECONDS": "0"}).cache_ttl_seconds is None
    assert load_settings(environ={"AISP_CACHE_TTL_SECONDS": ""}).cache_ttl_seconds is None


def test_unknown_env_var_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="aisp")
    import logging

    logging.getLogger("aisp").propagate = True
    load_settings(environ={"AISP_PROT": "1"})
    assert "did you mean AISP_PORT" in caplog.text


def test_every_setting_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [Settings.env_var(f) for f in Settings.model_fields if Settings.env_var(f) not in readme]
    assert missing == []
