"""Buggy PostgreSQL pipelines: each is caught by idemtest.

They are strict xfails, their reason starting with the bug class number of
examples/README.md — the test fails if idemtest stops catching the bug. Drop a
mark to read the full failure report.

    pytest --idempotency --idem-db postgresql://postgres@127.0.0.1:5432/postgres examples/postgres -rxX

On the default DuckDB sandbox every check here is skipped (dialect="postgres").
"""

from __future__ import annotations

import pytest

import idemtest
from idemtest import Spec, Target, hourly

from ..sources import EMPLOYEES_CSV, EVENTS, ORDER_CHANGES, ORDERS, TRIPS
from . import BUG_EXAMPLES, SCHEMA, fewer_rows
from .pipelines import (
    employees_airflow,
    hourly_revenue,
    order_status,
    orders_do_nothing,
    orders_sql_now,
    pooled,
    revenue_summary,
    trips_fx,
)


def caught(bug: str, raises: type[Exception] = idemtest.IdempotencyViolation):
    return pytest.mark.xfail(strict=True, raises=raises, reason=bug)


# --- sequential bug classes ---------------------------------------------------------

order_status_spec = Spec(
    name="pg_order_status",
    dialect="postgres",
    setup=SCHEMA,
    sources=[ORDER_CHANGES],
    targets=[Target("analytics.order_status", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="30m",
    concurrency="same-partition",
)


@caught("13 upsert without a version guard: a backfill or catch-up run writes an older change over a newer one (dagster-io/dagster#15155)")
@idemtest.check(order_status_spec, examples=BUG_EXAMPLES)
def test_upsert_without_version_guard(run):
    order_status.upsert_order_status_unguarded(run.dsn, start=run.window.start, end=run.window.end, lookback=order_status_spec.max_lateness)


do_nothing_spec = Spec(
    name="pg_orders_do_nothing",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(ORDERS)],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="30m",
)


@caught("6 ON CONFLICT DO NOTHING keeps the first version of an order: dlt-hub/dlt#971")
@idemtest.check(do_nothing_spec, examples=BUG_EXAMPLES)
def test_on_conflict_do_nothing(run):
    orders_do_nothing.insert_new_orders(run.conn, start=run.window.start, end=run.window.end, lookback=do_nothing_spec.max_lateness)


# the autocommitted delete + insert judged on a keyed target (P3: rows gone after a crash) ...
autocommit_keyed_spec = Spec(
    name="pg_hourly_revenue_autocommit",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(EVENTS)],
    targets=[Target("analytics.hourly_revenue", key="hour")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="30m",
)


@caught("2 delete and insert committed separately: a crash between them leaves hours missing (P3; dagster-io/dagster#21278)")
@idemtest.check(autocommit_keyed_spec, examples=BUG_EXAMPLES)
def test_delete_insert_autocommit(run):
    hourly_revenue.rebuild_hours_autocommit(run.dsn, start=run.window.start, end=run.window.end, lookback=autocommit_keyed_spec.max_lateness)


# ... and on an atomic one without crashes (P4: a reader sees a deleted hour)
autocommit_atomic_spec = Spec(
    name="pg_hourly_revenue_autocommit_reader",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(EVENTS)],
    targets=[Target("analytics.hourly_revenue", atomic=True, partition_by="hour")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="30m",
    exercise={"duplicate", "backfill", "out_of_order"},
)


@caught("2 delete and insert committed separately: a reader sees an hour deleted and not yet re-inserted (P4; dagster-io/dagster#21278)")
@idemtest.check(autocommit_atomic_spec, examples=BUG_EXAMPLES)
def test_delete_insert_autocommit_seen_by_a_reader(run):
    hourly_revenue.rebuild_hours_autocommit(run.dsn, start=run.window.start, end=run.window.end, lookback=autocommit_atomic_spec.max_lateness)


# The tutorial's bug needs a crash at the right statement and data that lands after it;
# among all perturbations that takes many examples, so its check draws crashes only.
tutorial_spec = Spec(
    name="pg_employees_tutorial",
    dialect="postgres",
    setup=SCHEMA,
    sources=[EMPLOYEES_CSV],
    targets=[Target("analytics.employees", key="serial_number")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="30m",
    exercise={"crash"},
)


@caught("14 swallowed errors: after a crash the tutorial's `except` hides every failing run (apache/airflow PR 29158)")
@idemtest.check(tutorial_spec, examples=BUG_EXAMPLES)
def test_airflow_tutorial_swallowed_errors(run):
    employees_airflow.merge_employees_tutorial(run.dsn, run.landing)


# --- PostgreSQL is stricter than DuckDB: the load fails without any fault -----------

@caught(
    "15 upsert whose source repeats a key: CardinalityViolation on PostgreSQL, resolved silently by DuckDB (the query of apache/airflow PR 29158)",
    raises=idemtest.LoadError,
)
@idemtest.check(order_status_spec, examples=BUG_EXAMPLES)
def test_upsert_from_change_log_without_dedup(run):
    order_status.upsert_order_changes_undeduplicated(run.dsn, start=run.window.start, end=run.window.end, lookback=order_status_spec.max_lateness)


# --- concurrency only: caught only by two runs at once ------------------------------

running_total_spec = Spec(
    name="pg_running_total",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(EVENTS)],
    targets=[Target("analytics.window_revenue", key="window_start"), Target("analytics.revenue_summary", key="id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness=0,  # events land on time here: the point is the race, not late data
    exercise={"concurrent"},
    concurrency="partitions",  # two different windows at once
)


@caught("11 read-modify-write of a running total: two runs at once lose an update (SQLMesh#3866)")
@idemtest.check(running_total_spec, examples=BUG_EXAMPLES)
def test_running_total_read_modify_write(run):
    revenue_summary.update_revenue(run.conn, start=run.window.start, end=run.window.end)


# --- writes on worker threads -------------------------------------------------------

pooled_spec = Spec(
    name="pg_pooled_append_events",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(EVENTS)],
    targets=[Target("analytics.loaded_events", key="event_id", ignore=["load_id"])],  # load ids come from the clock
    schedule=hourly("2026-06-01", periods=3),
)


@caught("1 append under retry: data committed by pool workers before the load record, dlt-hub/dlt#4052")
@idemtest.check(pooled_spec)
def test_pool_appends_then_records_the_load(run):
    import psycopg

    pooled.append_jobs_then_record(lambda: psycopg.connect(run.dsn), run.window.start, run.window.end)


# --- the clean run itself is wrong: only a reference shows it -----------------------

double_load_spec = Spec(
    name="pg_append_with_lookback",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(TRIPS)],
    targets=[Target("analytics.trips", expected="SELECT * FROM src.trips")],
    schedule=hourly("2026-06-01", periods=3),
)


@caught("20 clock-relative lookback appended: every trip loaded twice in one clean pass (P5; dbt-labs/dbt-core#10867)")
@idemtest.check(double_load_spec, examples=BUG_EXAMPLES)
def test_lookback_append_double_loads(run):
    trips_fx.append_with_lookback(run.conn)
sql_now_spec = Spec(
    name="pg_sql_now_watermark",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(ORDERS)],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="30m",
)


@caught("19 a SQL now() watermark misses late rows: dbt-labs/dbt-core#10867")
@idemtest.check(sql_now_spec, examples=BUG_EXAMPLES)
def test_sql_now_watermark(run):
    orders_sql_now.upsert_orders_last_hour(run.conn)


