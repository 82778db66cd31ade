"""Worker threads on PostgreSQL: psycopg 3, psycopg2 and SQLAlchemy connections
opened on a run's threads are instrumented; sessions idemtest did not open fail
the check; a crash ends the attempt at once; run.state commits with run.conn;
connection URLs for each client; the printed replay command replays as printed."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import idemtest
from idemtest import Spec, Target, hourly
from idemtest._defaults import STATE_TABLE
from idemtest.engine.execute import Env
from idemtest.engine.model import Dataset, RunStep
from idemtest.instrument import Fault, InjectedCrash

pytestmark = pytest.mark.postgres

ROOT = Path(idemtest.__file__).resolve().parents[1]
SETUP = "CREATE SCHEMA analytics; CREATE TABLE analytics.t (id BIGINT, v VARCHAR)"
SPEC = Spec(setup=SETUP, sources=[], targets=[Target("analytics.t", key="id")], schedule=hourly("2026-06-01", periods=2), dialect="postgres", timeout="20s")
NOW = datetime(2026, 6, 1, 1)


@pytest.fixture
def sb(backend: Any) -> Iterator[Any]:
    s = backend.create(SPEC)
    yield s
    s.close()


def ids(sb: Any) -> list[int]:
    return [r[0] for r in sb.query("SELECT id FROM analytics.t ORDER BY id")[1]]


def attempt(sb: Any, load: Any, fault: Fault | None = None) -> Any:
    return Env(SPEC, sb, Dataset(), load).execute(1, RunStep(0, NOW), 1, NOW, fault)


def test_every_driver_on_worker_threads_is_instrumented(sb: Any) -> None:
    def load(run: Any) -> None:
        import psycopg
        import psycopg2
        import sqlalchemy as sa

        def pg3(i: int) -> None:
            with psycopg.connect(run.dsn) as c:
                c.execute("INSERT INTO analytics.t VALUES (%s, 'pg3')", [i])

        def pg2(i: int) -> None:
            c = psycopg2.connect(run.dsn)
            with c, c.cursor() as cur:
                cur.execute("INSERT INTO analytics.t VALUES (%s, 'pg2')", [i])
            c.close()

        def engine(url: str, i: int) -> None:
            e = sa.create_engine(url)  # built inside the worker thread, from the run's URL
            with e.begin() as c:
                c.execute(sa.text("INSERT INTO analytics.t VALUES (:i, 'sa')"), {"i": i})
            e.dispose()

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(pg3, 1), pool.submit(pg2, 2), pool.submit(engine, run.connection_url("psycopg"), 3), pool.submit(engine, run.connection_url("psycopg2"), 4)]
            for f in futures:
                f.result()
        t = threading.Thread(target=pg3, args=(5,), name="side")
        t.start()
        t.join()

    rec = attempt(sb, load)
    assert rec.outcome == "ok", rec.error
    inserts = [b for b in rec.trace if "INSERT INTO analytics.t" in b.text]
    assert len(inserts) == 5 and all(b.thread for b in inserts)  # all on threads, none unseen
    assert ids(sb) == [1, 2, 3, 4, 5]


def test_a_crash_on_a_worker_kills_every_connection_of_the_attempt(sb: Any) -> None:
    """The main thread holds an open transaction; a worker's statement is the crash
    point: the open transaction is lost, the worker's commit stays."""

    def load(run: Any) -> None:
        import psycopg

        run.conn.execute("INSERT INTO analytics.t VALUES (1, 'main, uncommitted')")

        def job() -> None:
            with psycopg.connect(run.dsn, autocommit=True) as c:
                c.execute("INSERT INTO analytics.t VALUES (2, 'worker')")
                c.execute("INSERT INTO analytics.t VALUES (3, 'worker')")

        with ThreadPoolExecutor(1) as pool:
            pool.submit(job).result()
        run.conn.commit()

    rec = attempt(sb, load, Fault(3, "after"))  # 1 main INSERT, 2 connect, 3 the worker's first INSERT
    assert rec.outcome == "crash" and rec.at is not None and rec.at.thread
    assert ids(sb) == [2]


def test_a_dlt_style_wrapper_is_reported_crashed_within_seconds(sb: Any) -> None:
    after: list[BaseException] = []

    def load(run: Any) -> None:
        import psycopg

        never = threading.Event()
        try:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(lambda: psycopg.connect(run.dsn, autocommit=True).execute("INSERT INTO analytics.t VALUES (1, 'job')")).result()
        except BaseException as e:
            raise AssertionError(f"job failed: {e!r}") from e
        finally:
            try:
                run.conn.execute("INSERT INTO analytics.t VALUES (2, 'after death')")
            except BaseException as e:
                after.append(e)
            never.wait()

    t0 = time.perf_counter()
    rec = attempt(sb, load, Fault(1, "before"))  # the job's connect
    assert rec.outcome == "crash" and time.perf_counter() - t0 < 5
    assert len(after) == 1 and isinstance(after[0], InjectedCrash)
    assert ids(sb) == []


