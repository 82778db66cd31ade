"""The SQL clock: SQL's clock functions read the run's simulated time.

Unit tests of the rewrite (both dialects), the instrumented DuckDB paths, and two
pipelines judged end to end: a load that takes "the last hour" by SQL `now()` loses
late rows and is caught; its twin, an event-time watermark with a lookback bounded
above by SQL `now()`, passes. Both only make sense if `now()` is the simulated time."""

from __future__ import annotations

import subprocess
import sys
import threading
import time as pytime
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

import idemtest
from idemtest import Source, Spec, Target, hourly
from idemtest.engine.clock import frozen_at, sql_now
from idemtest.instrument import Controller, activate
from idemtest.sandbox import sqlclock
from idemtest.sandbox.duckdb import DuckDBBackend
from idemtest.sandbox.sqlclock import FUNCTIONS, clocked, rewrite

NOW = datetime(2026, 6, 1, 1, 2, 3, tzinfo=timezone.utc)
TS = "2026-06-01 01:02:03"
LITERALS = {
    "timestamptz": f"TIMESTAMPTZ '{TS}+00'",
    "timestamp": f"TIMESTAMP '{TS}'",
    "date": "DATE '2026-06-01'",
    "time": "TIME '01:02:03'",
    "timetz": "TIMETZ '01:02:03+00'",
}
VALUES = {  # what the database returns for each literal, in a UTC session
    "timestamptz": NOW,
    "timestamp": NOW.replace(tzinfo=None),
    "date": date(2026, 6, 1),
    "time": time(1, 2, 3),
    "timetz": time(1, 2, 3, tzinfo=timezone.utc),
}


def spellings(dialect: str) -> list[tuple[str, str, str]]:
    """(dialect, SQL spelling, type) for every form the dialect accepts, in two cases."""
    out = []
    for name, (sql_type, forms) in FUNCTIONS[dialect].items():
        for form in sorted(forms):
            text = {"bare": name, "call": f"{name}()", "precision": f"{name}(6)"}[form]
            out += [(dialect, text, sql_type), (dialect, text.upper(), sql_type)]
    return out


ALL_SPELLINGS = spellings("duckdb") + spellings("postgres")


# --- the rewrite -------------------------------------------------------------------------
@pytest.mark.parametrize(("dialect", "call", "sql_type"), ALL_SPELLINGS)
def test_each_spelling_becomes_a_literal_of_its_type(dialect: str, call: str, sql_type: str) -> None:
    assert rewrite(f"SELECT {call} AS t FROM x", dialect, NOW) == f"SELECT {LITERALS[sql_type]} AS t FROM x"


def test_every_listed_function_has_a_spelling_on_some_dialect() -> None:
    names = {n for d in FUNCTIONS.values() for n in d}
    for name in ["now", "current_timestamp", "current_date", "current_time", "localtimestamp", "localtime",
                 "transaction_timestamp", "statement_timestamp", "clock_timestamp", "get_current_timestamp", "today"]:
        assert name in names


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_arithmetic_and_comparisons_keep_their_shape(dialect: str) -> None:
    sql = "INSERT INTO t SELECT * FROM s WHERE updated_at >= now() - INTERVAL '1 hour' AND d > current_date - 1"
    assert rewrite(sql, dialect, NOW) == (
        f"INSERT INTO t SELECT * FROM s WHERE updated_at >= TIMESTAMPTZ '{TS}+00' - INTERVAL '1 hour' AND d > DATE '2026-06-01' - 1"
    )


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("duckdb", "SELECT 'now()', 'current_date' AS now_flag FROM t"),  # strings
        ("duckdb", 'SELECT "now", "today" AS "current_date" FROM t'),  # quoted identifiers
        ("duckdb", "SELECT now_flag, today, is_now, nowhere FROM t"),  # other words, or a column named today
        ("duckdb", "SELECT x.now() FROM t -- now()\n/* current_date */"),  # qualified; comments
        ("postgres", "SELECT $$ now() $$, E'now()', 'today'::text, now_flag FROM t"),
        ("postgres", 'SELECT "now", "current_date" FROM t'),
        ("postgres", "SELECT pg_catalog.now()"),  # qualified calls keep the real clock (README)
    ],
)
def test_strings_identifiers_and_comments_are_untouched(dialect: str, sql: str) -> None:
    assert rewrite(sql, dialect, NOW) == sql


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("duckdb", "SELECT now( FROM t"),  # a syntax error: the database reports it
        ("postgres", "SELECT now() FROM t WHERE"),
        ("duckdb", "SELECT 'now()"),  # unterminated string: sqlglot cannot even tokenize it
        ("duckdb", "SELECT current_timestamp()"),  # not a DuckDB spelling: DuckDB's own error must show
        ("duckdb", "SELECT statement_timestamp()"),  # a PostgreSQL function DuckDB lacks
        ("postgres", "SELECT today()"),
        ("postgres", "SELECT now(1)"),  # arguments: not the clock function
    ],
)
def test_unparsable_or_foreign_sql_is_unchanged(dialect: str, sql: str) -> None:
    assert rewrite(sql, dialect, NOW) == sql


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("duckdb", "CREATE TABLE t (id INT, loaded_at TIMESTAMPTZ DEFAULT now())"),
        ("postgres", "ALTER TABLE t ALTER COLUMN loaded_at SET DEFAULT current_timestamp"),
        ("postgres", "ALTER TABLE t ADD COLUMN d date DEFAULT current_date"),
        ("duckdb", "CREATE VIEW recent AS SELECT * FROM t WHERE ts > now() - INTERVAL 1 HOUR"),
        ("duckdb", "CREATE MACRO stamp() AS now()"),
    ],
)
def test_stored_definitions_keep_the_real_clock(dialect: str, sql: str) -> None:
    # a literal there would freeze one run's time into the schema for every later run
    assert rewrite(sql, dialect, NOW) == sql


