"""Spark sandboxes (`idemtest[spark]`): a real local SparkSession (pyspark, Java 17)
and real Delta tables through delta-rs (`deltalake`). The session starts once per
process (~10 s) and is shared; each Spark write then costs ~0.4 s. CI installs
`.[spark]` in its own step (.ci/run) with IDEMTEST_REQUIRE_SPARK=1: a missing pyspark
fails there instead of skipping. The example jobs (correct pass, buggy caught) run
as examples/spark/test_jobs.py."""

from __future__ import annotations

import json
import os
import re
import textwrap
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

import idemtest
from idemtest import BackendError, Source, SpecError, Target
from idemtest._errors import InjectedCrash
from idemtest.engine.model import Fault
from idemtest.instrument import Controller, activate, begin_run, end_run
from idemtest.sandbox import parse_db

ROOT = Path(__file__).resolve().parents[1]



def needs_spark() -> None:
    if os.environ.get("IDEMTEST_REQUIRE_SPARK") == "1":
        return  # CI's spark step: a missing pyspark fails, never skips
    pytest.importorskip("pyspark", reason="needs idemtest[spark]: pip install 'idemtest[spark]'")
    pytest.importorskip("deltalake", reason="needs idemtest[spark]: pip install 'idemtest[spark]'")


# --- no JVM needed ------------------------------------------------------------------------


def test_spark_kinds_parse():
    assert (parse_db("spark").kind, parse_db("spark").dialect) == ("spark", "spark")
    assert (parse_db("spark+delta").kind, parse_db("spark+delta").dialect) == ("spark+delta", "spark")


def test_spark_delta_without_jars_names_the_fix(monkeypatch):
    needs_spark()
    from idemtest.sandbox import spark

    monkeypatch.delenv(spark.DELTA_JARS_ENV, raising=False)
    monkeypatch.delenv(spark.DELTA_PACKAGES_ENV, raising=False)
    with pytest.raises(BackendError) as e:
        spark._delta_config("spark+delta")
    text = str(e.value)
    assert "IDEMTEST_DELTA_JARS=" in text and "spark.jars.packages" in text and "--idem-db spark" in text
    monkeypatch.setenv(spark.DELTA_JARS_ENV, "/nowhere/delta-spark_2.13-4.0.0.jar")
    with pytest.raises(BackendError, match="jars that do not exist"):
        spark._delta_config("spark+delta")


def test_a_spark_delta_check_without_jars_fails_naming_the_fix(pytester, monkeypatch):
    """In a fresh process: the error comes before any JVM starts."""
    needs_spark()
    monkeypatch.delenv("IDEMTEST_DELTA_JARS", raising=False)
    monkeypatch.delenv("IDEMTEST_DELTA_PACKAGES", raising=False)
    pytester.makepyfile(test_job=JOB_MODULE.format(job="append_job", extra=', db="spark+delta"'))
    result = pytester.runpytest_subprocess("--idempotency", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "needs the Delta Lake jars" in out and "IDEMTEST_DELTA_JARS=" in out and "Traceback" not in out


def test_wrong_java_home_is_a_clear_error(monkeypatch, tmp_path):
    from idemtest.sandbox import spark

    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(BackendError, match=r"JAVA_HOME=.*no-jdk.* has no bin/java.*Java 17"):
        spark._check_java()


def test_wrong_java_home_fails_the_check_with_the_fix(pytester, monkeypatch, tmp_path):
    """End to end in a fresh process (no session running yet): the error, not a py4j traceback."""
    needs_spark()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    pytester.makepyfile(test_job=JOB_MODULE.format(job="append_job", extra=""))
    result = pytester.runpytest_subprocess("--idempotency", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "has no bin/java" in out and "Java 17" in out
    assert "Java gateway" not in out


def test_without_pyspark_the_check_skips_with_the_pip_hint(pytester):
    pytester.makepyfile(
        test_job="""
        import sys
        sys.modules["pyspark"] = None
        import idemtest
        from idemtest import Source, Target

        def job(spark, start, end):
            pass

        test_job = idemtest.spark.check(job, sources=[Source("events", columns={"id": "BIGINT", "ts": "TIMESTAMP"}, key="id", event_time="ts")],
                                        targets=[Target("out", key="id")])
        """
    )
    result = pytester.runpytest_subprocess("--idempotency", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    assert "pip install 'idemtest[spark]'" in result.stdout.str()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"db": "hive"}, "db='hive'"),
        ({"exercise": ["crash", "concurrent"]}, "one job at a time"),
    ],
)
def test_bad_declarations_name_the_fix(kw, message):
    with pytest.raises(SpecError, match=message):
        idemtest.spark.check(lambda spark, start, end: None, sources=[], targets=[Target("t")], **kw)
    with pytest.raises(SpecError, match="takes the job function"):
        idemtest.spark.check("job.py", sources=[], targets=[Target("t")])  # type: ignore[arg-type]


