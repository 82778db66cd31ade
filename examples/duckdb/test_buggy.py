"""Buggy pipelines, one per bug class: each is caught by idemtest.

They are strict xfails — the test fails if idemtest stops catching the bug.
Run them with `pytest --idempotency examples/duckdb -rxX` to see what was caught, or
drop the xfail mark to read the full failure report (minimal schedule, the
statement interrupted, the row diff and the replay command).
"""

from __future__ import annotations

import pytest

import idemtest
from idemtest import Spec, Target, daily, hourly, monthly

from ..sources import (
    CUSTOMER_EXPORT,
    CUSTOMERS,
    EVENTS,
    ORDER_LINES,
    ORDERS,
    PAYMENTS,
    TRIPS,
    TRIPS_MONTHLY,
)
from . import SCHEMA as SETUP
from .pipelines import (
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


def caught(bug: str):
    return pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason=bug)


# --- sequential bug classes ---------------------------------------------------------

append_spec = Spec(
    name="append_events",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.order_events", key="event_id")],
    schedule=hourly("2026-06-01", periods=3),
)


@caught("1 append under retry: dlt-hub/dlt#4052, WordPress/openverse-catalog#800")
@idemtest.check(append_spec)
def test_append_under_retry(run):
    events.append_events(run.conn, run.window.start, run.window.end)


@caught("1 append under retry (pandas to_sql through SQLAlchemy): dlt-hub/dlt#4052, openverse-catalog#800")
@idemtest.check(append_spec)
def test_pandas_to_sql_append(run):
    # imported here, not at the top: without idemtest[sqlalchemy] this check is skipped
    # with the pip command instead of breaking collection of every example
    import duckdb_engine  # noqa: F401  (the `duckdb://` dialect; without it create_engine raises NoSuchModuleError)
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    # the job builds its engine from a URL, as it would from WAREHOUSE_URL in production
    engine = create_engine(run.url, poolclass=NullPool)
    try:
        events.append_events_pandas(engine, run.window.start, run.window.end)
    finally:
        engine.dispose()


autocommit_partition_spec = Spec(
    name="replace_event_partition_autocommit",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.order_events", key="event_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
    concurrency="none",  # the table has no key: concurrent overlapping runs would duplicate too
)


@caught("2 delete and insert committed separately: dagster-io/dagster#21278, dlt-hub/dlt#3023")
@idemtest.check(autocommit_partition_spec)
def test_delete_then_insert_autocommit(run):
    events.replace_event_partition_autocommit(run.conn, run.window.start, run.window.end, lookback=autocommit_partition_spec.max_lateness)


watermark_first_spec = Spec(
    name="watermark_first",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[ORDERS],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    # the bug needs a crash between the watermark save and the INSERT: draw crashes only,
    # so every generated scenario can reach it (with all perturbations 200 could miss it)
    exercise={"crash"},
)


@caught("3 watermark saved before the load: datamill-co/target-postgres PR 120/130, adswerve/target-bigquery#9")
@idemtest.check(watermark_first_spec)
def test_watermark_saved_before_load(run):
    orders.load_orders_watermark_first(run.conn, run.state)


last_hour_spec = Spec(
    name="last_hour",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[ORDERS],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
)


@caught("4 wall-clock cutoff without lookback: dbt-labs/dbt-core#10867")
@idemtest.check(last_hour_spec)
def test_wall_clock_cutoff(run):
    orders.load_orders_last_hour(run.conn)


cursor_spec = Spec(
    name="strict_cursor",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[CUSTOMERS],
    targets=[Target("analytics.customers", key="customer_id")],
    schedule=daily("2026-06-01", periods=3),
    max_lateness="6h",  # the CRM keeps writing rows dated today after the nightly sync
)


@caught("5 strict > cursor drops rows at MAX(cursor): airbytehq/airbyte#14732, estuary/connectors#5205")
@idemtest.check(cursor_spec)
def test_strict_cursor(run):
    customers.load_customers_since_cursor(run.conn, run.state)