def test_statements_that_run_once_are_rewritten() -> None:
    assert rewrite("CREATE TABLE t AS SELECT now() AS ts", "duckdb", NOW) == f"CREATE TABLE t AS SELECT TIMESTAMPTZ '{TS}+00' AS ts"
    assert rewrite("UPDATE t SET seen = now(); DELETE FROM u WHERE d < current_date", "postgres", NOW) == (
        f"UPDATE t SET seen = TIMESTAMPTZ '{TS}+00'; DELETE FROM u WHERE d < DATE '2026-06-01'"
    )


@pytest.mark.parametrize(
    ("dialect", "params"),
    [("duckdb", "?"), ("duckdb", "$1"), ("duckdb", "$since"), ("postgres", "%s"), ("postgres", "%(since)s"), ("postgres", "$1")],
)
def test_placeholders_and_the_rest_of_the_text_pass_byte_for_byte(dialect: str, params: str) -> None:
    sql = f"select *  from s\n  where updated_at >= {params}   AND updated_at < NOW()  -- the hour\n"
    assert rewrite(sql, dialect, NOW) == sql.replace("NOW()", f"TIMESTAMPTZ '{TS}+00'")


def test_precision_rounds_like_postgresql() -> None:
    t = datetime(2026, 6, 1, 1, 2, 3, 987654, tzinfo=timezone.utc)
    assert rewrite("SELECT current_timestamp(0), localtime(3)", "postgres", t) == "SELECT TIMESTAMPTZ '2026-06-01 01:02:04+00', TIME '01:02:03.988000'"
    assert rewrite("SELECT now()", "postgres", t) == "SELECT TIMESTAMPTZ '2026-06-01 01:02:03.987654+00'"


def test_an_aware_time_in_another_zone_is_written_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    assert rewrite("SELECT now(), current_date", "duckdb", datetime(2026, 6, 1, 1, 0, tzinfo=paris)) == (
        "SELECT TIMESTAMPTZ '2026-05-31 23:00:00+00', DATE '2026-05-31'"
    )


def test_relation_fragments() -> None:
    assert rewrite("updated_at >= now() - INTERVAL 1 HOUR", "duckdb", NOW, fragment=True) == f"updated_at >= TIMESTAMPTZ '{TS}+00' - INTERVAL 1 HOUR"


# --- when the rewrite applies, and what it costs ---------------------------------------------
def _near(t: Any, start: datetime, within: timedelta = timedelta(seconds=5)) -> bool:
    start = start.replace(tzinfo=timezone.utc)
    return t is not None and start <= t < start + within


def test_sql_now_follows_the_ticking_clock_across_threads() -> None:
    """The clock starts at the run's time and ticks with real time: SQL's now and
    Python's now agree (read in order, they never go backwards), in every thread."""
    assert sql_now() is None
    seen: list[Any] = []
    with frozen_at(datetime(2026, 6, 1, 1)) as clock:
        a = datetime.now(timezone.utc)
        b = sql_now()
        c = datetime.now(timezone.utc)
        assert _near(a, datetime(2026, 6, 1, 1)) and a <= b <= c  # type: ignore[operator]
        worker = threading.Thread(target=lambda: seen.append(sql_now()))  # attempts run in worker threads
        worker.start()
        worker.join()
        with frozen_at(datetime(2026, 6, 1, 2)):
            assert _near(sql_now(), datetime(2026, 6, 1, 2))
        assert _near(sql_now(), datetime(2026, 6, 1, 1))
        clock.move_to(datetime(2026, 6, 1, 3))
        assert _near(sql_now(), datetime(2026, 6, 1, 3)) and sql_now() <= datetime.now(timezone.utc)  # type: ignore[operator]
    assert len(seen) == 1 and _near(seen[0], datetime(2026, 6, 1, 1)) and seen[0] >= c
    assert sql_now() is None


