"""Statement boundaries and crash semantics of psycopg 3, psycopg2 and SQLAlchemy/pandas
connections to a PostgreSQL sandbox (the Controller is driven directly)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from idemtest.instrument import Controller, Fault, InjectedCrash, activate

pytestmark = pytest.mark.postgres


def run(ctl: Controller, body: Callable[[], Any]) -> str:
    """Run `body` as a run of the load would: under `ctl`, connections dropped at the end."""
    with activate(ctl):
        try:
            body()
            outcome = "ok"
        except InjectedCrash:
            outcome = "crash"
        except Exception:
            # as the runner does: a library that turned the crash into its own error
            # (SQLAlchemy: PendingRollbackError) is still a dead process
            if ctl.crashed is None:
                raise
            outcome = "crash"
        finally:
            ctl.close_all()  # the process ends: open transactions are lost
    return outcome


def kinds(ctl: Controller) -> list[str]:
    return [b.kind for b in ctl.trace]


def index_of(ctl: Controller, kind: str, nth: int = 1) -> int:
    return [b.index for b in ctl.trace if b.kind == kind][nth - 1]


def count(sb: Any, table: str = "t") -> int:
    return int(sb.query(f"SELECT count(*) FROM {table}")[1][0][0])


@pytest.fixture
def sb(sandbox: Any) -> Any:
    sandbox.execute("CREATE TABLE t (k int PRIMARY KEY, v text)")
    return sandbox


# --- psycopg 3 ----------------------------------------------------------------
def pg3_load(sb: Any) -> Callable[[], None]:
    def body() -> None:
        import psycopg

        conn = psycopg.connect(sb.dsn)  # user code opens its own connection
        conn.execute("INSERT INTO t VALUES (1, 'a'); INSERT INTO t VALUES (2, 'b')")  # split: 2 boundaries
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO t VALUES (%s, %s)", [(3, "c"), (4, "d")])
            with cur.copy("COPY t FROM STDIN") as cp:
                cp.write_row((5, "e"))
        conn.commit()

    return body


def test_psycopg3_boundaries(sb: Any) -> None:
    import psycopg

    ctl = Controller("pg3")
    with activate(ctl):
        conn = psycopg.connect(sb.dsn)
        assert isinstance(conn, psycopg.Connection)
        conn.close()
    assert run(Controller("x"), pg3_load(sb)) == "ok"
    ctl = Controller("pg3")
    sb.execute("TRUNCATE t")
    assert run(ctl, pg3_load(sb)) == "ok"
    assert kinds(ctl) == ["connect", "execute", "execute", "executemany", "copy", "commit"]
    assert count(sb) == 5


def test_psycopg3_crash_before_commit_loses_after_commit_keeps(sb: Any) -> None:
    ctl = Controller("probe")
    run(ctl, pg3_load(sb))
    commit = index_of(ctl, "commit")
    for at, when, expected in [(commit, "before", 0), (commit, "after", 5), (2, "after", 0), (commit - 1, "after", 0)]:
        sb.execute("TRUNCATE t")
        assert run(Controller("c", Fault(at, when)), pg3_load(sb)) == "crash"
        assert count(sb) == expected, (at, when)


def test_psycopg3_crash_inside_transaction_block_loses_it(sb: Any) -> None:
    def body() -> None:
        conn = sb.connect(None)  # the run's own connection, as run.conn
        conn._idem_ctl = ctl_holder[0]
        ctl_holder[0].register(conn.close)
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES (1, 'a')")
            conn.execute("INSERT INTO t VALUES (2, 'b')")
        conn.execute("INSERT INTO t VALUES (3, 'c')")  # after the block: a new implicit transaction

    ctl_holder = [Controller("probe")]
    assert run(ctl_holder[0], body) == "ok"
    assert kinds(ctl_holder[0]) == ["begin", "execute", "execute", "commit", "execute"]
    assert count(sb) == 2  # the last INSERT was never committed: lost when the process ended
    for at, when, expected in [(2, "after", 0), (3, "after", 0), (4, "before", 0), (4, "after", 2)]:
        sb.execute("TRUNCATE t")
        ctl_holder[0] = Controller("c", Fault(at, when))
        assert run(ctl_holder[0], body) == "crash"
        assert count(sb) == expected, (at, when)


def test_run_connection_from_sandbox_connect(sb: Any) -> None:
    ctl = Controller("run")

    def body() -> None:
        conn = sb.connect(ctl, kind=None)  # the harness's run.conn: the connect is not a boundary
        conn.execute("INSERT INTO t VALUES (1, 'a')")
        conn.commit()
        conn.execute("INSERT INTO t VALUES (2, 'b')")
        conn.rollback()

    assert run(ctl, body) == "ok"
    assert kinds(ctl) == ["execute", "commit", "execute", "rollback"]
    assert count(sb) == 1


def test_autocommit_scripts_stay_whole(sb: Any) -> None:
    import psycopg

    ctl = Controller("ac")

    def body() -> None:
        conn = psycopg.connect(sb.dsn, autocommit=True)
        conn.execute("INSERT INTO t VALUES (1, 'a'); INSERT INTO t VALUES (2, 'b')")  # atomic on the server

    assert run(ctl, body) == "ok"
    assert kinds(ctl) == ["connect", "execute"]
    assert count(sb) == 2


def test_other_dsns_pass_through_outside_runs_and_when_allowed(sb: Any, pg_dsn: str) -> None:
    import psycopg
    import psycopg2

    from idemtest import LoadError
    from idemtest.sandbox.postgres.drivers import _pg3_classes

    c3 = psycopg.connect(pg_dsn)  # no run on this thread: test code, fixtures
    c2 = psycopg2.connect(pg_dsn)
    assert type(c3) is psycopg.Connection and not isinstance(c3, _pg3_classes()[0])
    assert type(c2) is psycopg2.extensions.connection
    c3.close()
    c2.close()
    ctl = Controller("other")
    with activate(ctl):
        # during a run a non-sandbox database is refused (tests/postgres/test_silent_greens.py) ...
        with pytest.raises(LoadError, match="which is not the sandbox"):
            psycopg.connect(pg_dsn)
        with pytest.raises(LoadError, match="which is not the sandbox"):
            psycopg2.connect(pg_dsn)
        # ... unless the spec allows it
        ctl.allow_foreign = (pg_dsn,)
        c3 = psycopg.connect(pg_dsn)
        c2 = psycopg2.connect(pg_dsn)
    assert type(c3) is psycopg.Connection and type(c2) is psycopg2.extensions.connection
    c3.close()
    c2.close()
    assert ctl.count == 0


# --- psycopg2 ------------------------------------------------------------------
def pg2_load(dsn: Any) -> Callable[[], None]:
    def body() -> None:
        import psycopg2
        import psycopg2.extras

        conn = psycopg2.connect(**dsn) if isinstance(dsn, dict) else psycopg2.connect(dsn)
        # psycopg2: `with conn` commits at the end of the block
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("INSERT INTO t VALUES (%s, %s)", (1, "a"))
            psycopg2.extras.execute_values(cur, "INSERT INTO t VALUES %s", [(2, "b"), (3, "c")])
        conn.close()

    return body


@pytest.mark.parametrize("form", ["url", "keyvalue", "kwargs"])
def test_psycopg2_boundaries_and_crashes(sb: Any, form: str) -> None:
    import psycopg2

    from idemtest.sandbox.postgres.drivers import _pg2_classes

    p = sb.params
    dsn: Any = {"url": sb.dsn, "keyvalue": f"host={p['host']} port={p.get('port', 5432)} dbname={sb.dbname} user={p['user']}", "kwargs": {"host": p["host"], "port": p.get("port", "5432"), "database": sb.dbname, "user": p["user"]}}[form]
    ctl = Controller("pg2")
    with activate(ctl):
        conn = psycopg2.connect(**dsn) if isinstance(dsn, dict) else psycopg2.connect(dsn)
    assert isinstance(conn, psycopg2.extensions.connection) and isinstance(conn, _pg2_classes()[0])
    conn.close()

    ctl = Controller("probe")
    assert run(ctl, pg2_load(dsn)) == "ok"
    assert kinds(ctl) == ["connect", "execute", "execute", "commit"]
    assert count(sb) == 3
    for at, when, expected in [(4, "before", 0), (4, "after", 3), (2, "after", 0)]:
        sb.execute("TRUNCATE t")
        assert run(Controller("c", Fault(at, when)), pg2_load(dsn)) == "crash"
        assert count(sb) == expected, (form, at, when)


# --- SQLAlchemy and pandas ---------------------------------------------------------
def to_sql_load(url: str, rows: int = 50) -> Callable[[], None]:
    def body() -> None:
        import pandas as pd
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        df = pd.DataFrame({"k": range(rows), "v": [str(i) for i in range(rows)]})
        df.to_sql("t", engine, if_exists="append", index=False)
        engine.dispose()

    return body


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_pandas_to_sql_through_sqlalchemy(sb: Any, driver: str) -> None:
    url = sb.url if driver == "psycopg" else sb.url_psycopg2
    assert url.startswith(f"postgresql+{driver}://")
    ctl = Controller("probe")
    assert run(ctl, to_sql_load(url)) == "ok"
    assert count(sb) == 50
    assert "connect" in kinds(ctl)
    insert = next(b.index for b in ctl.trace if "INSERT INTO t" in b.text)
    commit = next(b.index for b in ctl.trace if b.kind == "commit" and b.index > insert)
    for at, when, expected in [(insert, "after", 0), (commit, "before", 0), (commit, "after", 50)]:
        sb.execute("TRUNCATE t")
        assert run(Controller("c", Fault(at, when)), to_sql_load(url)) == "crash"
        assert count(sb) == expected, (driver, at, when)


def test_sqlalchemy_engine_helper(sb: Any) -> None:
    import sqlalchemy as sa

    from idemtest.sandbox import sqlalchemy_engine

    ctl = Controller("sa")

    def body() -> None:
        engine = sqlalchemy_engine(sb, ctl)
        with engine.begin() as c:
            c.execute(sa.text("INSERT INTO t VALUES (1, 'a')"))

    assert run(ctl, body) == "ok"
    assert count(sb) == 1
    assert "commit" in kinds(ctl)
