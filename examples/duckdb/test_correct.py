"""Correct pipelines: they pass under every perturbation idemtest generates —
retries after crashes at any statement, duplicate runs, late rows, backfills,
out-of-order catch-up and two runs at once.

    pytest --idempotency examples/duckdb
"""

from __future__ import annotations

import idemtest
from idemtest import Spec, Target, daily, hourly

from ..sources import EVENTS, ORDERS, PAYMENTS
from . import SCHEMA as SETUP
from .pipelines import batches, events, orders, payments, revenue

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
