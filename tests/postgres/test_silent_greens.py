"""Loads that used to pass while proving nothing, on the real server: one that
writes to another database through a hard-coded DSN, and one that never
commits. Each is an error naming the fix; the correct forms still pass."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import idemtest
from idemtest import Source, Spec, Stats, Target, hourly
from idemtest.sandbox.postgres.dsn import make_url, parse_dsn

from .conftest import unique

pytestmark = pytest.mark.postgres

SENTINEL = "Foreign-pw-9Z"  # trust auth ignores it; it must never be printed

SETUP = """
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, amount NUMERIC(12,2), updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT PRIMARY KEY, amount NUMERIC(12,2), updated_at TIMESTAMP);
"""

SPEC = Spec(
    setup=SETUP,
    sources=[Source("src.orders", columns={"order_id": "BIGINT", "amount": "NUMERIC(12,2)", "updated_at": "TIMESTAMP"}, key="order_id", event_time="updated_at", max_rows=4)],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=2),
    concurrency="none",
)

CRASHES = Spec(**{**dict(setup=SETUP, sources=SPEC.sources, targets=SPEC.targets, schedule=SPEC.schedule), "exercise": ["crash"]})

UPSERT = (
    "INSERT INTO analytics.orders SELECT * FROM src.orders ON CONFLICT (order_id) DO UPDATE "
    "SET amount = excluded.amount, updated_at = excluded.updated_at WHERE excluded.updated_at > analytics.orders.updated_at"
)


@pytest.fixture
def foreign(pg_dsn: str, admin: Any) -> Iterator[str]:
    """A database that is not a sandbox (as a user's `test` database would be), with a
    table a misdirected load would write to; its DSN carries a sentinel password."""
    name = unique("idemforeign_")
    admin.execute(f'CREATE DATABASE "{name}"')
    params = {**parse_dsn(pg_dsn), "dbname": name, "password": SENTINEL}
    import psycopg

    with psycopg.connect(make_url(params), autocommit=True) as c:
        c.execute("CREATE TABLE landed (order_id BIGINT, amount NUMERIC(12,2), updated_at TIMESTAMP)")
        c.execute("CREATE TABLE rates (k int, rate NUMERIC)")
        c.execute("INSERT INTO rates VALUES (1, 2)")
    yield make_url(params)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def verify(spec: Spec, load: Callable[[Any], None], backend: Any, tmp_path: Path, systematic_max: int = 6) -> Stats:
    """The systematic pass (a clean run, then single-fault scenarios on fixed data) of
    idemtest.verify, thinned, on the module's backend: one server set-up per file and
    a few seconds per check on a busy machine."""
    from idemtest.engine.search import Checker, Config

    config = Config(db=backend.dsn, failures_dir=tmp_path, backend=backend, systematic_max=systematic_max, shrink_seconds=0)
    Checker(spec, load, config).run_systematic()
    return config.stats


def landed(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as c:
        return int(c.execute("SELECT count(*) FROM landed").fetchone()[0])  # type: ignore[index]


def writes_through(how: str, dsn: str) -> Callable[[Any], None]:
    """A load that upserts into the sandbox and also copies rows to the hard-coded `dsn`."""

    def load(run: Any) -> None:
        run.conn.execute(UPSERT)
        run.conn.commit()
        rows = run.conn.execute("SELECT * FROM src.orders").fetchall()
        if how == "psycopg":
            import psycopg

            with psycopg.connect(dsn) as c:
                c.cursor().executemany("INSERT INTO landed VALUES (%s, %s, %s)", rows)
        elif how == "psycopg2":
            import psycopg2

            c2 = psycopg2.connect(dsn)
            with c2, c2.cursor() as cur:
                cur.executemany("INSERT INTO landed VALUES (%s, %s, %s)", rows)
            c2.close()
        elif how == "psycopg key=value":
            import psycopg

            p = parse_dsn(dsn)
            with psycopg.connect(f"host={p['host']} port={p['port']} user={p['user']} dbname={p['dbname']} password='{SENTINEL}'") as c:
                c.cursor().executemany("INSERT INTO landed VALUES (%s, %s, %s)", rows)
        elif how.startswith("sqlalchemy"):
            import sqlalchemy as sa

            driver = how.split()[1]
            engine = sa.create_engine(dsn.replace("postgresql://", f"postgresql+{driver}://"))
            with engine.begin() as c:
                for r in rows:
                    c.execute(sa.text("INSERT INTO landed VALUES (:a, :b, :c)"), {"a": r[0], "b": r[1], "c": r[2]})
            engine.dispose()
        elif how == "caught":
            import psycopg

            try:  # a load that swallows the refusal still fails its run
                with psycopg.connect(dsn) as c:
                    c.cursor().executemany("INSERT INTO landed VALUES (%s, %s, %s)", rows)
            except Exception:
                pass

    return load


@pytest.mark.parametrize("how", ["psycopg", "psycopg2", "psycopg key=value", "sqlalchemy psycopg", "sqlalchemy psycopg2", "caught"])
def test_a_load_writing_to_another_database_is_an_error(backend: Any, foreign: str, tmp_path: Path, how: str) -> None:
    with pytest.raises(idemtest.LoadError) as info:
        verify(SPEC, writes_through(how, foreign), backend, tmp_path)
    err = info.value
    assert type(err).__name__ == "ForeignDatabaseError"
    text = str(err)
    name = parse_dsn(foreign)["dbname"]
    assert f"the load connected to the PostgreSQL database postgresql://{parse_dsn(foreign)['user']}@" in text and f"/{name}" in text
    assert "run.conn, run.dsn, run.url" in text and "allow_foreign" in text
    assert SENTINEL not in text
    assert landed(foreign) == 0  # refused before connecting: nothing reached it


def test_a_foreign_database_the_spec_allows_can_be_read(backend: Any, foreign: str, tmp_path: Path) -> None:
    import psycopg

    def with_rates(run: Any) -> None:
        with psycopg.connect(foreign) as c:  # a read-only lookup the spec declares
            rate = c.execute("SELECT rate FROM rates WHERE k = 1").fetchone()[0]  # type: ignore[index]
        run.conn.execute(UPSERT.replace("SELECT * FROM src.orders", f"SELECT order_id, amount * {rate}, updated_at FROM src.orders"))
        run.conn.commit()

    p = parse_dsn(foreign)
    allowed = Spec(**{**_spec_args(SPEC), "allow_foreign": [f"postgresql://{p['host']}:{p['port']}/{p['dbname']}"]})
    verify(allowed, with_rates, backend, tmp_path)
    with pytest.raises(idemtest.LoadError, match="allow_foreign"):
        verify(SPEC, with_rates, backend, tmp_path)


def _spec_args(spec: Spec) -> dict[str, Any]:
    return dict(setup=spec.setup, sources=spec.sources, targets=spec.targets, schedule=spec.schedule, concurrency=spec.concurrency)


def test_connections_outside_runs_keep_working(pg_dsn: str, foreign: str) -> None:
    """The patches are installed while a backend is open; test code and fixtures still
    reach any database, and the harness's own connections are not the load's."""
    import psycopg
    import psycopg2

    from idemtest.sandbox.postgres import PostgresBackend

    be = PostgresBackend(pg_dsn)
    try:
        sb = be.create()
        with psycopg.connect(foreign) as c:
            assert c.execute("SELECT count(*) FROM rates").fetchone() == (1,)
        c2 = psycopg2.connect(foreign)
        with c2.cursor() as cur:
            cur.execute("SELECT count(*) FROM rates")
            assert cur.fetchone() == (1,)
        c2.close()
        assert sb.query("SELECT 1")[1] == [(1,)]
        sb.close()
    finally:
        be.close()


# --- a load that never commits ----------------------------------------------------
def never_commits(driver: str) -> Callable[[Any], None]:
    def load(run: Any) -> None:
        if driver == "run.conn":
            run.conn.execute(UPSERT)  # psycopg 3 is not in autocommit mode: no commit, nothing lands
        elif driver == "psycopg":
            import psycopg

            c = psycopg.connect(run.dsn)
            c.execute(UPSERT)  # the connection is left open, its transaction too
        elif driver == "psycopg2":
            import psycopg2

            c2 = psycopg2.connect(run.dsn)
            c2.cursor().execute(UPSERT)
        elif driver == "state":
            run.conn.execute(UPSERT)
            run.conn.commit()
            run.state["watermark"] = run.window.end.isoformat()  # the watermark is never committed
        elif driver == "failed":
            import psycopg

            run.conn.execute(UPSERT)
            run.conn.commit()
            try:
                run.conn.execute("SELECT * FROM no_such_table")
            except psycopg.Error:
                pass  # swallowed, and the failed transaction is never rolled back

    return load


@pytest.mark.parametrize(("driver", "what"), [
    ("run.conn", r"a transaction that wrote and was never committed on run\.conn"),
    ("psycopg", r"a transaction that wrote and was never committed on a psycopg connection the load opened to the sandbox"),
    ("psycopg2", r"a transaction that wrote and was never committed on a psycopg2 connection the load opened to the sandbox"),
    ("state", r"a transaction that wrote and was never committed on run\.conn"),
    ("failed", r"a failed transaction .* on run\.conn"),
])
def test_a_load_that_never_commits_is_an_error(backend: Any, tmp_path: Path, driver: str, what: str) -> None:
    with pytest.raises(idemtest.LoadError) as info:
        verify(SPEC, never_commits(driver), backend, tmp_path)
    assert type(info.value).__name__ == "OpenTransactionError"
    assert info.value.__class__.__mro__[1] is idemtest.LoadError
    import re

    assert re.search(rf"the load left {what}; commit it \(or use `with conn:` / autocommit\)", str(info.value)), str(info.value)


def reads_then_writes_elsewhere(run: Any) -> None:
    """Reads on run.conn (a read-only transaction stays open: harmless) and writes,
    committed, on its own connection: no false alarm."""
    import psycopg

    run.conn.execute("SELECT count(*) FROM src.orders").fetchone()
    _ = run.state.get("watermark")
    with psycopg.connect(run.dsn) as c:  # `with` commits at the end
        c.execute(UPSERT)


def crash_safe(run: Any) -> None:
    with run.conn.transaction():
        run.conn.execute(UPSERT)


@pytest.mark.parametrize("load", [reads_then_writes_elsewhere, crash_safe], ids=["read-only transaction left open", "crashed attempts leave theirs open"])
def test_correct_loads_are_not_flagged(backend: Any, tmp_path: Path, load: Callable[[Any], None]) -> None:
    stats = verify(CRASHES, load, backend, tmp_path)
    assert stats.crashes > 0  # crashes inside transactions happened, and were not reported as open ones
