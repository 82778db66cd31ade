"""idemtest.airflow.check: real Airflow DAGs run task by task against the sandbox.

Needs idemtest[airflow]; without it these skip, except under IDEMTEST_REQUIRE_AIRFLOW=1
(.ci/run's Airflow step), where a missing Airflow fails. The checks themselves need
PostgreSQL (marked `postgres`)."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import idemtest
from idemtest import SpecError, Target
from idemtest._errors import AirflowDagError

HERE = Path(__file__).parent
DAGS = HERE / "airflow_dags"
EXAMPLES = HERE.parent / "examples" / "airflow"
DSN = os.environ.get("IDEMTEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True, scope="module")
def _airflow() -> None:
    if os.environ.get("IDEMTEST_REQUIRE_AIRFLOW") == "1":
        return  # CI's Airflow step: a missing Airflow fails, never skips
    pytest.importorskip("airflow", reason="needs idemtest[airflow]: pip install 'idemtest[airflow]'")


def _plan(dag: str | Path, **kw):  # type: ignore[no-untyped-def]
    test = idemtest.airflow.check(dag=str(dag), targets=kw.pop("targets", [Target("t")]), **kw)
    return idemtest.airflow.definition_of(test).plan()  # type: ignore[union-attr]


# --- what comes from the DAG ------------------------------------------------------------


def test_windows_and_settings_come_from_the_dag() -> None:
    plan = _plan(EXAMPLES / "dags" / "events_watermark.py")
    ws = plan.spec.schedule.windows
    assert [(w.start, w.end) for w in ws] == [
        (datetime(2026, 6, 1, h), datetime(2026, 6, 1, h + 1)) for h in range(3)
    ]
    assert plan.spec.retries == 2 and plan.spec.retry_delay == timedelta(minutes=5)
    # max_active_runs=1: never two runs at once, never out of order
    assert "concurrent" not in plan.spec.exercise and "out_of_order" not in plan.spec.exercise
    assert plan.spec.concurrency == "none"
    assert plan.tasks == ("extract", "load") and plan.conn_ids == ("warehouse",)


def test_airflow_defaults_where_the_dag_sets_nothing() -> None:
    # the tutorial: no retries (Airflow's default 0), catchup=False, max_active_runs unset (16)
    plan = _plan(EXAMPLES / "dags" / "tutorial_original.py")
    assert plan.spec.retries == 0 and plan.spec.retry_delay == timedelta(seconds=300)
    assert plan.semantics.max_active_runs == 16 and plan.semantics.catchup is False
    assert "concurrent" in plan.spec.exercise and "out_of_order" not in plan.spec.exercise
    ws = plan.spec.schedule.windows  # schedule "0 0 * * *": daily intervals
    assert ws[0].start == datetime(2026, 6, 1) and ws[0].end == datetime(2026, 6, 2) and len(ws) == 3


def test_tasks_selects_upstream_too() -> None:
    plan = _plan(EXAMPLES / "dags" / "tutorial_original.py", tasks=["merge_data"])
    assert plan.checked == ("merge_data",)
    assert set(plan.tasks) == {"create_employees_table", "create_employees_temp_table", "get_data", "merge_data"}
    assert plan.tasks[-1] == "merge_data"


def test_exercise_beyond_the_dag_is_refused() -> None:
    with pytest.raises(SpecError, match=r"concurrent \(max_active_runs=1\)"):
        _plan(EXAMPLES / "dags" / "events_watermark.py", exercise={"crash", "concurrent"})


class _State:
    """run.state as the sandbox keeps it (JSON values), in memory."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str, default: object = None) -> object:
        import json

        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: object) -> None:
        import json

        self.values[key] = json.dumps(value)


class _Conn:
    def commit(self) -> None:
        pass


def _run(window, attempt: int, state: _State):  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    return SimpleNamespace(window=window, attempt=attempt, state=state, conn=_Conn(), _ctl=None,
                           dsn="postgresql://postgres@127.0.0.1:5432/nowhere")


