"""AISP_RAY_ADDRESS parsing, the SQLite refusal, and what the driver sees of a real 3-node cluster."""

from __future__ import annotations

import pytest

from aisp.errors import ConfigError
from aisp.settings import load_settings


@pytest.mark.parametrize("value", ["", "local", "auto", "10.0.0.5:6379", "ray://head:10001", "head.lan:6379"])
def test_good_addresses(value, tmp_path):
    assert load_settings(data_dir=tmp_path, ray_address=value).ray_address == value


@pytest.mark.parametrize("value", ["ray://", "head", "http://head:6379", "head:port", "head:0", ":6379"])
def test_bad_addresses_name_the_field(value, tmp_path):
    with pytest.raises(Exception) as info:
        load_settings(data_dir=tmp_path, ray_address=value)
    assert "ray_address" in str(info.value)


def test_sqlite_is_refused_when_joining_a_cluster(tmp_path):
    from aisp.cluster import check_store

    settings = load_settings(data_dir=tmp_path, ray_address="auto")
    with pytest.raises(ConfigError) as info:
        check_store(settings)
    assert "AISP_DATABASE_URL" in str(info.value) and info.value.field == "database_url"
    check_store(load_settings(data_dir=tmp_path, ray_address="local"))  # one machine: fine
    with pytest.raises(ConfigError):
        check_store(load_settings(data_dir=tmp_path, ray_address="local"), alive_nodes=2)
    check_store(load_settings(data_dir=tmp_path, ray_address="auto",
                              database_url="postgresql+psycopg://u:p@db/aisp"))


def test_create_app_without_a_cluster_is_refused(tmp_path):
    from aisp.api import create_app

    with pytest.raises(ConfigError) as info:
        create_app(load_settings(data_dir=tmp_path, ray_address="local"))
    assert info.value.field == "ray_address"


def test_connection_lists_the_nodes(ray_cluster, tmp_path):
    from aisp.cluster import RayConnection

    settings = load_settings(data_dir=tmp_path, ray_address=ray_cluster.address,
                             database_url="postgresql+psycopg://u:p@db/aisp")
    conn = RayConnection.connect(settings)  # reuses the test's driver connection
    nodes = conn.nodes()
    assert len([n for n in nodes if n.alive]) == 3
    assert nodes[0].is_head and all(n.resources.get("stream_slot") == 2 for n in nodes)
    conn.close()
    import ray

    assert ray.is_initialized()  # not owned: left open for the test
