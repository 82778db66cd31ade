"""Correct PostgreSQL pipelines: they pass under every perturbation idemtest
generates, two runs at once included.

    pytest --idempotency --idem-db postgresql://postgres@127.0.0.1:5432/postgres examples/postgres

On the default DuckDB sandbox every check here is skipped: their specs declare
dialect="postgres" (`%s` placeholders, psycopg, PostgreSQL SQL).
"""

from __future__ import annotations

import idemtest
from idemtest import Spec, Target, daily, hourly

from ..sources import EMPLOYEES_CSV, EVENTS, FX_RATES, ORDER_CHANGES, ORDERS, TRIPS
from . import EXAMPLES, SCHEMA, fewer_rows
from .pipelines import (
    employees_airflow,
    hourly_revenue,
    order_status,
    orders_merge,
    orders_sql_now,
    pooled,
    revenue_summary,
    trips_fx,
)

# Three hourly windows keep every check to a handful of runs; a lateness shorter
# than a window means a lookback re-reads only the end of the previous one.

# (a) MERGE driven by an event-time watermark, saved in the same transaction
merge_orders_spec = Spec(
    name="pg_merge_orders",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(ORDERS)],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="30m",
    concurrency="same-partition",  # max_active_runs > 1: even two runs of one window may overlap
)


@idemtest.check(merge_orders_spec, examples=EXAMPLES)
def test_merge_with_event_time_watermark(run):
    orders_merge.load_orders(run.dsn, lookback=merge_orders_spec.max_lateness)


# (b) INSERT … ON CONFLICT DO UPDATE from a CDC log, guarded by the change's version
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


@idemtest.check(order_status_spec, examples=EXAMPLES)
def test_upsert_with_version_guard(run):
    order_status.upsert_order_status(run.dsn, start=run.window.start, end=run.window.end, lookback=order_status_spec.max_lateness)


# (c) delete + insert of the window's hours in one transaction; a reader sampled at
# every statement boundary must see an hour whole (P4)
hourly_revenue_spec = Spec(
    name="pg_hourly_revenue",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(EVENTS)],
    targets=[Target("analytics.hourly_revenue", key="hour", atomic=True, partition_by="hour")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="30m",
    concurrency="same-partition",
)


@idemtest.check(hourly_revenue_spec, examples=EXAMPLES)
def test_delete_insert_in_one_transaction(run):
    hourly_revenue.rebuild_hours(run.conn, start=run.window.start, end=run.window.end, lookback=hourly_revenue_spec.max_lateness)


# (d) the Airflow tutorial's temp table + upsert, done right (CSV files in run.landing)
employees_spec = Spec(
    name="pg_employees",
    dialect="postgres",
    setup=SCHEMA,
    sources=[EMPLOYEES_CSV],
    targets=[Target("analytics.employees", key="serial_number")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="30m",
    concurrency="same-partition",
)


@idemtest.check(employees_spec, examples=EXAMPLES)
def test_airflow_temp_table_upsert(run):
    employees_airflow.merge_employees(run.dsn, run.landing)


# (e) a running total kept by read-modify-write: fine as long as runs never overlap
# (test_buggy.py::test_running_total_read_modify_write runs two at once)
running_total_sequential_spec = Spec(
    name="pg_running_total_sequential",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(EVENTS)],
    targets=[Target("analytics.window_revenue", key="window_start"), Target("analytics.revenue_summary", key="id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness=0,  # events land on time here: the point is the race, not late data
    concurrency="none",
)


@idemtest.check(running_total_sequential_spec, examples=EXAMPLES)
def test_running_total_without_concurrency(run):
    revenue_summary.update_revenue(run.conn, start=run.window.start, end=run.window.end)


# (f) a pool of worker threads, each job on its own psycopg 3 connection to run.dsn (dlt,
# Singer SDK): every worker's statement is traced and crashable
pooled_spec = Spec(
    name="pg_pooled_events",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(EVENTS)],
    targets=[Target("analytics.loaded_events", key="event_id", ignore=["load_id"])],  # load ids come from the clock
    schedule=hourly("2026-06-01", periods=3),
)


@idemtest.check(pooled_spec, examples=EXAMPLES)
def test_pool_replaces_jobs_by_key(run):
    import psycopg

    pooled.replace_jobs_then_record(lambda: psycopg.connect(run.dsn), run.window.start, run.window.end)


# (g) two load ids from `str(time.time())` in one run, on psycopg2: the simulated clock ticks
@idemtest.check(pooled_spec, examples=EXAMPLES)
def test_two_load_ids_from_the_clock(run):
    import psycopg2

    pooled.load_in_two_packages(lambda: psycopg2.connect(run.dsn), run.window.start, run.window.end)


# (f) keyless trips: the window replaced as a multiset, checked against a reference too
trips_spec = Spec(
    name="pg_replace_trip_window",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(TRIPS)],  # key=None
    targets=[Target("analytics.trips", expected="SELECT * FROM src.trips")],
    schedule=hourly("2026-06-01", periods=3),
)


@idemtest.check(trips_spec, examples=EXAMPLES)
def test_keyless_trips_window_replaced(run):
    trips_fx.replace_trip_window(run.conn, start=run.window.start, end=run.window.end)


# (g) a snapshot source (no event time), loaded daily at 06:00 into a table the load creates
fx_spec = Spec(
    name="pg_replace_rates",
    dialect="postgres",
    setup=SCHEMA,
    sources=[FX_RATES],
    targets=[Target("analytics.fx_rates", key="currency", expected="SELECT * FROM src.fx_rates")],
    schedule=daily("2026-06-01", periods=3, at="06:00"),
)


@idemtest.check(fx_spec, examples=EXAMPLES)
def test_snapshot_rates_replaced(run):
    trips_fx.replace_rates(run.conn)


# (f) SQL now() only caps the read; the range starts at the loaded data's own watermark
sql_now_spec = Spec(
    name="pg_sql_now_capped_watermark",
    dialect="postgres",
    setup=SCHEMA,
    sources=[fewer_rows(ORDERS)],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="30m",
)


@idemtest.check(sql_now_spec, examples=EXAMPLES)
def test_sql_now_capped_event_time_watermark(run):
    orders_sql_now.upsert_orders_since_loaded(run.conn, lookback=sql_now_spec.max_lateness)
