"""crash='kill' on the real PostgreSQL server: the child opens its own connections
(psycopg 3, psycopg2, SQLAlchemy), is killed at the crash point so the server
sees a dropped connection (open transaction rolled back, commits kept), and
never touches the parent's connections."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import idemtest
from idemtest import Source, Spec, Target, hourly
from idemtest.engine.execute import Env
from idemtest.engine.model import Dataset, Fault, RunStep

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(not hasattr(os, "fork"), reason="crash='kill' is POSIX only")]

SETUP = "CREATE TABLE t (id BIGINT, v TEXT, loaded_at TIMESTAMPTZ); CREATE TABLE events (id BIGINT, ts TIMESTAMP, v INTEGER); CREATE TABLE out (id BIGINT, ts TIMESTAMP, v INTEGER)"
AT = datetime(2026, 1, 1, 1)
EVENTS = Source("events", columns={"id": "BIGINT", "ts": "TIMESTAMP", "v": "INTEGER"}, key="id", event_time="ts", updates=False, max_rows=4)
PIDS: list[int] = []


def one_window(crash: str) -> Spec:
    return Spec(sources=[], targets=[Target("t", key="id")], schedule=hourly("2026-01-01", 1), setup=SETUP, crash=crash)  # type: ignore[arg-type]


@pytest.fixture
def sandbox(backend: Any) -> Iterator[Any]:
    sb = backend.create()
    sb.prepare(one_window("kill"))
    yield sb
    sb.close()


def attempt(sb: Any, load: Any, fault: Fault | None, crash: str = "kill") -> Any:
    return Env(one_window(crash), sb, Dataset({}), load).execute(1, RunStep(0, AT, (fault,) if fault else ()), 1, AT, fault)


def test_a_kill_drops_the_connection_and_runs_no_finally(sandbox: Any, tmp_path: Path) -> None:
    marker = tmp_path / "finally.log"

    def load(run: Any) -> None:
        c = run.conn
        c.execute("INSERT INTO t VALUES (1, 'committed', now())")
        c.commit()
        try:
            c.execute("INSERT INTO t VALUES (2, 'open', now())")
            c.commit()
        finally:
            marker.write_text("ran")

    rec = attempt(sandbox, load, Fault(3, "after"))  # after the second INSERT, before its COMMIT
    assert rec.outcome == "crash" and rec.at.index == 3 and "INSERT INTO t VALUES (2" in rec.at.text
    assert not marker.exists()
    assert sandbox.query("SELECT id, v FROM t ORDER BY id")[1] == [(1, "committed")]
    # the parent's own connection was left alone by the child: it still works
    assert sandbox.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'")[1] == [(0,)]
    rec = attempt(sandbox, load, Fault(3, "after"), crash="raise")
    assert rec.outcome == "crash" and marker.read_text() == "ran"


def test_every_driver_and_the_clock_work_in_the_child(sandbox: Any) -> None:
    import psycopg
    import psycopg2
    import sqlalchemy as sa

    pids: list[int] = []

    def load(run: Any) -> None:
        pids.append(os.getpid())
        with run.conn.transaction():
            run.conn.execute("INSERT INTO t VALUES (1, 'conn', now())")
        with psycopg.connect(run.dsn) as c:
            c.execute("INSERT INTO t VALUES (2, 'psycopg', %s)", [datetime.now().astimezone()])
        c2 = psycopg2.connect(run.dsn)
        with c2, c2.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (3, 'psycopg2', current_timestamp)")
        c2.close()
        engine = sa.create_engine(run.url)
        with engine.begin() as c3:
            c3.execute(sa.text("INSERT INTO t VALUES (4, 'sqlalchemy', now())"))
        engine.dispose()

    rec = attempt(sandbox, load, None)
    assert rec.outcome == "ok", rec.error + rec.tb
    assert pids == []
    rows = sandbox.query("SELECT id, v, loaded_at FROM t ORDER BY id")[1]
    assert [r[:2] for r in rows] == [(1, "conn"), (2, "psycopg"), (3, "psycopg2"), (4, "sqlalchemy")]
    # the clock ticks from the run's time: every stamp, Python's or SQL's, lies just after it, in order
    stamps = [r[2].replace(tzinfo=None) for r in rows]
    assert all(AT <= t < AT + timedelta(seconds=30) for t in stamps), stamps
    assert stamps == sorted(stamps)
    assert sum(b.kind == "connect" for b in rec.trace) >= 3


def test_os_exit_in_the_child_leaves_the_parent_connections_working(sandbox: Any) -> None:
    def load(run: Any) -> None:
        run.conn.execute("INSERT INTO t VALUES (1, 'a', now())")
        os._exit(3)

    rec = attempt(sandbox, load, None)
    assert rec.outcome == "error" and rec.error.startswith("the load's process exited with code 3 at boundary 1")
    assert sandbox.query("SELECT count(*) FROM t")[1] == [(0,)]  # its open transaction died with it


def check_spec(crash: str) -> Spec:
    return Spec(sources=[EVENTS], targets=[Target("out", key="id")], schedule=hourly("2026-01-01", 1), setup=SETUP, crash=crash, exercise=["crash", "duplicate"])  # type: ignore[arg-type]


def replace_window(run: Any) -> None:
    PIDS.append(os.getpid())
    with run.conn.transaction():
        run.conn.execute("DELETE FROM out WHERE ts >= %s AND ts < %s", [run.window.start, run.window.end])
        run.conn.execute("INSERT INTO out SELECT * FROM events WHERE ts >= %s AND ts < %s", [run.window.start, run.window.end])


def replace_window_in_two_transactions(run: Any) -> None:
    PIDS.append(os.getpid())
    run.conn.execute("DELETE FROM out WHERE ts >= %s AND ts < %s", [run.window.start, run.window.end])
    run.conn.commit()
    run.conn.execute("INSERT INTO out SELECT * FROM events WHERE ts >= %s AND ts < %s", [run.window.start, run.window.end])
    run.conn.commit()


def test_a_correct_transactional_load_passes_in_kill_mode(pg_dsn: str) -> None:
    PIDS.clear()
    stats = idemtest.verify(check_spec("kill"), replace_window, db=pg_dsn, examples=1, systematic_max=4, seed=1)
    assert stats.crashes > 0 and PIDS == []


def test_delete_then_insert_in_two_transactions_is_caught_and_replays_exactly(pg_dsn: str, tmp_path: Path) -> None:
    PIDS.clear()
    with pytest.raises(idemtest.IdempotencyViolation) as found:
        idemtest.verify(check_spec("kill"), replace_window_in_two_transactions, db=pg_dsn, examples=1, failures_dir=tmp_path, seed=1)
    assert found.value.prop == "P3" and PIDS == []
    with pytest.raises(idemtest.IdempotencyViolation) as again:
        idemtest.replay(found.value.saved, check_spec("raise"), replace_window_in_two_transactions, db=pg_dsn)
    assert PIDS == []
    assert [a.describe() for a in again.value.attempts] == [a.describe() for a in found.value.attempts]
