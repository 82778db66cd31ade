"""The SQL clock on PostgreSQL: every instrumented driver path reads the simulated
time, the literals mean what the functions mean in a (UTC) sandbox session, and the
SQL-`now()` pipelines are judged as on DuckDB."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import idemtest
from idemtest import Source, Spec, Target, hourly
from idemtest.engine.clock import frozen_at
from idemtest.instrument import Controller, activate
from idemtest.sandbox.sqlclock import FUNCTIONS, rewrite

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 6, 1, 1, 2, 3, tzinfo=timezone.utc)
VALUES = {
    "timestamptz": NOW,
    "timestamp": NOW.replace(tzinfo=None),
    "date": date(2026, 6, 1),
    "time": time(1, 2, 3),
    "timetz": time(1, 2, 3, tzinfo=timezone.utc),
}
RUN_NOW = datetime(2026, 6, 1, 1, 0)
RUN_NOW_UTC = RUN_NOW.replace(tzinfo=timezone.utc)


def spellings() -> list[str]:
    out = []
    for name, (_, forms) in FUNCTIONS["postgres"].items():
        for form in sorted(forms):
            call = {"bare": name, "call": f"{name}()", "precision": f"{name}(6)"}[form]
            out += [call, call.upper()]
    return out


@pytest.fixture(scope="module")
def shared(backend: Any) -> Iterator[Any]:
    """One sandbox for the read-only tests (a sandbox costs ~100 ms or more to make)."""
    sb = backend.create()
    yield sb
    sb.close()


@pytest.fixture
def sb(sandbox: Any) -> Any:
    sandbox.execute("CREATE TABLE t (id int PRIMARY KEY, ts timestamp)")
    sandbox.execute("INSERT INTO t VALUES (1, '2026-06-01 00:00'), (2, '2026-06-01 00:30'), (3, '2026-06-01 01:00')")
    return sandbox


def test_sandbox_sessions_are_utc(sb: Any) -> None:
    import psycopg
    import psycopg2

    assert sb.query("SHOW timezone")[1] == [("UTC",)]
    with psycopg.connect(sb.dsn) as c3:  # a connection user code opens itself
        assert c3.execute("SHOW timezone").fetchone() == ("UTC",)
    c2 = psycopg2.connect(sb.dsn)
    with c2.cursor() as cur:
        cur.execute("SHOW timezone")
        assert cur.fetchone() == ("UTC",)
    c2.close()


@pytest.mark.parametrize("call", spellings())
def test_literal_has_the_functions_type_and_the_simulated_value(shared: Any, call: str) -> None:
    sql_type = FUNCTIONS["postgres"][call.lower().split("(")[0]][0]
    [(real_type, _)] = shared.query(f"SELECT pg_typeof({call})::text, {call}")[1]
    [(lit_type, value)] = shared.query(rewrite(f"SELECT pg_typeof({call})::text, {call}", "postgres", NOW))[1]
    assert lit_type == real_type
    assert value == VALUES[sql_type]


def test_literal_compares_with_timestamp_columns_as_now_would(sb: Any) -> None:
    sql = "SELECT count(*) FROM t WHERE ts >= now() - INTERVAL '1 hour' AND ts < now() AND now()::date = current_date"
    assert sb.query(rewrite(sql, "postgres", RUN_NOW_UTC))[1] == [(2,)]


def test_psycopg3_paths_read_the_simulated_clock(sb: Any) -> None:
    import psycopg
    from psycopg import sql

    ctl = Controller("pg3")
    with frozen_at(RUN_NOW, tick=False), activate(ctl):  # stopped: every reading is exact
        conn = psycopg.connect(sb.dsn)  # run.dsn: user code's own connection
        assert conn.execute("SELECT now(), current_date, localtimestamp").fetchone() == (RUN_NOW_UTC, date(2026, 6, 1), RUN_NOW)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM t WHERE ts > now() - %s", [timedelta(minutes=45)])
            assert cur.fetchone() == (2,)
            cur.execute(sql.SQL("SELECT {}, statement_timestamp()").format(sql.Literal(1)))  # a Composed query
            assert cur.fetchone() == (1, RUN_NOW_UTC)
            # a script inside a transaction is split into statements: each is rewritten
            cur.execute("CREATE TABLE seen (seen_at timestamptz); INSERT INTO seen VALUES (now()); INSERT INTO seen SELECT clock_timestamp()")
            cur.executemany("INSERT INTO seen VALUES (transaction_timestamp() + %s)", [(timedelta(0),), (timedelta(0),)])
            buf = io.BytesIO()
            with cur.copy("COPY (SELECT current_timestamp) TO STDOUT") as cp:
                for chunk in cp:
                    buf.write(chunk)
            assert buf.getvalue() == b"2026-06-01 01:00:00+00\n"
        conn.commit()
        run_conn = sb.connect(ctl, kind=None)  # run.conn
        assert run_conn.execute("SELECT now()").fetchone() == (RUN_NOW_UTC,)
    ctl.close_all()
    assert sb.query("SELECT DISTINCT seen_at FROM seen")[1] == [(RUN_NOW_UTC,)]
    assert any(b.text == "SELECT now(), current_date, localtimestamp" for b in ctl.trace)  # reports keep the user's SQL


def test_psycopg2_and_sqlalchemy_read_the_simulated_clock(sb: Any) -> None:
    import psycopg2
    import sqlalchemy as sa

    from idemtest.sandbox import sqlalchemy_engine

    ctl = Controller("pg2")
    with frozen_at(RUN_NOW, tick=False), activate(ctl):  # stopped: every reading is exact
        conn = psycopg2.connect(sb.dsn)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT now(), current_date - %(days)s", {"days": 1})
            assert cur.fetchone() == (RUN_NOW_UTC, date(2026, 5, 31))
            cur.execute("CREATE TABLE seen2 (seen_at timestamptz); INSERT INTO seen2 VALUES (now())")
            out = io.StringIO()
            cur.copy_expert("COPY (SELECT localtime) TO STDOUT", out)
            assert out.getvalue() == "01:00:00\n"
        conn.close()
        engine = sqlalchemy_engine(sb, ctl)
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT now()")).scalar() == RUN_NOW_UTC
        engine.dispose()
        engine = sa.create_engine(sb.url_psycopg2)  # pandas-style: the user's own engine on run.url
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT CURRENT_TIMESTAMP")).scalar() == RUN_NOW_UTC
        engine.dispose()
    ctl.close_all()
    assert sb.query("SELECT seen_at FROM seen2")[1] == [(RUN_NOW_UTC,)]


def test_outside_a_run_the_real_clock(sb: Any) -> None:
    import psycopg

    with psycopg.connect(sb.dsn) as conn:
        (real,) = conn.execute("SELECT now()").fetchone()  # type: ignore[misc]
    assert abs(real - datetime.now(timezone.utc)) < timedelta(minutes=5)


# --- two pipelines, judged ------------------------------------------------------------------
SETUP = """
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.readings (id BIGINT PRIMARY KEY, v INTEGER, updated_at TIMESTAMP);
CREATE TABLE analytics.readings (id BIGINT PRIMARY KEY, v INTEGER, updated_at TIMESTAMP);
"""


def readings_spec(**kw: Any) -> Spec:
    return Spec(
        setup=SETUP,
        dialect="postgres",
        sources=[Source("src.readings", columns={"id": "BIGINT", "v": "INTEGER", "updated_at": "TIMESTAMP"}, key="id", event_time="updated_at", updates=False, max_rows=8)],
        targets=[Target("analytics.readings", key="id")],
        schedule=hourly("2026-06-01", periods=4),
        max_lateness="1h",
        **kw,
    )


SPEC = readings_spec()
ON_TIME = readings_spec(exercise={"duplicate", "backfill"})  # only late data can lose a row


def last_hour_by_sql_now(run: Any) -> None:
    """BUG: the last hour by the database's clock, no lookback; on the job's own psycopg2 connection."""
    import psycopg2

    conn = psycopg2.connect(run.dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO analytics.readings SELECT * FROM src.readings "
            "WHERE updated_at >= now() - INTERVAL '1 hour' "
            "ON CONFLICT (id) DO UPDATE SET v = excluded.v, updated_at = excluded.updated_at"
        )
    conn.close()


def watermark_until_sql_now(run: Any) -> None:
    """CORRECT: up to the database's clock, from the loaded watermark minus max_lateness; keyed upsert."""
    with run.conn.transaction():
        (db_now,) = run.conn.execute("SELECT now()").fetchone()
        # the clock ticks from the run's time: SQL's now is Python's now, a moment after run.now
        start = run.now.replace(tzinfo=timezone.utc)
        assert start <= db_now <= datetime.now(timezone.utc) < start + timedelta(seconds=30), f"SQL now() is {db_now}, the run's time is {run.now}"
        run.conn.execute(
            "INSERT INTO analytics.readings SELECT * FROM src.readings "
            "WHERE updated_at >= (SELECT coalesce(max(updated_at), TIMESTAMP '1970-01-01') FROM analytics.readings) - INTERVAL '1 hour' "
            "AND updated_at < now() "
            "ON CONFLICT (id) DO UPDATE SET v = excluded.v, updated_at = excluded.updated_at"
        )


def test_sql_now_last_hour_loses_late_rows(pg_dsn: str, tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(ON_TIME, last_hour_by_sql_now, db=pg_dsn, examples=200, failures_dir=tmp_path)
    exc = info.value
    assert exc.prop == "P1", exc.report
    (d,) = exc.diffs
    assert d.missing and not d.extra and not d.changed, exc.report
    late = {v.values["id"] for v in exc.scenario.data.sources["src.readings"] if v.arrival > v.values["updated_at"]}
    assert {r[d.columns.index("id")] for r in d.missing} <= late, exc.report


def test_watermark_bounded_by_sql_now_passes(pg_dsn: str, tmp_path: Path) -> None:
    stats = idemtest.verify(SPEC, watermark_until_sql_now, db=pg_dsn, examples=20, failures_dir=tmp_path, systematic_max=16)
    assert stats.scenarios >= 20 and stats.late_rows > 0