# --- on the real session -------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend():
    needs_spark()
    from idemtest.sandbox.spark import SparkBackend

    be = SparkBackend("spark")
    yield be
    be.close()


@pytest.fixture
def sandbox(backend):
    sb = backend.create()
    yield sb
    sb.close()
    assert not sb.root.exists()  # the database folder goes with it


def _days(sb, table="t"):
    sb.spark.catalog.refreshTable(table)
    return sorted((r["day"].isoformat(), r["n"]) for r in sb.spark.table(table).collect())


def _write(sb, days, n, fault, *, mode):
    """One insertInto of `days` (value n) under a run whose crash is `fault`."""
    rows = [(n, date.fromisoformat(d)) for d in days]
    df = sb.spark.createDataFrame(rows, "n BIGINT, day DATE")
    ctl = Controller("test run", fault)
    begin_run(ctl)
    try:
        with activate(ctl):
            if mode == "static":
                sb.spark.conf.set("spark.sql.sources.partitionOverwriteMode", "static")
                df.write.insertInto("t", overwrite=True)
            elif mode == "dynamic":
                sb.spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
                df.write.insertInto("t", overwrite=True)
            else:
                df.write.insertInto("t")
    except InjectedCrash:
        pass
    finally:
        end_run(ctl)
    return ctl


DAYS = ["2026-06-01", "2026-06-02", "2026-06-03", "2026-06-04"]


@pytest.mark.parametrize(
    ("mode", "fault", "expected"),
    [
        # no crash: Spark's own semantics
        ("static", None, [("2026-06-02", 2), ("2026-06-03", 2)]),
        ("dynamic", None, [("2026-06-01", 1), ("2026-06-02", 2), ("2026-06-03", 2), ("2026-06-04", 1)]),
        # crash before the job commit: a static overwrite already deleted the table's partitions
        ("static", Fault(2, "before"), []),
        ("dynamic", Fault(2, "before"), [(d, 1) for d in DAYS]),
        ("append", Fault(2, "before"), [(d, 1) for d in DAYS]),
        # crash inside the job commit: the first half of the written partitions is in place
        ("static", Fault(2, "after"), [("2026-06-02", 2)]),
        ("dynamic", Fault(2, "after"), [("2026-06-01", 1), ("2026-06-02", 2), ("2026-06-03", 1), ("2026-06-04", 1)]),
        ("append", Fault(2, "after"), sorted([*((d, 1) for d in DAYS), ("2026-06-02", 2)])),
        # crash before the write: nothing; after it: all of it
        ("dynamic", Fault(1, "before"), [(d, 1) for d in DAYS]),
        ("dynamic", Fault(1, "after"), [("2026-06-01", 1), ("2026-06-02", 2), ("2026-06-03", 2), ("2026-06-04", 1)]),
    ],
)
def test_a_parquet_write_is_not_atomic(sandbox, mode, fault, expected):
    sandbox.execute("CREATE TABLE t (n BIGINT, day DATE) USING parquet PARTITIONED BY (day)")
    _write(sandbox, DAYS, 1, None, mode="append")
    ctl = _write(sandbox, ["2026-06-02", "2026-06-03"], 2, fault, mode=mode)
    if fault == Fault(1, "before"):
        assert [b.kind for b in ctl.trace] == ["write"]  # the process died before the write began
    else:
        assert [b.kind for b in ctl.trace] == ["write", "commit"]
        assert ctl.trace[1].text.startswith("job commit of insertInto('t'")
    assert (ctl.crashed is not None) == (fault is not None)
    assert _days(sandbox) == expected
    assert not any(p.name.endswith(".idemtest-backup") for p in sandbox.warehouse.iterdir())


