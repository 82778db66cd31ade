"""Daily-partitioned Dagster assets on DuckDB, as the Dagster University "Dagster
Essentials" course writes them (`taxi_trips`, `trips_by_week`): a `DuckDBResource`,
one partition per day, the partition's rows deleted and inserted again on every run.

- `daily_orders`: delete + insert of the day in one transaction (correct);
- `daily_orders_autocommit`: the course's shape, one multi-statement string whose
  DELETE and INSERT commit separately: a crash between them leaves the day empty
  (a gap readers see, and a lost day if nobody re-runs it);
- `daily_summary`: `trips_by_week`'s shape on a table: read the whole summary, replace
  this day's row, write the whole summary back. Retries and re-runs are fine; two
  partitions at once (a backfill) each write back a summary without the other's row.
- `daily_orders_io`: the same day returned as a DataFrame to Dagster's
  `DuckDBPandasIOManager`, which deletes the partition and inserts it in two
  autocommitted statements (dagster-duckdb 0.29).

No idemtest import: this is the user's code, run unchanged (`dagster dev -f orders.py`).
"""

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from dagster_duckdb_pandas import DuckDBPandasIOManager

daily = dg.DailyPartitionsDefinition(start_date="2026-06-01")
retry = dg.RetryPolicy(max_retries=2, delay=60)

# the upstream table, loaded by another system: its column schema is what idemtest reads
raw_orders = dg.AssetSpec(
    ["raw", "orders"],
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn("order_id", "BIGINT", constraints=dg.TableColumnConstraints(unique=True, nullable=False)),
                dg.TableColumn("customer", "VARCHAR"),
                dg.TableColumn("amount", "DECIMAL(12,2)"),
                dg.TableColumn("ordered_at", "TIMESTAMP"),
            ]
        ),
        "partition_expr": "ordered_at",
    },
)

ORDERS_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("order_id", "BIGINT", constraints=dg.TableColumnConstraints(unique=True)),
        dg.TableColumn("customer", "VARCHAR"),
        dg.TableColumn("amount", "DECIMAL(12,2)"),
        dg.TableColumn("order_date", "DATE"),
    ]
)
CREATE_DAILY = """CREATE TABLE IF NOT EXISTS analytics.{name} (
    order_id BIGINT, customer VARCHAR, amount DECIMAL(12,2), order_date DATE)"""


@dg.asset(key_prefix="analytics", deps=[raw_orders], partitions_def=daily, retry_policy=retry, metadata={"dagster/column_schema": ORDERS_SCHEMA})
def daily_orders(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> None:
    """The day's orders, replaced in one transaction."""
    window = context.partition_time_window
    with duckdb.get_connection() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        conn.execute(CREATE_DAILY.format(name="daily_orders"))
        conn.execute("BEGIN TRANSACTION")
        conn.execute("DELETE FROM analytics.daily_orders WHERE order_date = ?", [window.start.date()])
        conn.execute(
            "INSERT INTO analytics.daily_orders SELECT order_id, customer, amount, CAST(ordered_at AS DATE) "
            "FROM raw.orders WHERE ordered_at >= ? AND ordered_at < ?",
            [window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)],
        )
        conn.execute("COMMIT")


@dg.asset(key_prefix="analytics", deps=[raw_orders], partitions_def=daily, retry_policy=retry, metadata={"dagster/column_schema": ORDERS_SCHEMA})
def daily_orders_autocommit(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> None:
    """The course's `taxi_trips`: one script, each statement committed on its own."""
    day = context.partition_key
    query = f"""
        CREATE SCHEMA IF NOT EXISTS analytics;
        {CREATE_DAILY.format(name="daily_orders_autocommit")};
        DELETE FROM analytics.daily_orders_autocommit WHERE order_date = '{day}';
        INSERT INTO analytics.daily_orders_autocommit
            SELECT order_id, customer, amount, CAST(ordered_at AS DATE)
            FROM raw.orders WHERE CAST(ordered_at AS DATE) = '{day}';
    """
    with duckdb.get_connection() as conn:
        conn.execute(query)


@dg.asset(
    key_prefix="analytics", deps=[raw_orders], partitions_def=daily, retry_policy=retry,
    metadata={"dagster/column_schema": dg.TableSchema(columns=[
        dg.TableColumn("order_date", "DATE", constraints=dg.TableColumnConstraints(unique=True)),
        dg.TableColumn("orders", "BIGINT"),
        dg.TableColumn("revenue", "DECIMAL(18,2)"),
    ])},
)
def daily_summary(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> None:
    """The course's `trips_by_week`: read the summary, replace this period's row, write it back."""
    window = context.partition_time_window
    start, end = window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)
    with duckdb.get_connection() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        conn.execute("CREATE TABLE IF NOT EXISTS analytics.daily_summary (order_date DATE, orders BIGINT, revenue DECIMAL(18,2))")
        day = conn.execute(
            "SELECT CAST(? AS DATE) AS order_date, count(*) AS orders, CAST(coalesce(sum(amount), 0) AS DECIMAL(18,2)) AS revenue "
            "FROM raw.orders WHERE ordered_at >= ? AND ordered_at < ?",
            [start.date(), start, end],
        ).df()
        existing = conn.execute("SELECT * FROM analytics.daily_summary").df()
        existing = existing[existing["order_date"] != pd.Timestamp(start)]
        summary = pd.concat([existing, day]).sort_values("order_date")  # noqa: F841 - read by DuckDB below
        conn.execute("BEGIN TRANSACTION")
        conn.execute("DELETE FROM analytics.daily_summary")
        conn.execute("INSERT INTO analytics.daily_summary SELECT order_date, orders, revenue FROM summary")
        conn.execute("COMMIT")


@dg.asset(
    key_prefix="analytics", deps=[raw_orders], partitions_def=daily, retry_policy=retry,
    metadata={"partition_expr": "order_date", "dagster/column_schema": ORDERS_SCHEMA},
    io_manager_key="warehouse_io",
)
def daily_orders_io(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> pd.DataFrame:
    """The day's orders as a DataFrame; Dagster's DuckDB IO manager stores the partition."""
    window = context.partition_time_window
    with duckdb.get_connection() as conn:
        return conn.execute(
            "SELECT order_id, customer, amount, CAST(ordered_at AS TIMESTAMP) AS order_date "
            "FROM raw.orders WHERE ordered_at >= ? AND ordered_at < ?",
            [window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)],
        ).df()


defs = dg.Definitions(
    assets=[raw_orders, daily_orders, daily_orders_autocommit, daily_summary, daily_orders_io],
    resources={
        "duckdb": DuckDBResource(database="data/warehouse.duckdb"),
        "warehouse_io": DuckDBPandasIOManager(database="data/warehouse.duckdb", schema="analytics"),
    },
)