def test_two_clock_readings_in_one_run_differ_and_stay_ordered() -> None:
    """dlt's load id is str(time.time()): two loads of one run must not collide."""
    with frozen_at(datetime(2026, 6, 1, 1)):
        ids = [str(pytime.time()) for _ in range(3)]
        pytime.sleep(0.001)
        ids.append(str(pytime.time()))
    assert len(set(ids)) == len(ids) and [float(i) for i in ids] == sorted(float(i) for i in ids)
    assert datetime(2026, 6, 1, 1, tzinfo=timezone.utc).timestamp() <= float(ids[0]) < datetime(2026, 6, 1, 1, 0, 5, tzinfo=timezone.utc).timestamp()


def test_a_stopped_clock_is_still_available() -> None:
    with frozen_at(datetime(2026, 6, 1, 1), tick=False):
        assert sql_now() == datetime(2026, 6, 1, 1, tzinfo=timezone.utc) == datetime.now(timezone.utc)


def test_outside_a_run_nothing_is_rewritten() -> None:
    sql = "SELECT now()"
    assert clocked(sql, "duckdb") is sql
    with frozen_at(NOW):
        assert clocked(sql, "duckdb") == f"SELECT TIMESTAMPTZ '{TS}+00'"


def test_statements_without_a_clock_call_skip_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = sqlclock._rewrite
    monkeypatch.setattr(sqlclock, "_rewrite", lambda sql, *a: calls.append(sql) or real(sql, *a))
    plain = "INSERT INTO analytics.orders SELECT * FROM src.orders WHERE updated_at >= ? AND updated_at < ?"
    with frozen_at(NOW):
        assert clocked(plain, "duckdb") is plain
        assert calls == []
        clocked("SELECT now()", "duckdb")
    assert calls == ["SELECT now()"]


def test_the_fast_path_never_imports_sqlglot() -> None:
    code = (
        "import sys\n"
        "from datetime import datetime\n"
        "from idemtest.engine.clock import frozen_at\n"
        "from idemtest.instrument import Controller\n"
        "from idemtest.sandbox.duckdb import DuckDBBackend\n"
        "be = DuckDBBackend(); sb = be.create(); conn = sb.connect(Controller('t'), kind=None)\n"
        "with frozen_at(datetime(2026, 6, 1)):\n"
        "    conn.execute('CREATE TABLE t AS SELECT 1 AS a; INSERT INTO t VALUES (2)')\n"
        "    conn.sql('SELECT * FROM t').fetchall()\n"
        "    before = 'sqlglot' in sys.modules\n"
        "    conn.execute('SELECT now()')\n"
        "print(before, 'sqlglot' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_rewrites_are_cached() -> None:
    sql = "SELECT now() AS cached_probe"
    at = datetime(2026, 6, 2, tzinfo=timezone.utc)
    before = sqlclock._plan.cache_info()
    first, second = rewrite(sql, "duckdb", at), rewrite(sql, "duckdb", at)
    after = sqlclock._plan.cache_info()
    assert first == second
    assert after.hits == before.hits + 1


def test_sqlglot_warnings_about_user_sql_stay_quiet(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="sqlglot"):
        assert rewrite("PREPARE p AS SELECT now()", "duckdb", NOW) == "PREPARE p AS SELECT now()"
    assert caplog.records == []


# --- the literal means what the function means, on real DuckDB ------------------------------
@pytest.mark.parametrize("call", [c for _, c, _ in spellings("duckdb")])
def test_duckdb_literal_has_the_functions_type_and_the_simulated_value(call: str) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    sql_type = FUNCTIONS["duckdb"][call.lower().split("(")[0]][0]
    real_type, _ = con.execute(f"SELECT typeof({call}), {call}").fetchone()  # type: ignore[misc]
    lit_type, value = con.execute(rewrite(f"SELECT typeof({call}), {call}", "duckdb", NOW)).fetchone()  # type: ignore[misc]
    assert lit_type == real_type
    assert value == VALUES[sql_type]
    con.close()


# --- through the instrumented DuckDB connections ------------------------------------------------
@pytest.fixture
def sandbox() -> Iterator[Any]:
    backend = DuckDBBackend()
    sb = backend.create()
    sb.execute("CREATE TABLE t (id BIGINT, ts TIMESTAMP)")
    sb.execute("INSERT INTO t VALUES (1, '2026-06-01 00:00:00'), (2, '2026-06-01 00:30:00'), (3, '2026-06-01 01:00:00')")
    yield sb
    sb.close()
    backend.close()


RUN_NOW = datetime(2026, 6, 1, 1, 0)
RUN_NOW_UTC = RUN_NOW.replace(tzinfo=timezone.utc)


def test_duckdb_sessions_are_utc(sandbox: Any) -> None:
    assert sandbox.connect(None).execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)


