"""Must show: PostgreSQL stops while a stream runs. The stream keeps its FPS, events are buffered
up to the bound and the rest counted as dropped, and events written after PostgreSQL comes back
are stored.

Uses a DEDICATED PostgreSQL cluster (a free port, a new data directory, both gone at the end) so
that stopping it does not disturb the other tests. Waits are on conditions with deadlines, never sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import numpy as np
import pytest

from aisp.models.fake import FakeModel
from aisp.pipeline import Engine, EventSink, MemorySource, StreamSpec
from aisp.pipeline.sinks import Sink
from aisp.store import Store
from tests.conftest import require_service
from tests.store.pg import pg_ctl, start_postgres, stop_postgres

log = logging.getLogger("aisp.tests.store")

DEADLINE = 60.0
MAX_FPS = 100.0
BUFFER = 20  # settings.event_buffer_size: small, so that the outage overflows it


class Counter(Sink):
    """Counts frames reaching the sinks, with waiting for a count."""

    def __init__(self) -> None:
        self.n = 0
        self._cond = threading.Condition()

    def write(self, result) -> None:
        with self._cond:
            self.n += 1
            self._cond.notify_all()

    def wait_count(self, n: int, timeout: float = DEADLINE) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.n >= n, timeout)

    def fps_over(self, frames: int) -> float:
        """Frames per second over the next ``frames`` frames."""
        start, t0 = self.n, time.perf_counter()
        assert self.wait_count(start + frames), f"stream stalled at {self.n} frames"
        return frames / (time.perf_counter() - t0)


class FrameClock:
    """The EventSink's clock: advances 10 ms per frame, so one event per 10 frames (window 0.1 s)."""

    def __init__(self) -> None:
        self.t = 1_000_000.0 + time.time() // 1  # recent, so retention does not touch it
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            self.t += 0.01
            return self.t


def _wait(pred, what: str, timeout: float = DEADLINE) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        threading.Event().wait(0.02)  # polling interval of a condition with a deadline, not a sleep-for-sync


@pytest.mark.postgres
@pytest.mark.slow
def test_stream_keeps_running_while_postgres_is_down(tmp_path, record_property):
    env = start_postgres()
    require_service(env is not None, "cannot start a dedicated PostgreSQL server")
    assert env is not None
    try:
        _outage(env, tmp_path, record_property)
    finally:
        stop_postgres(env)


def _outage(env: dict[str, str], tmp_path, record_property) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from aisp.settings import load_settings

    base = env["AISP_TEST_POSTGRES_URL"]
    schema = f"outage_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, poolclass=NullPool)  # no pooled connection survives the restart
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)

    settings = load_settings(environ={}, data_dir=tmp_path, database_url=url, event_buffer_size=BUFFER,
                             event_window_seconds=0.1)
    store = Store(settings=settings, event_flush_interval=0.05, event_retry_max=0.3).open()
    writer = store.events
    clock = FrameClock()
    counter = Counter()
    model = FakeModel("fake")  # a real Model subclass, cost 0: the frame rate is set by max_fps
    engine = Engine(settings, loader=lambda name, instance: model, workers=1, monitor_interval=None)
    stopped_pg = False
    restart_t: float | None = None
    try:
        image = np.full((48, 64, 3), 128, np.uint8)
        stream = engine.add_stream(
            StreamSpec("outage", MemorySource([image], live=True, fps=None), ["fake"], max_fps=MAX_FPS),
            [EventSink(writer, window_seconds=settings.event_window_seconds, clock=clock), counter],
            start=True,
        )
        # 1. PostgreSQL up: events are stored.
        assert writer.wait_for(lambda s: s.written >= 3, DEADLINE)
        fps_up = counter.fps_over(100)

        # 2. PostgreSQL down: frames keep flowing, events are buffered, then dropped beyond the bound.
        pg_ctl(env, "stop")
        stopped_pg = True
        assert writer.wait_for(lambda s: s.write_errors >= 1 and s.dropped >= 5, DEADLINE)
        fps_down = counter.fps_over(100)
        down = writer.stats()
        assert stream.state == "running"
        assert down.buffered == BUFFER and down.max_buffered == BUFFER and not down.healthy

        # 3. PostgreSQL back: the backlog is written, and so are the events that come after.
        pg_ctl(env, "start")
        stopped_pg = False
        restart_t = clock.t
        at_restart = writer.stats()
        accepted_before = at_restart.submitted - at_restart.dropped
        assert writer.wait_for(lambda s: s.healthy and s.written >= accepted_before + 5, DEADLINE)
        fps_after = counter.fps_over(50)
    finally:
        if stopped_pg:
            pg_ctl(env, "start")
        assert engine.shutdown(30), "engine did not shut down"
        writer.flush(30)
        final = writer.stats()
        stored = store.event_log.count(stream_id="outage")
        after_restart = [] if restart_t is None else store.event_log.query(
            stream_id="outage", since=restart_t, limit=100_000)
        store.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    counts = {"fps_before": round(fps_up, 1), "fps_during_outage": round(fps_down, 1),
              "fps_after": round(fps_after, 1), "buffered_at_peak": final.max_buffered,
              "buffered_when_down": down.buffered, "dropped": final.dropped, "submitted": final.submitted,
              "written": final.written, "write_errors": final.write_errors, "stored_rows": stored,
              "stored_after_restart": len(after_restart)}
    for k, v in counts.items():
        record_property(k, v)
    log.warning("postgres outage: %s", counts)
    print(f"\npostgres outage counts: {counts}")

    assert fps_down >= 0.5 * fps_up, counts  # the frame path does not wait for the database
    assert final.dropped >= 5 and final.max_buffered == BUFFER
    assert final.written + final.dropped == final.submitted  # every event is either stored or counted
    assert stored == final.written
    assert len(after_restart) >= 5  # events submitted after PostgreSQL came back are stored