do_nothing_spec = Spec(
    name="payments_do_nothing",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[PAYMENTS],
    targets=[Target("analytics.payments", key="payment_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
)


@caught("6 ON CONFLICT DO NOTHING loses updates: dlt-hub/dlt#971")
@idemtest.check(do_nothing_spec)
def test_on_conflict_do_nothing(run):
    payments.insert_payments_ignore_existing(run.conn, run.window.start, run.window.end)


counter_spec = Spec(
    name="event_counts",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.event_counts", key="event_type")],
    schedule=hourly("2026-06-01", periods=3),
)


@caught("7 counter accumulation: dagster-io/dagster#21278")
@idemtest.check(counter_spec)
def test_counter_accumulation(run):
    revenue.count_events(run.conn, run.window.start, run.window.end)


daily_totals_spec = Spec(
    name="daily_totals",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.daily_totals", key="day")],
    schedule=daily("2026-06-01", periods=3),
)


@caught("8 replace-table clobbers a backfill: dagster-io/dagster#15155")
@idemtest.check(daily_totals_spec)
def test_replace_table_clobbers_backfill(run):
    revenue.replace_daily_totals(run.conn, run.window.end)


run_time_partition_spec = Spec(
    name="hourly_revenue_by_clock",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.hourly_revenue", key="hour")],
    schedule=hourly("2026-06-01", periods=3),
)


@caught("9 partition keyed on run time instead of the window: dagster-io/dagster#15155")
@idemtest.check(run_time_partition_spec)
def test_partition_keyed_on_run_time(run):
    revenue.hourly_revenue_for_last_hour(run.conn, run.window.start, run.window.end)


# --- concurrency-only bug classes: caught only by two runs at once --------------------

check_then_insert_spec = Spec(
    name="check_then_insert",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.order_events", key="event_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
    exercise={"concurrent"},
    concurrency="partitions",  # neighbouring windows overlap through the lookback
)


@caught("10 check-then-insert dedupe without a unique key: SQLMesh#3866, dagster-io/dagster#15155")
@idemtest.check(check_then_insert_spec)
def test_check_then_insert(run):
    events.insert_new_events(run.conn, run.window.start, run.window.end, lookback=check_then_insert_spec.max_lateness)


summary_spec = Spec(
    name="revenue_summary",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.hourly_revenue", key="hour"), Target("analytics.revenue_summary", key="id")],
    schedule=hourly("2026-06-01", periods=3),
    exercise={"concurrent"},
    concurrency="partitions",
)


@caught("11 read-modify-write of a shared summary row: SQLMesh#3866")
@idemtest.check(summary_spec)
def test_read_modify_write_summary(run):
    revenue.hourly_revenue_with_summary(run.conn, run.window.start, run.window.end)


shared_staging_spec = Spec(
    name="shared_staging",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.order_events", key="event_id")],
    schedule=hourly("2026-06-01", periods=3),
    exercise={"concurrent"},
    concurrency="partitions",
)


@caught("12 two partitions share one staging table: dlt-hub/dlt#3023, SQLMesh#3866")
@idemtest.check(shared_staging_spec)
def test_shared_staging_table(run):
    events.stage_and_load_events(run.conn, run.window.start, run.window.end)


# --- writes on worker threads -------------------------------------------------------

pooled_spec = Spec(
    name="pooled_append_events",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.loaded_events", key="event_id", ignore=["load_id"])],  # load ids come from the clock
    schedule=hourly("2026-06-01", periods=3),
)


@caught("1 append under retry: data committed by pool workers before the load record, dlt-hub/dlt#4052")
@idemtest.check(pooled_spec)
def test_pool_appends_then_records_the_load(run):
    import duckdb

    pooled.append_jobs_then_record(lambda: duckdb.connect(run.path), run.window.start, run.window.end)


# --- what real pipelines declare: keyless, snapshot and file sources, file outputs, run delay


keyless_spec = Spec(
    name="append_trip_window",
    setup=SETUP,
    dialect="duckdb",
    sources=[TRIPS],  # key=None: no trip id
    targets=[Target("analytics.trips")],  # no key: compared as a multiset
    schedule=hourly("2026-06-01", periods=3),
)


@caught("1 keyless append under retry: dlt-hub/dlt#971, dlt-hub/dlt#4052 (P1)")
@idemtest.check(keyless_spec)
def test_keyless_trips_appended(run):
    trips.append_trip_window(run.conn, run.window.start, run.window.end)


double_load_spec = Spec(
    name="append_with_lookback",
    setup=SETUP,
    dialect="duckdb",
    sources=[TRIPS],
    # the reference: every source trip once — the clean run itself loads each twice
    targets=[Target("analytics.trips", expected="SELECT * FROM src.trips")],
    schedule=hourly("2026-06-01", periods=3),
)


@caught("20 clock-relative lookback appended, double-loads in one clean pass: dbt-labs/dbt-core#10867 (P5)")
@idemtest.check(double_load_spec)
def test_lookback_append_double_loads(run):
    trips.append_with_lookback(run.conn)


run_date_spec = Spec(
    name="load_current_month_file",
    setup=SETUP,
    dialect="duckdb",
    sources=[TRIPS_MONTHLY],
    targets=[Target("analytics.monthly_trips")],  # created by the load
    schedule=monthly("2026-01-01", periods=3, day=5),
    max_lateness="4d",
    concurrency="none",
)


@caught("9 file named from the run date, not the window (a job run on the 5th): CityofPittsburgh/data-rivers PR 266 (P1)")
@idemtest.check(run_date_spec)
def test_monthly_file_named_from_run_date(run):
    trips.load_current_month_file(run.conn, run.landing)


crm_upsert_spec = Spec(
    name="upsert_from_export",
    setup=SETUP,
    dialect="duckdb",
    sources=[CUSTOMER_EXPORT],  # snapshot=True: a customer gone from the export is deleted upstream
    targets=[Target("analytics.crm_customers", key="customer_id")],
    schedule=daily("2026-06-01", periods=3, at="02:00"),
)


@caught("21 full export merged by key keeps deleted rows: dbt-labs/dbt-core#249 (P1)")
@idemtest.check(crm_upsert_spec)
def test_snapshot_export_upserted(run):
    crm.upsert_from_export(run.conn, run.landing)


streaming_export_spec = Spec(
    name="export_trips_csv_streaming",
    setup=SETUP,
    dialect="duckdb",
    sources=[TRIPS],
    targets=[Target("trip_exports", file="out/trips_{partition}.csv", atomic=True, partition_by="pickup_date")],
    schedule=daily("2026-06-01", periods=3, at="01:00"),
    exercise={"duplicate"},  # P4 shows on any run; no fault is needed
)


@caught("22 output file written in place, read half-written: dagster-io/dagster#21278 (P4)")
@idemtest.check(streaming_export_spec)
def test_csv_export_streamed_in_place(run):
    trips.export_trips_csv_streaming(run.conn, run.landing, run.partition)


concat_key_spec = Spec(
    name="singer_concatenated_key",
    setup=SETUP,
    dialect="duckdb",
    sources=[ORDER_LINES],  # keys.concat_collisions(): (1, 11) and (11, 1)
    targets=[Target("analytics.order_lines", key=["order_id", "line_no"], expected="SELECT * FROM src.order_lines", ignore=["_sdc_primary_key"])],
    schedule=hourly("2026-06-01", periods=3),
)


@caught("23 composite key concatenated without a separator: MeltanoLabs/target-postgres PR 446 (P5)")
@idemtest.check(concat_key_spec)
def test_singer_concatenated_composite_key(run):
    order_lines.upsert_lines_concatenated_key(run.conn, run.window.start, run.window.end)
completion_marker_spec = Spec(
    name="load_log_first",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.fct_order_events", key="event_id")],
    schedule=hourly("2026-06-01", periods=3),
)


@caught("16 completion marker committed before the data: treeverse/lakeFS#1660, TresAmigosSD/SMV#554")
@idemtest.check(completion_marker_spec)
def test_completion_marker_before_data(run):
    batches.load_batch_marker_first(run.conn, run.window.start, run.window.end)


short_lookback_spec = Spec(
    name="microbatch_short_lookback",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.fct_order_events", key="event_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",  # events land up to an hour late; the job looks back 15 minutes
)


@caught("17 lookback shorter than the maximum lateness: dbt-labs/dbt-core#10867, #15518")
@idemtest.check(short_lookback_spec)
def test_lookback_shorter_than_lateness(run):
    events.load_events_microbatch(run.conn, run.window.start, run.window.end)


merge_on_version_spec = Spec(
    name="merge_on_version_key",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[ORDERS],
    targets=[Target("analytics.orders_lake", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
)


@caught("18 MERGE keyed on the version key inserts updates as new rows: frappe/insights PR 1121, GoogleCloudPlatform/DataflowTemplates PR 133")
@idemtest.check(merge_on_version_spec)
def test_merge_on_version_key(run):
    orders.merge_orders_on_version(run.conn, run.window.start, run.window.end, lookback=merge_on_version_spec.max_lateness)


swallowed_spec = Spec(
    name="swallowed_errors",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[EVENTS],
    targets=[Target("analytics.fct_order_events", key="event_id")],
    schedule=hourly("2026-06-01", periods=3),
)


@caught("14 a swallowed exception leaves a gap: apache/airflow PR 29158")
@idemtest.check(swallowed_spec)
def test_swallowed_exception_leaves_a_gap(run):
    batches.load_batch_swallowing_errors(run.conn, run.window.start, run.window.end)


sql_now_spec = Spec(
    name="sql_now_watermark",
    setup=SETUP,
    dialect="duckdb",  # `?` placeholders and DuckDB SQL
    sources=[ORDERS],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
)


@caught("19 a SQL now() watermark misses late rows: dbt-labs/dbt-core#10867")
@idemtest.check(sql_now_spec)
def test_sql_now_watermark(run):
    orders.load_orders_sql_now(run.conn)


