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
from .pipelines import events, orders, payments, pooled, revenue

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
