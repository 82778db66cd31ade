"""Correct pipelines: they pass under every perturbation idemtest generates —
retries after crashes at any statement, duplicate runs, late rows, backfills,
out-of-order catch-up and two runs at once.

    pytest --idempotency examples/duckdb
"""

from __future__ import annotations

import idemtest
from idemtest import Spec, Target, daily, hourly, monthly

from ..sources import CUSTOMER_EXPORT, EVENTS, ORDER_LINES, ORDERS, PAYMENTS, TRIPS, TRIPS_MONTHLY
from . import SCHEMA as SETUP
from .pipelines import batches, crm, events, order_lines, orders, payments, pooled, revenue, trips

# (a) MERGE with a lookback on an event-time watermark
merge_orders_spec = Spec(
    name="merge_orders",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[ORDERS],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
)


@idemtest.check(merge_orders_spec)
def test_merge_orders_with_lookback(run):
    orders.merge_orders(run.conn, run.state, lookback=merge_orders_spec.max_lateness)


# (b) delete + insert of the window's partition (plus lookback) in one transaction
partition_spec = Spec(
    name="replace_event_partition",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.fct_order_events", key="event_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
)


@idemtest.check(partition_spec)
def test_replace_event_partition(run):
    events.replace_event_partition(run.conn, run.window.start, run.window.end, lookback=partition_spec.max_lateness)