def test_a_retry_resumes_at_the_failed_task_and_a_clear_reruns_downstream() -> None:
    # the DAG run itself, without a database: task states and XComs in run.state
    test = idemtest.airflow.check(dag=str(DAGS / "resume_dag.py"), tasks=["transform", "publish"], targets=[Target("t")], conn_ids=["none"])
    plan = idemtest.airflow.definition_of(test).plan()  # type: ignore[union-attr]
    module = next(m for n, m in sys.modules.items() if n.startswith("idemtest_airflow_dag_") and hasattr(m, "CALLS") and m.__file__.endswith("resume_dag.py"))
    calls = module.CALLS
    calls.clear()
    window = plan.spec.schedule.windows[0]
    state = _State()
    with pytest.raises(RuntimeError, match="the worker died"):
        plan.load(_run(window, 1, state))
    assert [c[0] for c in calls] == ["extract", "transform"]
    # the retry: extract is not run again, transform gets its XCom (JSON round-tripped), publish runs
    plan.load(_run(window, 2, state))
    assert [c[0] for c in calls] == ["extract", "transform", "transform", "publish"]
    assert calls[2] == ("transform", {"rows": 3, "ds": "2026-06-01"})
    assert calls[3] == ("publish", (6, "t1"))  # templated context: ds, params; XCom from transform
    # a second run of the window: `clear` of transform and its downstream, extract kept
    calls.clear()
    plan.load(_run(window, 1, state))
    assert [c[0] for c in calls] == ["transform", "publish"]
    assert plan.semantics.retries == 1


# --- bad input ----------------------------------------------------------------------------


def test_an_unscheduled_dag_is_run_for_the_intervals_the_check_names() -> None:
    dag = DAGS / "staging_sales_dag.py"
    with pytest.raises(AirflowDagError, match=r"schedule='None'.*pass the check schedule='@daily'"):
        _plan(dag, start="2020-01-01")
    plan = _plan(dag, start="2020-01-01", schedule="@daily", template_searchpath=[str(DAGS / "sql" / "sales")])
    assert [(w.start, w.end) for w in plan.spec.schedule.windows] == [
        (datetime(2020, 1, d), datetime(2020, 1, d + 1)) for d in (1, 2, 3)
    ]
    with pytest.raises(AirflowDagError, match=r"schedule='every tuesday' is not an Airflow schedule"):
        _plan(dag, start="2020-01-01", schedule="every tuesday")


def test_template_searchpath_must_be_a_folder() -> None:
    with pytest.raises(SpecError, match=r"template_searchpath='sql/nowhere': no such folder.*name the folder"):
        idemtest.airflow.check(dag=str(DAGS / "staging_sales_dag.py"), targets=[Target("t")], template_searchpath="sql/nowhere")


def test_dag_file_missing() -> None:
    with pytest.raises(AirflowDagError, match="no such file"):
        _plan(DAGS / "nope.py")


def test_dag_not_importable() -> None:
    with pytest.raises(AirflowDagError, match=r"does not import: RuntimeError: the DAG author's bug"):
        _plan(DAGS / "broken_dag.py")


def test_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(AirflowDagError, match=r"'merge'.*did you mean 'merge_data'.*\['create_employees_table'"):
        _plan(EXAMPLES / "dags" / "tutorial_original.py", tasks=["merge"])


def test_unsupported_operator_names_the_supported_ones() -> None:
    with pytest.raises(AirflowDagError, match=r"BashOperator.*supported operator kinds: .*SQLExecuteQueryOperator.*PythonOperator"):
        _plan(DAGS / "bash_dag.py", conn_ids=["x"])


def test_no_conn_id_to_map() -> None:
    with pytest.raises(AirflowDagError, match=r"names no connection id.*conn_ids="):
        _plan(DAGS / "bash_dag.py", tasks=[])


def test_missing_extra_names_the_pip_command(pytester: pytest.Pytester) -> None:
    # a fresh interpreter where `import airflow` fails
    pytester.makepyfile(
        probe=f"""
        import sys
        sys.modules["airflow"] = None
        import idemtest
        from idemtest import Target
        t = idemtest.airflow.check(dag={str(EXAMPLES / 'dags' / 'events_interval.py')!r}, targets=[Target("t")])
        try:
            idemtest.airflow.definition_of(t).plan()
        except idemtest.MissingExtraError as e:
            print("MISSING:", e)
        """
    )
    result = pytester.run(sys.executable, "probe.py")
    result.stdout.fnmatch_lines(["MISSING: airflow is not installed; install it with: pip install 'idemtest[airflow]'"])


