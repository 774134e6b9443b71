from __future__ import annotations

import pytest

from aisp.errors import NotFoundError, ValidationError
from aisp.store import Store


def test_definitions_come_back_after_reopening(db_url, settings):
    spec = {"id": "cam1", "source": "demo", "models": ["fake"], "priority": 1, "max_fps": 5.0}
    with Store(db_url, settings=settings) as s1:
        s1.streams.save(spec)
        s1.streams.save({"id": "cam2", "source": "rtsp://x", "models": ["fake"]}, desired_state="stopped")
    with Store(db_url, settings=settings) as s2:
        recs = {r.id: r for r in s2.streams.list()}
        assert recs["cam1"].spec == spec and recs["cam1"].desired_state == "running"
        assert recs["cam2"].desired_state == "stopped"


def test_save_replaces_and_keeps_desired_state(store):
    store.streams.save({"id": "s", "source": "a", "models": ["fake"]})
    store.streams.set_desired_state("s", "stopped")
    rec = store.streams.save({"id": "s", "source": "b", "models": ["fake"]})
    assert rec.spec["source"] == "b" and rec.desired_state == "stopped"
    assert len(store.streams.list()) == 1
    assert store.streams.delete("s") is True
    assert store.streams.delete("s") is False
    with pytest.raises(NotFoundError):
        store.streams.get("s")
    with pytest.raises(NotFoundError):
        store.streams.set_desired_state("s", "running")


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"source": "demo"}, "id"),
        ({"id": "", "source": "demo"}, "id"),
        ({"id": "x" * 200}, "id"),
        ({"id": "ok", "bad": object()}, "spec"),
        (["not", "a", "mapping"], "spec"),
    ],
)
def test_bad_specs(store, spec, field):
    with pytest.raises(ValidationError) as info:
        store.streams.save(spec)
    assert info.value.field == field


def test_bad_desired_state(store):
    with pytest.raises(ValidationError, match="running or stopped"):
        store.streams.save({"id": "a"}, desired_state="paused")
