"""The examples/ project: every test is a spec'd check, buggy ones are strict
xfails, every source is declared once and matches both schemas, the pipelines
run on a plain DuckDB database without idemtest, `pytest examples` without
--idempotency skips them with the reason, and a machine without the optional
drivers still collects every example and skips the ones that need an extra."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import idemtest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import examples.airflow.test_dags as airflow_dags  # noqa: E402
import examples.dagster.test_orders as dagster_orders  # noqa: E402
import examples.dbt.test_shop as dbt_shop  # noqa: E402
import examples.dlt.test_shop as dlt_shop  # noqa: E402
import examples.duckdb as duck  # noqa: E402
import examples.duckdb.test_buggy as duck_buggy  # noqa: E402
import examples.duckdb.test_correct as duck_correct  # noqa: E402
import examples.postgres as pg  # noqa: E402
import examples.postgres.test_buggy as pg_buggy  # noqa: E402
import examples.postgres.test_correct as pg_correct  # noqa: E402
import examples.spark.test_jobs as spark_jobs  # noqa: E402
from examples import sources  # noqa: E402
from examples.duckdb.pipelines import (  # noqa: E402
    batches,
    crm,
    customers,
    events,
    order_lines,
    orders,
    payments,
    pooled,
    revenue,
    trips,
)
from examples.postgres.pipelines import (  # noqa: E402
    employees_airflow,
    hourly_revenue,
    order_status,
    orders_do_nothing,
    orders_merge,
    orders_sql_now,
    revenue_summary,
    trips_fx,
)
from examples.postgres.pipelines import pooled as pg_pooled  # noqa: E402

EXAMPLES = ROOT / "examples"
PIPELINES = (
    batches, crm, customers, events, order_lines, orders, payments, pooled, revenue, trips,
    pg_pooled, employees_airflow, hourly_revenue, order_status, orders_do_nothing, orders_merge, orders_sql_now, revenue_summary, trips_fx,
)
# modules an idemtest extra installs: never imported at the top of an example
OPTIONAL = {"psycopg", "psycopg2", "psycopg_binary", "sqlalchemy", "duckdb_engine", "pyspark", "deltalake", "pyarrow", "delta"}
# ... nor the engines the base package installs: collecting examples/ must never fail,
# whatever is missing (a check that needs it then skips or fails on its own)
NOT_AT_TOP = OPTIONAL | {"duckdb", "pandas"}


def checks(mod):
    return {n: fn for n, fn in vars(mod).items() if n.startswith("test_")}


BUGGY = {**{f"duckdb::{n}": fn for n, fn in checks(duck_buggy).items()}, **{f"postgres::{n}": fn for n, fn in checks(pg_buggy).items()}}
CORRECT = {**{f"duckdb::{n}": fn for n, fn in checks(duck_correct).items()}, **{f"postgres::{n}": fn for n, fn in checks(pg_correct).items()}}
ALL = {**BUGGY, **CORRECT}
SCHEMAS = {"duckdb": duck.SCHEMA, "postgres": pg.SCHEMA}
# examples/dbt: idemtest.dbt.check tests of a dbt project (no Spec of their own); counted
# with the others, their buggy ones marked like the others
DBT = {f"dbt::{n}": fn for n, fn in checks(dbt_shop).items()}
DBT_BUGGY = {n: fn for n, fn in DBT.items() if getattr(fn, "pytestmark", None)}
# examples/airflow: idemtest.airflow.check tests of DAG files, counted the same way
AIRFLOW = {f"airflow::{n}": fn for n, fn in checks(airflow_dags).items()}
AIRFLOW_BUGGY = {n: fn for n, fn in AIRFLOW.items() if getattr(fn, "pytestmark", None)}
# examples/spark: idemtest.spark.check tests of Spark jobs, counted and marked the same way
SPARK = {f"spark::{n}": fn for n, fn in checks(spark_jobs).items() if hasattr(fn, "idemtest_spark")}
SPARK_BUGGY = {n: fn for n, fn in SPARK.items() if getattr(fn, "pytestmark", None)}
# examples/dlt: idemtest.dlt.check tests of the dlt resources in examples/dlt/shop.py, the same way
DLT = {f"dlt::{n}": fn for n, fn in checks(dlt_shop).items()}
DLT_BUGGY = {n: fn for n, fn in DLT.items() if getattr(fn, "pytestmark", None)}
# examples/dagster: idemtest.dagster.check tests of Dagster definitions, counted the same way
DAGSTER = {f"dagster::{n}": fn for n, fn in checks(dagster_orders).items()}
DAGSTER_BUGGY = {n: fn for n, fn in DAGSTER.items() if getattr(fn, "pytestmark", None)}


def test_every_example_is_an_idemtest_check():
    assert (len(checks(duck_correct)), len(checks(duck_buggy))) == (16, 25)
    assert (len(checks(pg_correct)), len(checks(pg_buggy))) == (10, 10)
    assert (len(DBT), len(DBT_BUGGY)) == (6, 4)
    assert all(fn.idemtest_dbt.project_dir.name == "shop" for fn in DBT.values())
    assert (len(AIRFLOW), len(AIRFLOW_BUGGY)) == (4, 2)
    assert all(fn.idemtest_airflow.base.name == "airflow" for fn in AIRFLOW.values())
    assert (len(SPARK), len(SPARK_BUGGY)) == (8, 5)
    assert (len(DLT), len(DLT_BUGGY)) == (5, 3)
    assert all(fn.idemtest_dlt.source.startswith("examples.dlt.shop:") for fn in DLT.values())
    assert (len(DAGSTER), len(DAGSTER_BUGGY)) == (6, 4)
    assert {fn.idemtest_dagster.assets for fn in DAGSTER.values()} == {"pipelines/orders.py", "pipelines/orders_pg.py"}
    for name, fn in ALL.items():
        check = fn.idemtest
        assert isinstance(check, idemtest.CheckDefinition), name
        assert check.spec.dialect == name.split("::")[0], f"{name}: the spec names the dialect of its folder"


@pytest.mark.parametrize("name", sorted(BUGGY) + sorted(DBT_BUGGY) + sorted(DLT_BUGGY) + sorted(AIRFLOW_BUGGY) + sorted(DAGSTER_BUGGY) + sorted(SPARK_BUGGY))
def test_buggy_examples_are_strict_xfails_on_a_violation(name):
    marks = [m for m in getattr({**BUGGY, **DBT_BUGGY, **DLT_BUGGY, **AIRFLOW_BUGGY, **DAGSTER_BUGGY, **SPARK_BUGGY}[name], "pytestmark", []) if m.name == "xfail"]
    assert len(marks) == 1, name
    mark = marks[0]
    assert mark.kwargs["strict"] is True
    # a PostgreSQL-only bug fails an ordinary run (LoadError); every other one is a violation
    assert mark.kwargs["raises"] in (idemtest.IdempotencyViolation, idemtest.LoadError)
    assert re.match(r"\d+ ", mark.kwargs["reason"]), "the reason starts with the bug class number"


def test_correct_examples_are_not_marked():
    for name, fn in CORRECT.items():
        assert not getattr(fn, "pytestmark", []), name


def test_pipelines_docstrings_name_a_real_thread():
    for mod in PIPELINES:
        for name, fn in vars(mod).items():
            if callable(fn) and getattr(fn, "__module__", None) == mod.__name__ and not name.startswith("_"):
                doc = fn.__doc__ or ""
                assert doc.startswith(("CORRECT", "BUG")), f"{mod.__name__}.{name}"
                if doc.startswith("BUG"):
                    assert "#" in doc or " PR " in doc, f"{mod.__name__}.{name} names no thread"


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:  # module level only: imports inside functions are the point
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks never run
            continue
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_example_imports_an_optional_driver_at_module_level():
    for path in sorted(EXAMPLES.rglob("*.py")):
        if path.parent == EXAMPLES / "dagster" / "pipelines":
            continue  # Dagster definitions, imported only when a Dagster check runs (never at collection)
        found = _top_level_imports(path) & NOT_AT_TOP
        assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)} at the top: import it inside the function that needs it"


def test_pipelines_do_not_import_idemtest():
    for path in sorted(EXAMPLES.glob("*/pipelines/*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(m.split(".")[0] == "idemtest" for m in mods), f"{path.relative_to(ROOT)} imports idemtest"


# --- sources: one declaration each, the same columns in both schemas ------------------


def _source_calls() -> list[tuple[Path, str]]:
    """Every `Source(...)` / `idemtest.Source(...)` call under examples/, with its table."""
    found = []
    for path in sorted(EXAMPLES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
                if name == "Source":
                    arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "table"), None)
                    found.append((path, arg.value if isinstance(arg, ast.Constant) else ast.unparse(arg)))
    return found


DECLARED = {v.table: v for v in vars(sources).values() if isinstance(v, idemtest.Source)}


def test_every_source_is_declared_once_in_sources_py():
    calls = _source_calls()
    assert calls, "no Source(...) found: the scan is broken"
    elsewhere = [f"{p.relative_to(ROOT)}: {t}" for p, t in calls if p != EXAMPLES / "sources.py"]
    assert not elsewhere, f"declare sources in examples/sources.py only (derive with dataclasses.replace): {elsewhere}"
    tables = [t for _, t in calls]
    assert len(tables) == len(set(tables)) == len(DECLARED), f"a table declared twice: {tables}"


def test_every_spec_reads_a_declared_source():
    """A spec uses the declared Source itself, or a `dataclasses.replace` of it that
    keeps the table's columns (the schema is shared; only generation may vary)."""
    for name, fn in ALL.items():
        for s in fn.idemtest.spec.sources:
            declared = DECLARED.get(s.table)
            assert declared is not None, f"{name}: {s.table} is not declared in examples/sources.py"
            if s is not declared:
                assert dict(s.columns) == dict(declared.columns) and s.keys == declared.keys, f"{name}: {s.table} changes the declared columns"