# (c) guarded upsert: only a newer version replaces a row
payments_spec = Spec(
    name="upsert_payments",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[PAYMENTS],
    targets=[Target("analytics.payments", key="payment_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
)


@idemtest.check(payments_spec)
def test_guarded_upsert_payments(run):
    payments.upsert_payments(run.conn, run.window.start, run.window.end, lookback=payments_spec.max_lateness)


# (d) atomic full refresh: build, then swap in one transaction (own connection from a path)
daily_revenue_spec = Spec(
    name="rebuild_daily_revenue",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.daily_revenue", key="day")],
    schedule=daily("2026-06-01", periods=3),
    max_lateness="1h",
)


@idemtest.check(daily_revenue_spec)
def test_full_refresh_swap(run):
    revenue.rebuild_daily_revenue(run.path)


# (e) a pool of worker threads writes the jobs, each on its own connection (dlt, Singer SDK):
# idemtest follows the pool's threads, so a crash can fall on any worker's statement
pooled_spec = Spec(
    name="pooled_events",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.loaded_events", key="event_id", ignore=["load_id"])],  # load ids come from the clock
    schedule=hourly("2026-06-01", periods=3),
)


@idemtest.check(pooled_spec)
def test_pool_replaces_jobs_by_key(run):
    import duckdb

    pooled.replace_jobs_then_record(lambda: duckdb.connect(run.path), run.window.start, run.window.end)


# (f) two load ids from `str(time.time())` in one run: the simulated clock ticks, so they differ
@idemtest.check(pooled_spec)
def test_two_load_ids_from_the_clock(run):
    import duckdb

    pooled.load_in_two_packages(lambda: duckdb.connect(run.path), run.window.start, run.window.end)


# (g) a library-style job wrapper whose `finally` waits forever for a killed job: each
# crashed attempt is reported CRASHED at once (the process is dead), not HUNG after the timeout
@idemtest.check(pooled_spec)
def test_job_wrapper_that_waits_on_a_killed_job(run):
    import duckdb

    pooled.run_jobs_in_wrapper(lambda: duckdb.connect(run.path), run.window.start, run.window.end)


# --- what real pipelines declare: keyless, snapshot and file sources, file outputs, run delay

trips_spec = Spec(
    name="replace_trip_window",
    setup=SETUP,
    dialect="duckdb",
    sources=[TRIPS],  # key=None: no trip id; identical trips occur
    targets=[Target("analytics.trips", expected="SELECT * FROM src.trips")],  # compared as a multiset, and against the source
    schedule=hourly("2026-06-01", periods=3),
)


@idemtest.check(trips_spec)
def test_keyless_trips_window_replaced(run):
    trips.replace_trip_window(run.conn, run.window.start, run.window.end)


monthly_spec = Spec(
    name="load_month_file",
    setup=SETUP,
    dialect="duckdb",
    sources=[TRIPS_MONTHLY],  # one Parquet file per month, rewritten as late trips land
    # the load creates analytics.monthly_trips itself (CREATE TABLE IF NOT EXISTS)
    targets=[Target("analytics.monthly_trips")],
    schedule=monthly("2026-01-01", periods=3, day=5),  # runs on the 5th for the month before
    max_lateness="4d",  # trips land up to 4 days late: all in the file by the 5th
    concurrency="none",  # keyless: two runs at once cannot be told apart from a double load
)


@idemtest.check(monthly_spec)
def test_monthly_parquet_file_run_on_the_5th(run):
    trips.load_month_file(run.conn, run.landing, run.window.start, run.window.end, run.partition)


crm_spec = Spec(
    name="replace_from_export",
    setup=SETUP,
    dialect="duckdb",
    sources=[CUSTOMER_EXPORT],  # snapshot=True: each day's export replaces the last
    targets=[Target("analytics.crm_customers", key="customer_id")],  # created by the load (CREATE OR REPLACE)
    schedule=daily("2026-06-01", periods=3, at="02:00"),
)


@idemtest.check(crm_spec)
def test_snapshot_file_replaces_table(run):
    crm.replace_from_export(run.conn, run.landing)


export_spec = Spec(
    name="export_trips_csv",
    setup=SETUP,
    dialect="duckdb",
    sources=[TRIPS],
    # the output is files: out/trips_<day>.csv, compared as rows; readers must never see half a day
    targets=[Target("trip_exports", file="out/trips_{partition}.csv", atomic=True, partition_by="pickup_date")],
    schedule=daily("2026-06-01", periods=3, at="01:00"),
)


@idemtest.check(export_spec)
def test_csv_export_renamed_into_place(run):
    trips.export_trips_csv(run.conn, run.landing, run.partition)


order_lines_spec = Spec(
    name="singer_upsert_lines",
    setup=SETUP,
    dialect="duckdb",
    sources=[ORDER_LINES],  # keys whose parts collide when concatenated: (1, 11) and (11, 1)
    targets=[Target("analytics.order_lines", key=["order_id", "line_no"], expected="SELECT * FROM src.order_lines", ignore=["_sdc_primary_key"])],
    schedule=hourly("2026-06-01", periods=3),
)


@idemtest.check(order_lines_spec)
def test_singer_upsert_on_json_key(run):
    order_lines.upsert_lines(run.conn, run.window.start, run.window.end)


# (e) the load-log marker committed in the same transaction as the batch
load_log_spec = Spec(
    name="load_log_in_transaction",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.fct_order_events", key="event_id")],
    schedule=hourly("2026-06-01", periods=3),
)


@idemtest.check(load_log_spec)
def test_completion_marker_in_transaction(run):
    batches.load_batch_marker_in_transaction(run.conn, run.window.start, run.window.end)


# (f) staging in a TEMP table, errors re-raised (the twin of the swallowed-exception bug)
staging_spec = Spec(
    name="staging_temp_table",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.fct_order_events", key="event_id")],
    schedule=hourly("2026-06-01", periods=3),
)


@idemtest.check(staging_spec)
def test_staging_temp_table_errors_raised(run):
    batches.load_batch_via_staging(run.conn, run.window.start, run.window.end)


# (g) MERGE on the business key into a table without a primary key (the twin of MERGE on the version key)
merge_on_key_spec = Spec(
    name="merge_on_business_key",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[ORDERS],
    targets=[Target("analytics.orders_lake", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
)


@idemtest.check(merge_on_key_spec)
def test_merge_on_business_key(run):
    orders.merge_orders_on_key(run.conn, run.window.start, run.window.end, lookback=merge_on_key_spec.max_lateness)


# (h) SQL now() only as a cap; an event-time watermark with lookback decides the read
sql_now_watermark_spec = Spec(
    name="sql_now_capped_watermark",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[ORDERS],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
)


@idemtest.check(sql_now_watermark_spec)
def test_sql_now_capped_event_time_watermark(run):
    orders.load_orders_sql_now_with_watermark(run.conn, lookback=sql_now_watermark_spec.max_lateness)