def test_a_delta_commit_is_atomic_and_fault_points_count(sandbox):
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    path = str(sandbox.warehouse / "d")
    write_deltalake(path, pa.table({"k": [1, 2], "v": ["a", "b"]}))  # outside a run: no boundary
    for fault, version in ((Fault(2, "before"), 0), (Fault(2, "after"), 1)):
        ctl = Controller("delta run", fault)
        begin_run(ctl)
        try:
            with activate(ctl):
                idemtest.fault_point("before merge")
                (
                    DeltaTable(path)
                    .merge(pa.table({"k": [2, 3], "v": ["B", "c"]}), predicate="t.k = s.k", source_alias="s", target_alias="t")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute()
                )
        except InjectedCrash:
            pass
        finally:
            end_run(ctl)
        assert [b.kind for b in ctl.trace] == ["fault_point", "delta"]
        assert "merge" in ctl.trace[1].text and ctl.crashed is not None
        assert DeltaTable(path).version() == version
    _cols, rows = sandbox.snapshot(Target("d", key="k"))
    assert sorted(rows) == [(1, "a"), (2, "B"), (3, "c")]


def test_sources_are_real_tables_and_state_is_a_file(sandbox):
    src = Source("events", columns={"id": "BIGINT", "store": "VARCHAR", "amount": "DECIMAL(12,2)", "ts": "TIMESTAMP"}, key="id", event_time="ts")
    from datetime import datetime

    sandbox._create_source(src)
    sandbox.load_source(src, [{"id": 1, "store": "x", "amount": Decimal("1.50"), "ts": datetime(2026, 6, 1, 3)}])
    assert sandbox.query("SELECT * FROM events") == (["id", "store", "amount", "ts"], [(1, "x", Decimal("1.50"), datetime(2026, 6, 1, 3))])
    sandbox.load_source(src, [])
    assert sandbox.query("SELECT count(*) AS n FROM events")[1] == [(0,)]
    from idemtest.context import State

    state = State(sandbox.connect(None), "?")
    state.set("watermark", "2026-06-01")
    assert state.get("watermark") == "2026-06-01" and state.get("other", 7) == 7
    assert json.loads((sandbox.root / "_idemtest_state.json").read_text()) == {"watermark": '"2026-06-01"'}


# --- whole checks, in a nested pytest run on the same session -----------------------------

JOB_MODULE = textwrap.dedent(
    """
    import idemtest
    from idemtest import Source, Target, daily

    EVENTS = Source("events", columns={{"event_id": "BIGINT", "store": "VARCHAR", "amount": "DECIMAL(12,2)", "ts": "TIMESTAMP"}},
                    key="event_id", event_time="ts", updates=False, max_rows=6)
    DDL = "CREATE TABLE daily (store STRING, revenue DECIMAL(22,2), day DATE) USING parquet PARTITIONED BY (day)"

    def _daily(spark, start, end):
        from pyspark.sql import functions as F
        return (spark.table("events").where((F.col("ts") >= F.lit(start)) & (F.col("ts") < F.lit(end)))
                .groupBy(F.to_date("ts").alias("day"), "store").agg(F.sum("amount").alias("revenue"))
                .select("store", "revenue", "day"))

    def append_job(spark, start, end):
        _daily(spark, start, end).write.insertInto("daily")

    def dynamic_job(spark, start, end):
        spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
        _daily(spark, start, end).write.insertInto("daily", overwrite=True)

    def reads_only(spark, start, end):
        _daily(spark, start, end).count()

    def sql_yesterday_job(spark, start, end):
        # "yesterday" by Spark's clock, not the window it was given: right on time, wrong late
        spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
        spark.sql("INSERT OVERWRITE TABLE daily SELECT store, sum(amount) AS revenue, to_date(ts) AS day FROM events "
                  "WHERE to_date(ts) = date_sub(current_date(), 1) GROUP BY store, to_date(ts)")

    def df_yesterday_job(spark, start, end):
        from pyspark.sql import functions as F
        spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
        (spark.table("events").where(F.to_date("ts") == F.date_sub(F.current_date(), 1))
         .groupBy(F.to_date("ts").alias("day"), "store").agg(F.sum("amount").alias("revenue"))
         .select("store", "revenue", "day").write.insertInto("daily", overwrite=True))

    test_job = idemtest.spark.check({job}, sources=[EVENTS], targets=[Target("daily", key=["day", "store"])], setup=DDL,
                                    schedule=daily("2026-06-01", periods=2), examples=2{extra})
    """
)