def _columns(con, table):
    schema, name = table.split(".")
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()


@pytest.mark.parametrize("backend", sorted(SCHEMAS))
def test_schema_creates_every_source_with_the_declared_types(backend):
    """Both schema.sql files are plain SQL DuckDB runs too: compare their `src`
    tables with the Source declarations, types normalised by DuckDB."""
    con = duckdb.connect()
    con.execute(SCHEMAS[backend].read_text())
    used = {s.table for name, fn in ALL.items() if name.startswith(backend) for s in fn.idemtest.spec.sources if s.landing is None}
    assert used
    for table in sorted(used):
        want = [(c, con.execute(f"SELECT typeof(CAST(NULL AS {t}))").fetchone()[0]) for c, t in DECLARED[table].columns.items()]
        assert _columns(con, table) == want, f"{backend}/schema.sql: {table}"
    con.close()


# --- the pipelines are ordinary code ----------------------------------------------


def test_pipelines_run_without_idemtest(tmp_path):
    """Plain production-style use: a DuckDB file, a dict as the state store."""
    path = str(tmp_path / "wh.duckdb")
    con = duckdb.connect(path)
    con.execute(duck.SCHEMA.read_text())
    t0 = datetime(2026, 6, 1)
    con.execute("INSERT INTO src.orders VALUES (1, 'a@example.com', 'new', 10.00, ?), (2, 'b@example.com', 'paid', 5.00, ?)", [t0, t0 + timedelta(minutes=30)])
    con.execute("INSERT INTO src.events VALUES (1, 1, 'purchase', 10.00, ?), (2, 2, 'purchase', 5.00, ?)", [t0, t0 + timedelta(minutes=30)])

    class DictState(dict):
        def set(self, k, v):
            self[k] = v

    state = DictState()
    assert orders.merge_orders(con, state) == 2
    assert orders.merge_orders(con, state) == 2
    assert state[orders.CURSOR] == t0 + timedelta(minutes=30)
    events.replace_event_partition(con, t0, t0 + timedelta(hours=1))
    events.replace_event_partition(con, t0, t0 + timedelta(hours=1))
    assert con.execute("SELECT count(*) FROM analytics.fct_order_events").fetchone() == (2,)
    con.close()
    revenue.rebuild_daily_revenue(path)
    con = duckdb.connect(path)
    assert con.execute("SELECT day, events, revenue FROM analytics.daily_revenue").fetchall() == [(t0.date(), 2, 15)]
    con.close()


