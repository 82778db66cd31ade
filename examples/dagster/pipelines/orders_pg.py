"""The daily orders asset on PostgreSQL, with the resource shape Dagster's docs show for
a database without an integration: a `ConfigurableResource` holding a connection string
and opening psycopg connections from it.

- `daily_orders_pg`: the day deleted and inserted in one transaction (`with conn:`), correct;
- `daily_orders_pg_autocommit`: the same statements on an autocommit connection: a crash
  between the DELETE and the INSERT leaves the day empty.

No idemtest import: this is the user's code, run unchanged.
"""

import dagster as dg
import psycopg

daily = dg.DailyPartitionsDefinition(start_date="2026-06-01")
retry = dg.RetryPolicy(max_retries=2, delay=60)


class PostgresResource(dg.ConfigurableResource):
    """A PostgreSQL database, by connection string."""

    conn_string: str

    def connect(self, autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect(self.conn_string, autocommit=autocommit)


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
KEYED = {"dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn("order_id", "BIGINT", constraints=dg.TableColumnConstraints(unique=True))])}


def _replace_day(conn: psycopg.Connection, table: str, context: dg.AssetExecutionContext) -> None:
    window = context.partition_time_window
    start, end = window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)
    conn.execute(f"DELETE FROM {table} WHERE order_date = %s", [start.date()])
    conn.execute(
        f"INSERT INTO {table} SELECT order_id, customer, amount, CAST(ordered_at AS DATE) FROM raw.orders "
        "WHERE ordered_at >= %s AND ordered_at < %s",
        [start, end],
    )


def _create(conn: psycopg.Connection, table: str) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS analytics")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (order_id BIGINT, customer VARCHAR, amount DECIMAL(12,2), order_date DATE)")


@dg.asset(key_prefix="analytics", deps=[raw_orders], partitions_def=daily, retry_policy=retry, metadata=KEYED)
def daily_orders_pg(context: dg.AssetExecutionContext, postgres: PostgresResource) -> None:
    with postgres.connect() as conn:
        _create(conn, "analytics.daily_orders_pg")
        conn.commit()
        with conn.transaction():
            _replace_day(conn, "analytics.daily_orders_pg", context)


@dg.asset(key_prefix="analytics", deps=[raw_orders], partitions_def=daily, retry_policy=retry, metadata=KEYED)
def daily_orders_pg_autocommit(context: dg.AssetExecutionContext, postgres: PostgresResource) -> None:
    with postgres.connect(autocommit=True) as conn:
        _create(conn, "analytics.daily_orders_pg_autocommit")
        _replace_day(conn, "analytics.daily_orders_pg_autocommit", context)


defs = dg.Definitions(
    assets=[raw_orders, daily_orders_pg, daily_orders_pg_autocommit],
    resources={"postgres": PostgresResource(conn_string=dg.EnvVar("WAREHOUSE_DSN"))},
)