def test_every_duckdb_statement_path_reads_the_simulated_clock(sandbox: Any) -> None:
    ctl = Controller("t")
    conn = sandbox.connect(ctl, kind=None)
    # a stopped clock makes every reading exact; the ticking one is checked below
    with frozen_at(RUN_NOW, tick=False), activate(ctl):
        assert conn.execute("SELECT now(), current_date, today()").fetchall() == [(RUN_NOW_UTC, date(2026, 6, 1), date(2026, 6, 1))]
        assert conn.execute("SELECT count(*) FROM t WHERE ts >= now() - INTERVAL '1 hour'").fetchall() == [(3,)]
        assert conn.execute("SELECT count(*) FROM t WHERE ts > now() - ?", [timedelta(minutes=45)]).fetchall() == [(2,)]
        assert conn.sql("SELECT now()").fetchall() == [(RUN_NOW_UTC,)]
        assert conn.query("SELECT localtimestamp").fetchall() == [(RUN_NOW,)]
        assert conn.table("t").filter("ts < now() - INTERVAL 45 MINUTE").fetchall() == [(1, datetime(2026, 6, 1, 0, 0))]
        conn.execute("CREATE TABLE seen (seen_at TIMESTAMPTZ); INSERT INTO seen SELECT now(); INSERT INTO seen VALUES (current_timestamp)").fetchall()
        conn.executemany("INSERT INTO seen SELECT now() + ?", [[timedelta(0)], [timedelta(0)]]).fetchall()
        cur = conn.cursor()
        assert cur.execute("SELECT get_current_timestamp()").fetchall() == [(RUN_NOW_UTC,)]
        own = duckdb.connect(sandbox.path)  # a pipeline's own connection to run.path
        assert own.execute("SELECT transaction_timestamp()").fetchall() == [(RUN_NOW_UTC,)]
    assert sandbox.query("SELECT DISTINCT seen_at FROM seen")[1] == [(RUN_NOW_UTC,)]
    # the trace (crash reports) shows the statement as the user wrote it
    assert any(b.text == "SELECT now(), current_date, today()" for b in ctl.trace)
    # outside the run the same connection reads the real clock again
    assert conn.execute("SELECT now()").fetchone()[0] != RUN_NOW_UTC


def test_sql_now_agrees_with_python_now_while_the_clock_ticks(sandbox: Any) -> None:
    ctl = Controller("t")
    conn = sandbox.connect(ctl, kind=None)
    with frozen_at(RUN_NOW), activate(ctl):
        before = datetime.now(timezone.utc)
        (first,) = conn.execute("SELECT now()").fetchone()
        pytime.sleep(0.002)
        (second,) = conn.execute("SELECT now()").fetchone()
        after = datetime.now(timezone.utc)
    assert RUN_NOW_UTC <= before <= first < second <= after < RUN_NOW_UTC + timedelta(seconds=5)


def test_each_run_reads_its_own_time(sandbox: Any) -> None:
    conn = sandbox.connect(Controller("t"), kind=None)
    for hour in (1, 2, 3):
        with frozen_at(datetime(2026, 6, 1, hour)):
            (now,) = conn.execute("SELECT now()").fetchone()
            assert _near(now, datetime(2026, 6, 1, hour))


# --- two pipelines, judged ------------------------------------------------------------------
SETUP = """
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.readings (id BIGINT PRIMARY KEY, v INTEGER, updated_at TIMESTAMP);
CREATE TABLE analytics.readings (id BIGINT PRIMARY KEY, v INTEGER, updated_at TIMESTAMP);
"""


def readings_spec(**kw: Any) -> Spec:
    args: dict[str, Any] = dict(
        setup=SETUP,
        sources=[Source("src.readings", columns={"id": "BIGINT", "v": "INTEGER", "updated_at": "TIMESTAMP"}, key="id", event_time="updated_at", updates=False, max_rows=8)],
        targets=[Target("analytics.readings", key="id")],
        schedule=hourly("2026-06-01", periods=4),
        max_lateness="1h",
    )
    return Spec(**{**args, **kw})