# --- through pytest ------------------------------------------------------------------


def _pytest(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
    )


def test_examples_are_skipped_without_the_flag():
    proc = _pytest("examples", "-rs", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # every check is skipped (the PostgreSQL ones too), none runs
    m = re.search(r"(\d+) skipped in", proc.stdout)
    assert m and int(m.group(1)) == len(ALL) + len(DBT) + len(DLT) + len(AIRFLOW) + len(DAGSTER) + len(SPARK), proc.stdout
    assert "passed" not in proc.stdout and "failed" not in proc.stdout
    assert "--idempotency" in proc.stdout


def test_examples_run_under_the_plugin():
    """One correct and one buggy DuckDB example end to end, and a PostgreSQL one
    skipped on DuckDB with the option that runs it."""
    proc = _pytest(
        "--idempotency", "examples", "-rsxX",
        "-k", "duckdb and (test_guarded_upsert_payments or test_on_conflict_do_nothing) or postgres and test_merge_with_event_time_watermark",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout and "1 skipped" in proc.stdout and "1 xfailed" in proc.stdout, proc.stdout
    assert "6 ON CONFLICT DO NOTHING" in proc.stdout
    assert "dialect='postgres'" in proc.stdout and "--idem-db postgresql://" in proc.stdout


# A sitecustomize on PYTHONPATH runs before pytest: its meta-path finder makes every
# optional driver unimportable, as on a machine with the base package only.
NO_DRIVERS = textwrap.dedent(
    f"""
    import sys

    BLOCKED = {sorted(OPTIONAL)!r}


    class BlockOptionalDrivers:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None


    sys.meta_path.insert(0, BlockOptionalDrivers())
    """
)


@pytest.fixture(scope="module")
def without_drivers(tmp_path_factory):
    import os

    site = tmp_path_factory.mktemp("no_drivers")
    (site / "sitecustomize.py").write_text(NO_DRIVERS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    probe = subprocess.run([sys.executable, "-c", "import psycopg2"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'psycopg2'" in probe.stderr, "the drivers are not blocked"
    return env


def test_examples_collect_without_the_optional_drivers(without_drivers):
    proc = _pytest("examples", "--collect-only", env=without_drivers, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(ALL) + len(DBT) + len(DLT) + len(AIRFLOW) + len(DAGSTER) + len(SPARK)} tests collected" in proc.stdout, proc.stdout


def test_an_example_needing_an_extra_is_skipped_with_the_pip_command(without_drivers):
    proc = _pytest("--idempotency", "examples/duckdb/test_buggy.py", "-k", "test_pandas_to_sql_append", "-rs", env=without_drivers, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout, proc.stdout
    assert "pip install 'idemtest[sqlalchemy]'" in proc.stdout, proc.stdout