def test_a_session_idemtest_did_not_open_fails_the_check(pg_dsn: str, tmp_path: Path) -> None:
    """psycopg.Connection.connect (what psycopg_pool calls) bypasses psycopg.connect:
    the database's own session count reports it."""

    def load(run: Any) -> None:
        import psycopg

        with psycopg.Connection.connect(run.dsn) as c:
            c.execute("INSERT INTO analytics.t VALUES (1, 'unseen')")

    with pytest.raises(idemtest.UninstrumentedError, match="session") as info:
        idemtest.verify(SPEC, load, db=pg_dsn, examples=2, failures_dir=tmp_path)
    assert "did not open" in str(info.value) and "psycopg.Connection.connect" in str(info.value)


def test_instrumented_sessions_are_not_reported(sb: Any) -> None:
    rec = attempt(sb, lambda run: [run.connect().close() for _ in range(3)])
    assert rec.outcome == "ok"
    assert sb.unseen() == []


def test_state_set_commits_with_run_conn(sb: Any) -> None:
    """run.state joins run.conn's transaction: committed with it, lost without it."""

    def saves(commit: bool) -> Any:
        def load(run: Any) -> None:
            run.state.set("watermark", "2026-06-01T01:00")
            if commit:
                run.conn.commit()

        return load

    assert attempt(sb, saves(commit=False)).outcome == "ok"
    assert sb.query(f"SELECT count(*) FROM {STATE_TABLE}")[1] == [(0,)]
    assert attempt(sb, saves(commit=True)).outcome == "ok"
    assert sb.query(f"SELECT value FROM {STATE_TABLE} WHERE key = 'watermark'")[1] == [('"2026-06-01T01:00"',)]


def test_connection_urls_for_each_client(sb: Any) -> None:
    import psycopg
    import psycopg2
    import sqlalchemy as sa

    from idemtest.context import RunContext

    run = RunContext(None, NOW, SPEC.all_windows[0], 1, None, SPEC, sb)  # type: ignore[arg-type]
    libpq = run.connection_url()
    assert libpq == run.dsn and libpq.startswith("postgresql://")
    with_pw = run.connection_url(password="unused")
    assert re.match(r"postgresql://[^:@/]+:unused@", with_pw), with_pw  # a trust server ignores it
    assert run.connection_url("psycopg") == run.url and run.connection_url("psycopg2").startswith("postgresql+psycopg2://")
    psycopg.connect(with_pw).close()
    psycopg2.connect(with_pw).close()
    for driver in ("psycopg", "psycopg2"):
        e = sa.create_engine(run.connection_url(driver, password="unused"))
        with e.connect() as c:
            assert c.execute(sa.text("SELECT 1")).scalar() == 1
        e.dispose()
    # a libpq tool takes the URL as is
    out = subprocess.run(["psql", with_pw, "-Atc", "SELECT current_database()"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == sb.dbname
    with pytest.raises(ValueError, match="driver="):
        run.connection_url("asyncpg")


FAILING = """
import idemtest
from idemtest import Source, Spec, Target, hourly

SETUP = '''
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, amount NUMERIC(12,2), updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT, amount NUMERIC(12,2), updated_at TIMESTAMP);
'''
spec = Spec(
    setup=SETUP,
    dialect="postgres",
    sources=[Source("src.orders", columns={"order_id": "BIGINT", "amount": "NUMERIC(12,2)", "updated_at": "TIMESTAMP"},
                    key="order_id", event_time="updated_at", max_rows=4)],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=2),
    exercise=["duplicate"],
)

@idemtest.check(spec)
def test_bare_insert(run):
    with run.conn.cursor() as cur:
        cur.execute("INSERT INTO analytics.orders SELECT * FROM src.orders WHERE updated_at >= %s AND updated_at < %s",
                    (run.window.start, run.window.end))
    run.conn.commit()
"""


def test_the_printed_replay_command_replays_a_postgres_failure_as_printed(pg_dsn: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_pipe=FAILING)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    first = pytester.runpytest_subprocess("--idempotency", "--idem-db", pg_dsn, "--idem-examples", "10", "--idem-shrink-seconds", "1", "-p", "no:cacheprovider")
    first.assert_outcomes(failed=1)
    replay = next(line for line in first.stdout.lines if line.startswith("Replay: ")).removeprefix("Replay: ")
    assert "--idem-db" in replay
    # as printed, in a shell, with the pytest of this environment on PATH
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(os.sys.executable).parent}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run(replay + " -p no:cacheprovider", shell=True, cwd=pytester.path, capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # tests failed: not 0 (passed or all skipped), not a usage error
    assert "1 failed" in out and "skipped" not in out and "P2" in out, out
    # the same replay without the sandbox option fails loudly rather than skipping
    bare = re.sub(r" --idem-db \S+", "", replay)
    proc = subprocess.run(bare + " -p no:cacheprovider", shell=True, cwd=pytester.path, capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    # a usage error (exit code 4) naming the option to add: never a skip, never rc 0
    assert proc.returncode == 4 and "saved on PostgreSQL" in out and "--idem-db" in out, out
    assert shlex.split(replay)[0] == "pytest"