SPEC = readings_spec()
# Runs on time only: a crash's retry or a catch-up also moves "the last hour" and loses
# rows, so with those the minimal failure may not be the late row this test is about.
ON_TIME = readings_spec(exercise={"duplicate", "backfill"})


def last_hour_by_sql_now(run: Any) -> None:
    """BUG: "everything updated in the last hour" by the database's clock, no lookback.
    A row that lands late — more than an hour after its `updated_at` has passed the
    run that could see it — is never loaded. Keyed upsert, so nothing else is wrong."""
    run.conn.execute(
        "INSERT INTO analytics.readings SELECT * FROM src.readings "
        "WHERE updated_at >= now() - INTERVAL '1 hour' "
        "ON CONFLICT (id) DO UPDATE SET v = excluded.v, updated_at = excluded.updated_at"
    )


def watermark_until_sql_now(run: Any) -> None:
    """CORRECT: everything up to the database's clock, from the largest `updated_at`
    already loaded minus a lookback of max_lateness; a keyed upsert makes re-reading
    the lookback (retries, duplicates, backfills, catch-up) harmless."""
    (db_now,) = run.conn.execute("SELECT now()").fetchone()
    assert db_now == run.now.replace(tzinfo=timezone.utc), f"SQL now() is {db_now}, the run's time is {run.now}"
    run.conn.execute(
        "INSERT INTO analytics.readings SELECT * FROM src.readings "
        "WHERE updated_at >= (SELECT coalesce(max(updated_at), TIMESTAMP '1970-01-01') FROM analytics.readings) - INTERVAL '1 hour' "
        "AND updated_at < now() "
        "ON CONFLICT (id) DO UPDATE SET v = excluded.v, updated_at = excluded.updated_at"
    )


def late_row_missing(exc: idemtest.IdempotencyViolation) -> None:
    """P1, and the diff's missing rows are rows that arrived after their hour had been loaded."""
    assert exc.prop == "P1", exc.report
    (d,) = [d for d in exc.diffs if d.target == "analytics.readings"]
    assert d.missing and not d.extra and not d.changed, exc.report
    versions = exc.scenario.data.sources["src.readings"]
    late = {v.values["id"] for v in versions if v.arrival - v.values["updated_at"] > timedelta(0)}
    assert {r[d.columns.index("id")] for r in d.missing} <= late, exc.report
    assert "missing (in the clean run, not after the scenario)" in exc.report, exc.report


def test_sql_now_last_hour_loses_late_rows(tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(ON_TIME, last_hour_by_sql_now, examples=200, failures_dir=tmp_path)
    late_row_missing(info.value)


def test_sql_now_last_hour_is_caught_under_every_perturbation(tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(SPEC, last_hour_by_sql_now, examples=200, failures_dir=tmp_path)
    assert info.value.prop == "P1"
    (d,) = info.value.diffs
    assert d.missing, info.value.report


def test_watermark_bounded_by_sql_now_passes(tmp_path: Path) -> None:
    stats = idemtest.verify(SPEC, watermark_until_sql_now, examples=60, failures_dir=tmp_path)
    assert stats.scenarios >= 60 and stats.late_rows > 0


def test_a_column_default_keeps_the_real_clock_and_shows_as_p0(tmp_path: Path) -> None:
    """The documented limit: setup DDL is not rewritten, so `DEFAULT now()` reads the
    real time, two clean runs differ in that column, and the report says to ignore it."""
    setup = SETUP.replace(
        "CREATE TABLE analytics.readings (id BIGINT PRIMARY KEY, v INTEGER, updated_at TIMESTAMP)",
        "CREATE TABLE analytics.readings (id BIGINT PRIMARY KEY, v INTEGER, updated_at TIMESTAMP, loaded_at TIMESTAMPTZ DEFAULT now())",
    )

    def load(run: Any) -> None:
        run.conn.execute(
            "INSERT INTO analytics.readings (id, v, updated_at) SELECT * FROM src.readings "
            "WHERE updated_at < now() ON CONFLICT (id) DO NOTHING"
        )

    with pytest.raises(idemtest.NonDeterminismError) as info:
        idemtest.verify(readings_spec(setup=setup), load, examples=30, failures_dir=tmp_path)
    assert info.value.columns == {"analytics.readings": ["loaded_at"]}
    ignored = readings_spec(setup=setup, targets=[Target("analytics.readings", key="id", ignore=["loaded_at"])])
    idemtest.verify(ignored, load, examples=30, failures_dir=tmp_path)