def test_a_buggy_job_is_caught_with_a_minimal_scenario_and_replays(pytester):
    needs_spark()
    pytester.makepyfile(test_job=JOB_MODULE.format(job="append_job", extra=""))
    result = pytester.runpytest_inprocess("--idempotency", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "P2 declared keys stay unique — VIOLATED" in out and "Minimal scenario (3 steps" in out and "duplicate run of window 0" in out
    saved = sorted((pytester.path / ".idemtest" / "failures").glob("*.json"))
    assert saved
    replay = pytester.runpytest_inprocess("--idempotency", "--idem-replay", str(saved[0]), "-p", "no:cacheprovider")
    replay.assert_outcomes(failed=1)
    assert "VIOLATED" in replay.stdout.str()


def test_spark_clock_functions_read_the_run_time(pytester):
    """`current_date()` in Spark SQL and `F.current_date()` are evaluated in the JVM: they
    read the run's simulated time (a literal), so "yesterday" is right for a run on time
    and the catch-up run that loads the wrong day is caught. On Spark's real clock every
    run would read November's empty partitions and nothing would ever be judged."""
    needs_spark()
    module = JOB_MODULE.format(job="sql_yesterday_job", extra="")
    module += "test_df_job = " + module.rsplit("test_job = ", 1)[1].replace("sql_yesterday_job", "df_yesterday_job")
    pytester.makepyfile(test_job=module)
    result = pytester.runpytest_inprocess("--idempotency", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    # one report per check (the short summary repeats the line, as wide as the terminal)
    assert len(re.findall(r"^idemtest: P1 same outcome as one clean run — VIOLATED$", out, re.M)) == 2, out
    assert "catch-up run" in out, out
    assert "wrote nothing" not in out


def test_a_job_that_never_writes_is_an_error_naming_the_fix(pytester):
    needs_spark()
    pytester.makepyfile(test_job=JOB_MODULE.format(job="reads_only", extra=""))
    result = pytester.runpytest_inprocess("--idempotency", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "wrote nothing in any window" in out and "saveAsTable" in out


def test_a_plain_check_gets_run_spark_on_idem_db_spark(pytester):
    """`--idem-db spark` is a sandbox kind for any check: run.spark is the sandbox's session."""
    needs_spark()
    pytester.makepyfile(
        test_plain="""
        import idemtest
        from idemtest import Spec, Source, Target, daily

        spec = Spec(sources=[Source("events", columns={"id": "BIGINT", "ts": "TIMESTAMP"}, key="id", event_time="ts", updates=False, max_rows=4)],
                    targets=[Target("copy", key="id")], schedule=daily("2026-06-01", periods=2),
                    setup="CREATE TABLE copy (id BIGINT, ts TIMESTAMP, day DATE) USING parquet PARTITIONED BY (day)",
                    exercise=["duplicate", "backfill"])  # a few scenarios: the examples run the full set

        @idemtest.check(spec, examples=1)
        def test_copy(run):
            assert run.spark.catalog.currentDatabase().startswith("idemtest_s")
            run.spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
            day = run.spark.table("events").where(f"ts >= '{run.window.start}' AND ts < '{run.window.end}'").selectExpr("id", "ts", "to_date(ts) AS day")
            day.write.insertInto("copy", overwrite=True)  # dynamic: only the window's day is replaced
        """
    )
    result = pytester.runpytest_inprocess("--idempotency", "--idem-db", "spark", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
