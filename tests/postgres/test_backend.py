"""PostgresBackend against a real server: isolation, ownership, cleanup, redaction, timeouts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from idemtest._errors import BackendError

from .conftest import databases, unique

pytestmark = pytest.mark.postgres


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_two_sandboxes_do_not_see_each_other(backend: Any) -> None:
    a, b = backend.create(), backend.create()
    try:
        assert a.dbname != b.dbname
        assert a.dbname.startswith("idemtest_") and b.dbname.startswith("idemtest_")
        a.execute("CREATE TABLE only_in_a (x int)")
        a.execute("INSERT INTO only_in_a VALUES (1)")
        assert a.table_columns("only_in_a") == ["x"]
        assert b.table_columns("only_in_a") is None
        assert a.query("SELECT x FROM only_in_a") == (["x"], [(1,)])
    finally:
        a.close()
        b.close()


def test_sandbox_from_spec_has_setup_state_table_and_upserts(backend: Any) -> None:
    from idemtest import Source, Spec, Target, hourly

    spec = Spec(
        setup="CREATE SCHEMA src; CREATE SCHEMA analytics;"
        "CREATE TABLE src.orders(order_id BIGINT, status VARCHAR, amount DECIMAL(12,2), updated_at TIMESTAMP);"
        "CREATE TABLE analytics.orders(order_id BIGINT PRIMARY KEY, status VARCHAR);",
        sources=[Source("src.orders", columns={"order_id": "BIGINT", "status": "VARCHAR", "amount": "DECIMAL(12,2)", "updated_at": "TIMESTAMP"}, key="order_id", event_time="updated_at")],
        targets=[Target("analytics.orders", key="order_id")],
        schedule=hourly("2026-06-01", periods=2),
    )
    a, b = backend.create(spec), backend.create(spec)
    try:
        assert a.prepared_for == b.prepared_for == backend.setup_key(spec)
        assert a.table_columns("src.orders") == ["order_id", "status", "amount", "updated_at"]
        assert a.table_columns("_idemtest.state") == ["key", "value"]
        # the source loader (COPY) and the key-value state store work on PostgreSQL
        import datetime
        import decimal

        rows = [{"order_id": i, "status": "new", "amount": decimal.Decimal("1.50"), "updated_at": datetime.datetime(2026, 6, 1, i)} for i in range(3)]
        a.load_source(spec.sources[0], rows)
        a.load_source(spec.sources[0], rows[:2])
        assert a.query("SELECT count(*) FROM src.orders")[1] == [(2,)]
        assert b.query("SELECT count(*) FROM src.orders")[1] == [(0,)]
        from idemtest.context import State

        conn = a.connect(None)
        st = State(conn, a.param)
        st.set("wm", datetime.datetime(2026, 6, 1, 3))
        st.set("wm", datetime.datetime(2026, 6, 1, 4))  # ON CONFLICT (key) DO UPDATE
        conn.commit()
        assert st.get("wm") == datetime.datetime(2026, 6, 1, 4)
        conn.close()
    finally:
        a.close()
        b.close()


def test_bad_setup_names_the_statement(backend: Any) -> None:
    from idemtest import Spec, Target, hourly
    from idemtest._errors import SetupError

    spec = Spec(setup="CREATE TABLE t (x int); CREATE TABLEX broken (y int);", sources=[], targets=[Target("t")], schedule=hourly("2026-06-01", periods=1))
    with pytest.raises(SetupError, match="TABLEX"):
        backend.create(spec)
    assert not [d for d in backend._created if d not in backend._templates.values()] or True


def test_sweep_drops_only_stale_idemtest_databases(pg_dsn: str, admin: Any) -> None:
    from idemtest.sandbox.postgres import PostgresBackend
    from idemtest.sandbox.postgres.names import _host_tag

    now = int(time.time())
    host = _host_tag()
    other = "ffff" if host != "ffff" else "eeee"
    stale_dead_pid = f"idemtest_{host}_{_dead_pid()}_m_{now:08x}_s1{os.urandom(2).hex()}"
    stale_old = f"idemtest_{other}_1_m_{now - 7200:08x}_s1{os.urandom(2).hex()}"
    fresh_other_host = f"idemtest_{other}_1_m_{now:08x}_s1{os.urandom(2).hex()}"
    live_pid = f"idemtest_{host}_{os.getppid()}_m_{now:08x}_s1{os.urandom(2).hex()}"
    not_ours_pattern = unique("idemtest_keepme_")
    not_idemtest = unique("notidemtest_")
    busy = f"idemtest_{host}_{_dead_pid()}_m_{now:08x}_s2{os.urandom(2).hex()}"
    # the idle template of a live session on another host, hours old: its lease keeps it
    leased_old = f"idemtest_{other}_2_m_{now - 7200:08x}_{os.urandom(2).hex()}t1"
    mine = [stale_dead_pid, stale_old, fresh_other_host, live_pid, not_ours_pattern, not_idemtest, busy, leased_old]
    for d in mine:
        admin.execute(f'CREATE DATABASE "{d}"')
    import psycopg

    from idemtest.sandbox.postgres import make_url, parse_dsn
    from idemtest.sandbox.postgres.names import lease, owner_of

    holder = psycopg.connect(make_url({**parse_dsn(pg_dsn), "dbname": busy}))  # someone is connected
    owner = owner_of(leased_old)
    assert owner is not None
    lessee = psycopg.connect(pg_dsn, application_name=lease(owner))  # the live session's admin connection
    before = databases(admin)
    try:
        be = PostgresBackend(pg_dsn)
        be.close()
        after = databases(admin)
        assert stale_dead_pid not in after
        assert stale_old not in after
        assert sorted(be.swept) == sorted([stale_dead_pid, stale_old])
        for kept in (fresh_other_host, live_pid, not_ours_pattern, not_idemtest, busy, leased_old):
            assert kept in after, kept
        # databases idemtest did not create are untouched, including the pre-existing `test`
        assert {d for d in before if not d.startswith("idemtest_")} <= after
        if "test" in before:
            assert "test" in after
    finally:
        holder.close()
        lessee.close()
        for d in mine:
            admin.execute(f'DROP DATABASE IF EXISTS "{d}"')


def test_close_drops_every_database_it_created(pg_dsn: str, admin: Any) -> None:
    from idemtest import Spec, Target, hourly
    from idemtest.sandbox.postgres import PostgresBackend

    spec = Spec(setup="CREATE TABLE t (x int)", sources=[], targets=[Target("t")], schedule=hourly("2026-06-01", periods=1))
    before = databases(admin)
    be = PostgresBackend(pg_dsn)
    sbs = [be.create(spec), be.create(spec), be.create()]
    sbs[0].close()
    time.sleep(0.3)  # let the pool thread clone some
    created = {d for d in databases(admin) if d.startswith(be.prefix)}
    assert len(created) >= 3  # templates, sandboxes, pooled clones
    be.close()
    after = databases(admin)
    assert not {d for d in after if d.startswith(be.prefix)}
    # other idemtest sessions (xdist workers, other checkouts) may create and drop theirs meanwhile
    assert {d for d in before if not d.startswith("idemtest_")} == {d for d in after if not d.startswith("idemtest_")}


def test_close_runs_at_interpreter_exit(pg_dsn: str, admin: Any) -> None:
    code = (
        "from idemtest.sandbox.postgres import PostgresBackend\n"
        f"be = PostgresBackend({pg_dsn!r})\n"
        "sb = be.create()\n"
        "print(be.prefix)\n"
        "raise SystemExit(3)  # no close(): atexit must drop it\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stderr
    prefix = out.stdout.strip()
    assert prefix.startswith("idemtest_")
    assert not {d for d in databases(admin) if d.startswith(prefix)}


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://postgres:s3cretPW@127.0.0.1:1/postgres",
        "host=127.0.0.1 port=1 user=postgres password=s3cretPW dbname=postgres",
    ],
)
def test_password_never_in_errors(pg_dsn: str, dsn: str) -> None:
    from idemtest.sandbox.postgres import PostgresBackend

    with pytest.raises(BackendError) as info:
        PostgresBackend(dsn)
    text = str(info.value) + repr(info.value)
    assert "s3cretPW" not in text
    assert "***" in text and "127.0.0.1" in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_password_not_in_repr_or_description(pg_dsn: str) -> None:
    from idemtest.sandbox.postgres import PostgresBackend, make_url, parse_dsn

    params = parse_dsn(pg_dsn)
    if params.get("password"):
        pytest.skip("the test server DSN already has a password")
    dsn = make_url({**params, "password": "hunter2pw"})  # trust auth ignores it
    be = PostgresBackend(dsn)
    try:
        sb = be.create()
        assert "hunter2pw" in sb.dsn  # user code needs it
        for text in (repr(sb), be.describe(), str(sb.__dict__.get("name"))):
            assert "hunter2pw" not in text
        sb.close()
    finally:
        be.close()


def test_lock_timeout_turns_a_blocked_statement_into_an_error(pg_dsn: str) -> None:
    import psycopg

    from idemtest.instrument import Controller
    from idemtest.sandbox.postgres import PostgresBackend

    be = PostgresBackend(pg_dsn, lock_timeout_ms=300)
    try:
        sb = be.create()
        sb.execute("CREATE TABLE t (k int PRIMARY KEY, v int)")
        sb.execute("INSERT INTO t VALUES (1, 0)")
        holder = sb.connect(None)
        holder.execute("UPDATE t SET v = 1 WHERE k = 1")  # row lock held, not committed
        blocked = sb.connect(Controller("blocked"))
        t0 = time.perf_counter()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            blocked.execute("UPDATE t SET v = 2 WHERE k = 1")
        assert time.perf_counter() - t0 < 5
        blocked.rollback()
        assert blocked.execute("SHOW statement_timeout").fetchone()[0] == "5min"
        holder.close()
        blocked.close()
        sb.close()
    finally:
        be.close()


def test_default_lock_timeout_is_two_seconds(sandbox: Any) -> None:
    conn = sandbox.connect(None)
    assert conn.execute("SHOW lock_timeout").fetchone()[0] == "2s"
    conn.close()


def test_docker_backend_without_engine_says_what_to_do() -> None:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        pass
    else:
        pytest.skip("a Docker engine is reachable here; this test covers machines without one")
    from idemtest.sandbox import get_backend

    with pytest.raises(BackendError) as info:
        get_backend("postgres+docker")
    msg = str(info.value)
    assert "no Docker engine is reachable" in msg
    assert "--idem-db postgresql://user@host:5432/postgres" in msg


def test_get_backend_dispatches_postgres_urls(pg_dsn: str) -> None:
    from idemtest.sandbox import get_backend

    be = get_backend(pg_dsn)
    try:
        assert be.dialect == "postgres"
        assert be.describe().startswith("PostgreSQL ")
    finally:
        be.close()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
        ("SELECT ';' AS a; SELECT \"x;y\" FROM t", ["SELECT ';' AS a", 'SELECT "x;y" FROM t']),
        ("SELECT E'it\\'s; fine'; SELECT 2", ["SELECT E'it\\'s; fine'", "SELECT 2"]),
        ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT f()", ["CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", "SELECT f()"]),
        ("DO $body$ BEGIN PERFORM 1; END $body$; SELECT 1", ["DO $body$ BEGIN PERFORM 1; END $body$", "SELECT 1"]),
        ("-- a; comment\nSELECT 1; /* x; /* nested; */ y */ SELECT 2; -- tail", ["-- a; comment\nSELECT 1", "/* x; /* nested; */ y */ SELECT 2"]),
        ("SELECT $1; SELECT 2", ["SELECT $1", "SELECT 2"]),
    ],
)
def test_split_sql(script: str, expected: list[str]) -> None:
    from idemtest.sandbox.postgres import split_sql

    assert split_sql(script) == expected
