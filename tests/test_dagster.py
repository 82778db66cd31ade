"""The Dagster adapter (`idemtest[dagster]`) on DuckDB: real `dagster.materialize` runs of
assets against the sandbox. Each run costs ~0.1-0.3 s (Dagster's run machinery). CI
installs `.[dagster]` in its own step (.ci/run, IDEMTEST_REQUIRE_DAGSTER=1: a missing
Dagster fails instead of skipping); without Dagster these skip, except the declaration
errors, which need none. The checks of every example asset (correct passes, buggy
caught) run as examples/dagster/test_orders.py."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import idemtest
from idemtest import IdempotencyViolation, MissingExtraError, SpecError

ROOT = Path(__file__).resolve().parents[1]
ORDERS = ROOT / "examples" / "dagster" / "pipelines" / "orders.py"
IMMUTABLE = {"raw/orders": {"updates": False}}


def needs_dagster() -> None:
    if os.environ.get("IDEMTEST_REQUIRE_DAGSTER") == "1":
        return  # CI's Dagster step: a missing Dagster fails, never skips
    pytest.importorskip("dagster", reason="needs idemtest[dagster]: pip install 'idemtest[dagster]'")
    pytest.importorskip("dagster_duckdb", reason="needs idemtest[dagster]: pip install 'idemtest[dagster]'")


def plan(**kw):
    from idemtest.adapters.dagster import definition_of

    needs_dagster()
    kw.setdefault("assets", str(ORDERS))
    test = idemtest.dagster.check(**kw)
    definition = definition_of(test)
    assert definition is not None
    return definition.plan("duckdb")


#: a small definitions file: one asset per partitioning, on a DuckDBResource
SMALL = '''
import dagster as dg
from dagster_duckdb import DuckDBResource

raw = dg.AssetSpec(["raw", "events"], metadata={"dagster/column_schema": dg.TableSchema(columns=[
    dg.TableColumn("event_id", "BIGINT", constraints=dg.TableColumnConstraints(unique=True)),
    dg.TableColumn("region", "VARCHAR"),
    dg.TableColumn("seen_at", "TIMESTAMP"),
])})
KEYED = {"dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn("event_id", "BIGINT", constraints=dg.TableColumnConstraints(unique=True))])}

def copy_window(conn, table, start, end):
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (event_id BIGINT, region VARCHAR, seen_at TIMESTAMP)")
    conn.execute("BEGIN")
    # the window's rows, and any older version of an event that moved into the window
    conn.execute(
        f"DELETE FROM {table} WHERE (seen_at >= ? AND seen_at < ?) "
        "OR event_id IN (SELECT event_id FROM raw.events WHERE seen_at >= ? AND seen_at < ?)",
        [start, end, start, end],
    )
    conn.execute(f"INSERT INTO {table} SELECT * FROM raw.events WHERE seen_at >= ? AND seen_at < ?", [start, end])
    conn.execute("COMMIT")

def window(context):
    w = context.partition_time_window
    return w.start.replace(tzinfo=None), w.end.replace(tzinfo=None)

@dg.asset(deps=[raw], partitions_def=dg.HourlyPartitionsDefinition(start_date="2026-06-01-00:00"), metadata=KEYED,
          retry_policy=dg.RetryPolicy(max_retries=3, delay=30))
def hourly_events(context, duckdb: DuckDBResource) -> None:
    with duckdb.get_connection() as conn:
        copy_window(conn, "main.hourly_events", *window(context))

@dg.asset(deps=[raw], partitions_def=dg.MonthlyPartitionsDefinition(start_date="2026-01-01"), metadata=KEYED)
def monthly_events(context, duckdb: DuckDBResource) -> None:
    with duckdb.get_connection() as conn:
        copy_window(conn, "main.monthly_events", *window(context))

@dg.asset(deps=[raw], partitions_def=dg.StaticPartitionsDefinition(["us", "eu", "apac"]), metadata=KEYED)
def region_events(context, duckdb: DuckDBResource) -> None:
    with duckdb.get_connection() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS main.region_events (event_id BIGINT, region VARCHAR, seen_at TIMESTAMP)")
        conn.execute("BEGIN")
        conn.execute("DELETE FROM main.region_events WHERE region = ?", [context.partition_key])
        conn.execute("INSERT INTO main.region_events SELECT * FROM raw.events WHERE region = ?", [context.partition_key])
        conn.execute("COMMIT")

@dg.asset(deps=[raw], metadata=KEYED)
def all_events(duckdb: DuckDBResource) -> None:
    with duckdb.get_connection() as conn:
        conn.execute("CREATE OR REPLACE TABLE main.all_events AS SELECT * FROM raw.events")

@dg.asset(deps=[raw], partitions_def=dg.DynamicPartitionsDefinition(name="files"), metadata=KEYED)
def dynamic_events(duckdb: DuckDBResource) -> None:
    pass

@dg.asset(deps=[raw], partitions_def=dg.DailyPartitionsDefinition(start_date="2026-06-01"), metadata=KEYED)
def daily_events(context, duckdb: DuckDBResource) -> None:
    with duckdb.get_connection() as conn:
        copy_window(conn, "main.daily_events", *window(context))

job = dg.define_asset_job("events_job", selection=[daily_events], op_retry_policy=dg.RetryPolicy(max_retries=1, delay=120))
defs = dg.Definitions(assets=[raw, hourly_events, monthly_events, region_events, all_events, dynamic_events, daily_events],
                      resources={"duckdb": DuckDBResource(database="warehouse.duckdb")}, jobs=[job])
'''


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dagster_defs") / "events_defs.py"
    path.write_text(SMALL)
    return path


# --- declaration errors: clear, before Dagster loads anything ------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"select": []}, "must name the asset keys"),
        ({"select": [""]}, "must name the asset keys"),
        ({"select": ["a"], "concurrency": "always"}, "concurrency='always'"),
        ({"select": ["a"], "schedule": "hourly"}, "schedule='hourly'"),
        ({"select": ["a"], "sources": ["raw/orders"]}, "must map upstream asset keys"),
    ],
)
def test_bad_declarations_name_the_fix(kw, message):
    with pytest.raises(SpecError, match=message):
        idemtest.dagster.check(assets=str(ORDERS), **kw)


def test_missing_dagster_names_the_pip_command(monkeypatch):
    from idemtest.adapters.dagster import definition_of

    monkeypatch.setitem(sys.modules, "dagster", None)  # as if Dagster were not installed
    definition = definition_of(idemtest.dagster.check(assets=str(ORDERS), select=["analytics/daily_orders"]))
    assert definition is not None
    with pytest.raises(MissingExtraError, match=r"pip install 'idemtest\[dagster\]'"):
        definition.plan("duckdb")


def test_examples_skip_with_the_pip_hint_without_dagster(pytester):
    pytester.makepyfile(
        test_assets=f"""
        import sys
        sys.modules["dagster"] = None
        import idemtest
        test_asset = idemtest.dagster.check(assets={str(ORDERS)!r}, select=["analytics/daily_orders"])
        """
    )
    result = pytester.runpytest("--idempotency", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    assert "pip install 'idemtest[dagster]'" in result.stdout.str()


# --- bad input found in the definitions ------------------------------------------------------


def test_unknown_asset_key_lists_the_known_ones():
    from idemtest.adapters.dagster import DagsterDefinitionsError

    with pytest.raises(DagsterDefinitionsError, match=r"no materializable asset with that key; did you mean 'analytics/daily_orders'.*its assets are \['analytics/daily_orders'"):
        plan(select=["analytics/daily_order"])


def test_definitions_that_do_not_import_say_so(tmp_path):
    from idemtest.adapters.dagster import DagsterDefinitionsError

    bad = tmp_path / "broken_defs.py"
    bad.write_text("import dagster as dg\nraise RuntimeError('no warehouse configured')\n")
    with pytest.raises(DagsterDefinitionsError, match=r"cannot be imported: RuntimeError: no warehouse configured; fix it until `dagster definitions validate"):
        plan(assets=str(bad), select=["x"])
    with pytest.raises(DagsterDefinitionsError, match=r"no such file"):
        plan(assets=str(tmp_path / "nowhere.py"), select=["x"])


def test_unsupported_resource_kinds_say_which_are_supported(tmp_path):
    from idemtest.adapters.dagster import DagsterDefinitionsError

    defs = tmp_path / "odd_resources.py"
    defs.write_text(textwrap.dedent('''
        import dagster as dg

        class LocalDuck(dg.ConfigurableResource):
            path: str
        class PickleIO(dg.ConfigurableIOManager):
            root: str
            def handle_output(self, context, obj): ...
            def load_input(self, context): ...

        raw = dg.AssetSpec("raw_events")

        @dg.asset(deps=[raw])
        def a(db: LocalDuck) -> None: ...

        @dg.asset(deps=[raw], io_manager_key="pickles")
        def b() -> int:
            return 1

        @dg.asset(deps=[raw])
        def c() -> None: ...

        defs = dg.Definitions(assets=[raw, a, b, c], resources={"db": LocalDuck(path="w.duckdb"), "pickles": PickleIO(root="/tmp")})
    '''))
    with pytest.raises(DagsterDefinitionsError, match=r"holds a DuckDB database in field 'path' but is not a dagster_duckdb.DuckDBResource.*Supported resources: dagster_duckdb.DuckDBResource"):
        plan(assets=str(defs), select=["a"])
    with pytest.raises(DagsterDefinitionsError, match=r"IO manager 'pickles' \(PickleIO\) is not one idemtest can point at the sandbox; supported resources"):
        plan(assets=str(defs), select=["b"])
    with pytest.raises(DagsterDefinitionsError, match=r"use no database resource idemtest can point at the sandbox"):
        plan(assets=str(defs), select=["c"])


def test_a_missing_resource_names_the_argument(tmp_path):
    from idemtest.adapters.dagster import DagsterDefinitionsError

    defs = tmp_path / "no_resources.py"
    defs.write_text(SMALL.replace('resources={"duckdb": DuckDBResource(database="warehouse.duckdb")}, ', ""))
    with pytest.raises(DagsterDefinitionsError, match=r"needs resource 'duckdb', which .* does not provide; pass it: idemtest.dagster.check\(..., resources="):
        plan(assets=str(defs), select=["daily_events"])
    # given in the check, the same asset plans
    from dagster_duckdb import DuckDBResource

    p = plan(assets=str(defs), select=["daily_events"], resources={"duckdb": DuckDBResource(database="x.duckdb")})
    assert p.resources["duckdb"].kind == "duckdb"


def test_unsupported_partitions_say_which_are(small):
    from idemtest.adapters.dagster import DagsterDefinitionsError

    with pytest.raises(DagsterDefinitionsError, match=r"partitioned by DynamicPartitionsDefinition .* supported: DailyPartitionsDefinition"):
        plan(assets=str(small), select=["dynamic_events"])


# --- windows from partitions, retries from RetryPolicy ----------------------------------------


def test_daily_windows_come_from_the_partitions_definition():
    p = plan(select=["analytics/daily_orders"], sources=IMMUTABLE)
    assert p.partitions.kind == "time" and p.partitions.keys == ("2026-06-01", "2026-06-02")  # the first two by default
    assert [(w.start, w.end) for w in p.spec.schedule.windows] == [(datetime(2026, 6, d), datetime(2026, 6, d + 1)) for d in (1, 2)]
    three = plan(select=["analytics/daily_orders"], sources=IMMUTABLE, partitions=3)
    assert three.partitions.keys == ("2026-06-01", "2026-06-02", "2026-06-03")
    assert p.spec.concurrency == "partitions" and "concurrent" in p.spec.exercise
    (source,) = p.spec.sources
    assert (source.table, source.keys, source.event_time, source.updates) == ("raw.orders", ("order_id",), "ordered_at", False)
    assert dict(source.columns)["amount"] == "DECIMAL(12,2)"
    (target,) = p.spec.targets
    assert (target.table, target.keys) == ("analytics.daily_orders", ("order_id",))
    assert p.spec.dialect == "duckdb"
    # an asset stored by the DuckDB IO manager (io_manager_key="warehouse_io") is re-pointed too
    io = plan(select=["analytics/daily_orders_io"], sources=IMMUTABLE)
    assert {n: r.kind for n, r in io.resources.items()} == {"duckdb": "duckdb", "warehouse_io": "duckdb"}
    assert io.spec.targets[0].table == "analytics.daily_orders_io"


def test_hourly_monthly_and_static_windows(small):
    needs_dagster()
    from dagster import PartitionKeyRange

    hourly = plan(assets=str(small), select=["hourly_events"], partitions=2)
    assert hourly.partitions.keys == ("2026-06-01-00:00", "2026-06-01-01:00")
    assert [w.end - w.start for w in hourly.spec.schedule.windows] == [timedelta(hours=1)] * 2
    monthly = plan(assets=str(small), select=["monthly_events"], partitions=PartitionKeyRange("2026-02-01", "2026-04-01"))
    assert monthly.partitions.keys == ("2026-02-01", "2026-03-01", "2026-04-01")
    assert [(w.start, w.end) for w in monthly.spec.schedule.windows] == [
        (datetime(2026, 2, 1), datetime(2026, 3, 1)), (datetime(2026, 3, 1), datetime(2026, 4, 1)), (datetime(2026, 4, 1), datetime(2026, 5, 1))]
    # late rows: the tail windows are the following months, as Dagster names them
    late = plan(assets=str(small), select=["monthly_events"], partitions=["2026-01-01"], max_lateness="20d")
    assert late.partitions.keys == ("2026-01-01", "2026-02-01")
    static = plan(assets=str(small), select=["region_events"], partitions=3)
    assert static.partitions.kind == "static" and static.partitions.keys == ("us", "eu", "apac")
    assert len(static.spec.schedule.windows) == 3
    with pytest.raises(SpecError, match=r"'2026-13-01' is not a partition key"):
        plan(assets=str(small), select=["monthly_events"], partitions=["2026-13-01"])
    with pytest.raises(SpecError, match=r"\['mars'\] are not keys"):
        plan(assets=str(small), select=["region_events"], partitions=["us", "mars"])
    with pytest.raises(SpecError, match=r"static keys have no later partition"):
        plan(assets=str(small), select=["region_events"], max_lateness="1h")


def test_an_unpartitioned_asset_runs_on_the_given_schedule(small):
    p = plan(assets=str(small), select=["all_events"], schedule=idemtest.daily("2026-06-01", periods=2))
    stats = idemtest.verify(p.spec, p.load, examples=2, systematic_max=10, max_seconds=10)
    assert stats.runs > 0 and p.counters.runs >= stats.runs  # it runs: materialize without a partition key
    assert p.partitions.kind == "none" and p.partitions.keys == (None, None)
    assert p.spec.concurrency == "none" and "concurrent" not in p.spec.exercise  # one table rebuilt by every run
    with pytest.raises(SpecError, match=r"has no partitions definition; give schedule="):
        plan(assets=str(small), select=["all_events"], partitions=2)
    with pytest.raises(SpecError, match=r"choose them with partitions="):
        plan(assets=str(small), select=["daily_events"], schedule=idemtest.hourly("2026-06-01", periods=2))


def test_retries_come_from_the_retry_policy(small):
    asset_policy = plan(select=["analytics/daily_orders"], sources=IMMUTABLE)
    assert (asset_policy.spec.retries, asset_policy.spec.retry_delay) == (2, timedelta(seconds=60))
    assert "RetryPolicy of asset 'analytics/daily_orders'" in asset_policy.retry_source
    job_policy = plan(assets=str(small), select=["daily_events"])
    assert (job_policy.spec.retries, job_policy.spec.retry_delay) == (1, timedelta(seconds=120))
    assert "op_retry_policy of job 'events_job'" in job_policy.retry_source
    hourly = plan(assets=str(small), select=["hourly_events"])
    assert (hourly.spec.retries, hourly.spec.retry_delay) == (3, timedelta(seconds=30))
    none = plan(assets=str(small), select=["monthly_events"])
    assert none.spec.retries == 0 and "no RetryPolicy" in none.retry_source


def test_scenarios_retry_no_more_than_the_policy_allows(small):
    """Every scenario played: no run is attempted more often than max_retries + 1, and the
    attempts of a run are `delay` apart on the simulated clock."""
    p = plan(assets=str(small), select=["daily_events"], partitions=2)  # op_retry_policy: max_retries=1, delay=120
    attempts: list[tuple[int, int, datetime]] = []

    def load(run):
        attempts.append((run.window.index, run.attempt, run.now))
        p.load(run)

    stats = idemtest.verify(p.spec, load, examples=3, systematic_max=20, max_seconds=30)
    assert stats.crashes > 0 and stats.retries > 0
    assert max(a for _, a, _ in attempts) == p.spec.retries + 1 == 2  # retried, never more than the policy allows
    # a retry runs `delay` after the attempt before it, on the simulated clock
    firsts = {(w, now) for w, a, now in attempts if a == 1}
    for w, a, now in attempts:
        if a == 2:
            assert (w, now - timedelta(seconds=120)) in firsts
    assert p.counters.runs >= stats.runs > 0


# --- runs: statements inside the asset are boundaries; crashes land there ---------------------


def _env(p):
    from idemtest.engine.execute import Env
    from idemtest.engine.systematic import systematic_dataset
    from idemtest.sandbox import get_backend

    backend = get_backend("duckdb")
    sandbox = backend.create(p.spec)
    sandbox.prepare(p.spec)
    env = Env(p.spec, sandbox, systematic_dataset(p.spec), p.load)
    return backend, sandbox, env


def test_asset_statements_are_boundaries_and_a_crash_lands_inside_the_asset():
    from idemtest.engine.model import Fault, RunStep

    p = plan(select=["analytics/daily_orders_autocommit"], sources=IMMUTABLE)
    backend, sandbox, env = _env(p)
    try:
        w0 = p.spec.all_windows[0]
        env.sync(None)
        first = env.execute(1, RunStep(0, w0.end), 1, w0.end, None)
        assert first.outcome == "ok", first.error
        texts = [b.text for b in first.trace]
        assert any(t.startswith("connect") for t in texts), texts  # DuckDBResource.get_connection
        delete_at = next(b.index for b in first.trace if "DELETE FROM analytics.daily_orders_autocommit" in b.text)
        assert any("INSERT INTO analytics.daily_orders_autocommit" in t for t in texts)
        loaded = sandbox.snapshot(p.spec.targets[0])[1]
        assert loaded, "the day's orders were inserted"
        crashed = env.execute(2, RunStep(0, w0.end), 1, w0.end, Fault(delete_at, "after"))
        assert crashed.outcome == "crash" and crashed.at is not None and "DELETE" in crashed.at.text
        assert sandbox.snapshot(p.spec.targets[0])[1] == [], "the autocommitted DELETE stands: the day is empty"
        retry = env.execute(2, RunStep(0, w0.end), 2, w0.end, None)
        assert retry.outcome == "ok", retry.error
        assert sorted(sandbox.snapshot(p.spec.targets[0])[1]) == sorted(loaded)
    finally:
        sandbox.close()
        backend.close()


def test_two_partitions_materialize_at_once_interleaved():
    """run_parallel: two materialize calls on two threads, statement by statement."""
    from idemtest.engine.execute import run_parallel
    from idemtest.engine.model import ParallelStep, RunStep, Stats

    p = plan(select=["analytics/daily_orders"], sources=IMMUTABLE)
    backend, sandbox, env = _env(p)
    try:
        env.sync(None)
        w0, w1 = p.spec.all_windows[:2]
        attempts: list = []
        stats = Stats()
        step = ParallelStep((RunStep(0, w1.end), RunStep(1, w1.end)), (0, 1) * 20)
        run_parallel(env, 1, step, w1.end, attempts, {}, stats)
        assert [a.outcome for a in attempts] == ["ok", "ok"], [a.error for a in attempts]
        seqs = sorted((b.seq, a.window) for a in attempts for b in a.trace)
        order = [w for _, w in seqs]
        assert order[:4] == [0, 1, 0, 1], order  # strictly alternating turns: the runs really overlapped
        assert stats.interleavings == 1
        days = {r[3] for r in sandbox.snapshot(p.spec.targets[0])[1]}
        assert days == {w0.start.date(), w1.start.date()}
    finally:
        sandbox.close()
        backend.close()


def test_caught_with_a_minimal_scenario_then_replayed(tmp_path):
    p = plan(select=["analytics/daily_orders_autocommit"], sources=IMMUTABLE)
    with pytest.raises(IdempotencyViolation) as info:
        idemtest.verify(p.spec, p.load, examples=5, failures_dir=tmp_path, systematic_max=40, test_id="dagster_autocommit")
    report = info.value.report
    assert "P3" in report and "CRASHED after statement" in report and "DELETE FROM analytics.daily_orders_autocommit" in report
    saved = info.value.saved
    assert saved is not None and Path(saved).is_file()
    scenario = json.loads(Path(saved).read_text())
    assert scenario
    # the saved file replays the same failure, without the generator
    with pytest.raises(IdempotencyViolation, match="P3"):
        idemtest.replay(saved, p.spec, p.load)
    # and the correct twin passes the same saved scenario
    good = plan(select=["analytics/daily_orders"], sources=IMMUTABLE)
    stats = idemtest.verify(good.spec, good.load, examples=2, systematic_max=12, max_seconds=10)
    assert stats.runs > 0


def test_check_module_source_runs_as_written(pytester, small):
    needs_dagster()
    from idemtest.adapters.dagster import check_module_source

    text = check_module_source(str(small), ["daily_events", "region_events"])
    assert "idemtest.dagster.check(assets=" in text and "select=['daily_events']" in text
    compile(text, "emitted.py", "exec")
    pytester.makepyfile(test_emitted=text)
    result = pytester.runpytest("--idempotency", "--idem-examples", "2", "--idem-max-seconds", "8", "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)
