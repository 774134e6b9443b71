from __future__ import annotations

import pytest

from aisp.errors import ConflictError, NotFoundError, ValidationError
from aisp.store import Store


@pytest.fixture
def clocked(db_url, settings):
    now = [100.0]
    with Store(db_url, settings=settings, clock=lambda: now[0]) as store:
        yield store, now


def test_lifecycle_with_progress_and_result(clocked):
    store, now = clocked
    t = store.tasks.create(source="/videos/a.mp4", models=["fake"], params={"every": 2})
    assert t.state == "queued" and t.progress is None and t.params == {"every": 2}
    t = store.tasks.start(t.id, frames_total=200)
    assert t.state == "running" and t.attempts == 1 and t.started_at == 100.0
    now[0] = 101.0
    assert store.tasks.set_progress(t.id, 50, fps=25.0)
    t = store.tasks.get(t.id)
    assert (t.frames_done, t.progress, t.fps, t.eta_seconds) == (50, 25.0, 25.0, 6.0)
    now[0] = 102.0
    paths = {"events_path": "/out/e.jsonl", "video_path": "/out/v.mp4"}
    t = store.tasks.complete(t.id, paths, frames_done=200)
    assert t.state == "completed" and t.progress == 100.0 and t.finished_at == 102.0
    assert t.result["events_path"] == "/out/e.jsonl"
    assert t.to_dict()["progress"] == 100.0
    with pytest.raises(ConflictError, match="completed; it cannot become running"):
        store.tasks.start(t.id)
    with pytest.raises(ConflictError):
        store.tasks.retry(t.id)


def test_progress_is_throttled_but_state_changes_are_not(clocked):
    store, now = clocked
    t = store.tasks.create(source="a", models=["fake"])
    store.tasks.start(t.id, frames_total=100)
    assert store.tasks.set_progress(t.id, 1)
    now[0] += 0.1
    assert not store.tasks.set_progress(t.id, 2)  # throttled
    assert store.tasks.set_progress(t.id, 3, force=True)
    now[0] += 0.6
    assert store.tasks.set_progress(t.id, 4)
    assert store.tasks.get(t.id).frames_done == 4
    store.tasks.cancel(t.id)
    now[0] += 0.6
    assert not store.tasks.set_progress(t.id, 5)  # only running tasks take progress
    assert store.tasks.get(t.id).frames_done == 4


def test_mark_interrupted_keeps_progress_and_retry_resumes(clocked):
    store, now = clocked
    running = store.tasks.create(source="a", models=["fake"])
    store.tasks.start(running.id, frames_total=300)
    store.tasks.set_progress(running.id, 120, fps=30.0)
    queued = store.tasks.create(source="b", models=["fake"])
    done = store.tasks.create(source="c", models=["fake"])
    store.tasks.start(done.id)
    store.tasks.complete(done.id, {})

    marked = {t.id: t for t in store.tasks.mark_interrupted()}
    assert set(marked) == {running.id, queued.id}
    r = store.tasks.get(running.id)
    assert r.state == "interrupted" and r.frames_done == 120 and r.progress == 40.0
    assert "running" in r.error
    assert store.tasks.get(queued.id).state == "interrupted"
    assert store.tasks.get(done.id).state == "completed"
    assert store.tasks.mark_interrupted() == []

    again = store.tasks.retry(running.id)
    assert again.state == "queued" and again.frames_done == 120 and again.error is None
    restarted = store.tasks.start(running.id)
    assert restarted.attempts == 2
    fresh = store.tasks.retry(queued.id, resume=False)
    assert fresh.frames_done == 0


def test_list_filter_count_delete(clocked):
    store, now = clocked
    ids = []
    for i in range(3):
        now[0] = 100.0 + i
        ids.append(store.tasks.create(source=f"s{i}", models=["fake"]).id)
    assert [t.id for t in store.tasks.list()] == ids[::-1]
    store.tasks.start(ids[0])
    assert [t.id for t in store.tasks.list(state="running")] == [ids[0]]
    assert store.tasks.count() == 3 and store.tasks.count(state="queued") == 2
    with pytest.raises(ConflictError, match="cancel it first"):
        store.tasks.delete(ids[0])
    store.tasks.cancel(ids[1])
    store.tasks.delete(ids[1])
    assert store.tasks.find(ids[1]) is None
    with pytest.raises(NotFoundError):
        store.tasks.get(ids[1])


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"source": "", "models": ["fake"]}, "source"),
        ({"source": "a", "models": []}, "models"),
        ({"source": "a", "models": [""]}, "models"),
        ({"source": "a", "models": ["fake"], "frames_total": -1}, "frames_total"),
    ],
)
def test_create_rejects_bad_input(store, kwargs, field):
    with pytest.raises(ValidationError) as info:
        store.tasks.create(**kwargs)
    assert info.value.field == field


def test_update_rejects_unknown_fields_and_states(store):
    t = store.tasks.create(source="a", models=["fake"])
    with pytest.raises(ValidationError, match="cannot update task field"):
        store.tasks.update(t.id, id="other")
    with pytest.raises(ValidationError, match="invalid state"):
        store.tasks.update(t.id, state="paused")
    with pytest.raises(ValidationError, match="frames_done"):
        store.tasks.update(t.id, frames_done=-3)
    with pytest.raises(NotFoundError):
        store.tasks.update("nope", error="x")


def test_tasks_survive_reopening(db_url, settings):
    with Store(db_url, settings=settings) as s1:
        t = s1.tasks.create(source="a", models=["fake", "other"], params={"nested": {"k": [1, 2]}})
        s1.tasks.start(t.id, frames_total=10)
        s1.tasks.set_progress(t.id, 7, force=True)
    with Store(db_url, settings=settings) as s2:
        got = s2.tasks.get(t.id)
        assert got.models == ["fake", "other"] and got.params == {"nested": {"k": [1, 2]}}
        assert got.state == "running" and got.frames_done == 7