def test_duckdb_sandbox_skips_naming_postgresql(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_dag=f"""
        import idemtest
        from idemtest import Target
        test_interval = idemtest.airflow.check(dag={str(EXAMPLES / 'dags' / 'events_interval.py')!r}, targets=[Target("t")])
        """
    )
    result = pytester.runpytest_subprocess("--idempotency", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*Airflow checks run on PostgreSQL*--idem-db postgresql://*"])


# --- real runs (PostgreSQL) ------------------------------------------------------------------

STATS_MODULE = f"""
import idemtest
from idemtest import Target
from idemtest.adapters.airflow import dag_windows, load_dag
from examples.sources import EVENTS

check = idemtest.airflow.check(dag={str(EXAMPLES / 'dags' / 'events_interval.py')!r}, sources=[EVENTS],
                               targets=[Target("analytics.loaded_events", key="event_id")],
                               setup={str(EXAMPLES / "schema.sql")!r}, examples=5)
hooks = idemtest.airflow.check(dag={str(DAGS / 'hooks_dag.py')!r}, sources=[EVENTS],
                               targets=[Target("analytics.events", key="event_id")],
                               setup="CREATE SCHEMA src; CREATE SCHEMA analytics; "
                                     "CREATE TABLE src.events (event_id BIGINT, order_id BIGINT, event_type VARCHAR, amount DECIMAL(12,2), event_time TIMESTAMP); "
                                     "CREATE TABLE analytics.events (event_id BIGINT PRIMARY KEY, event_type VARCHAR, event_time TIMESTAMP);",
                               examples=4)

def test_scenarios_stay_inside_the_dag(idempotency):
    check(idempotency)
    d = idemtest.airflow.definition_of(check)
    plan = d.plan()
    dag, _ = load_dag(d.dag)
    # retried, but never more often than the DAG's retries=2
    assert 1 < d.observed.max_attempt <= plan.semantics.retries + 1
    # only the DAG's own data intervals ran
    assert d.observed.windows <= set(dag_windows(dag, 3)) and len(d.observed.windows) == 3
    assert d.observed.clears > 0

def test_hooks_are_instrumented(idempotency):
    hooks(idempotency)
    d = idemtest.airflow.definition_of(hooks)
    assert d.observed.max_attempt > 1  # crashes landed inside the hooks' statements, retried
"""


@pytest.mark.postgres
def test_real_runs_stay_inside_the_dag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_stats=STATS_MODULE)
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    env_path = os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    pytester._monkeypatch.setenv("PYTHONPATH", env_path)
    result = pytester.runpytest_subprocess("--idempotency", "--idem-db", DSN, "-W", "ignore::DeprecationWarning", timeout=600)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*crashes injected*retries*"])


@pytest.mark.postgres
def test_an_unscheduled_dag_with_deployment_sql_paths_is_checked_as_written(pytester: pytest.Pytester) -> None:
    """The public DAG's shape, its file unchanged: run per day as its backfills run it, its SQL
    files found through the check's template_searchpath; the never-cleared staging table is
    caught (a second run of a date appends its purchases again)."""
    pytester.makepyfile(
        test_sales=f"""
        import idemtest
        from idemtest import Source, Target

        COLS = {{"purchase_id": "INTEGER", "purchase_date": "DATE", "product_id": "INTEGER", "total_revenue": "REAL"}}
        DDL = "(purchase_id INTEGER, purchase_date TEXT, product_id INTEGER, total_revenue REAL);"
        test_sales = idemtest.airflow.check(
            dag={str(DAGS / 'staging_sales_dag.py')!r},
            sources=[Source("purchases", columns=COLS, key="purchase_id", event_time="purchase_date")],
            targets=[Target("products_sales", key="purchase_id")],
            setup="".join(f"CREATE TABLE {{t}} {{DDL}}" for t in ("purchases", "stg_purchases", "products_sales")),
            start="2020-01-01", schedule="@daily", template_searchpath=[{str(DAGS / 'sql' / 'sales')!r}],
        )
        """
    )
    result = pytester.runpytest_subprocess("--idempotency", "--idem-db", DSN, "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", timeout=600)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*P2 declared keys stay unique — VIOLATED*", "*duplicate keys in products_sales*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.postgres
def test_unmapped_conn_id_names_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_dag=f"""
        import idemtest
        from idemtest import Target
        test_dynamic = idemtest.airflow.check(dag={str(DAGS / 'dynamic_conn_dag.py')!r}, targets=[Target("t")],
                                              conn_ids=["warehouse"], setup="CREATE TABLE t (x INT);")
        """
    )
    result = pytester.runpytest_subprocess("--idempotency", "--idem-db", DSN, "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*a task uses conn_id 'reporting_db'*pass conn_ids=*reporting_db*"])


@pytest.mark.postgres
def test_emitted_check_catches_the_buggy_dag(pytester: pytest.Pytester) -> None:
    from idemtest.review import main as review_main

    out = pytester.path / "checks"
    assert review_main([str(EXAMPLES), "--emit-checks", str(out), "--fail-on", "none", "-o", str(pytester.path / "r.txt")]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "test_events_interval_idempotency.py", "test_events_watermark_idempotency.py",
        "test_process_employees_fixed_idempotency.py", "test_process_employees_idempotency.py",
    ]
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    result = pytester.runpytest_subprocess(
        "--idempotency", "--idem-db", DSN, "-W", "ignore::DeprecationWarning",
        str(out / "test_events_watermark_idempotency.py"), timeout=600,
    )
    # as written: the watermark DAG is caught
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*P1 same outcome as one clean run — VIOLATED*", "*analytics.loaded_events: * missing*"])
