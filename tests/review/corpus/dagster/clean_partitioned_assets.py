"""Correct: partitioned assets whose slice is replaced, never appended."""

import duckdb
import pandas as pd
from dagster import (
    AssetExecutionContext,
    Backoff,
    DailyPartitionsDefinition,
    Definitions,
    RetryPolicy,
    asset,
    build_schedule_from_partitioned_job,
    define_asset_job,
)
from dagster_duckdb_pandas import DuckDBPandasIOManager

daily = DailyPartitionsDefinition(start_date="2024-01-01")


@asset(
    partitions_def=daily,
    metadata={"partition_expr": "event_date"},
    retry_policy=RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL),
)
def events(context: AssetExecutionContext) -> pd.DataFrame:
    return pd.read_parquet(f"s3://landing/events/{context.partition_key}.parquet")


@asset(partitions_def=daily, deps=[events])
def daily_active_users(context: AssetExecutionContext) -> None:
    day = context.partition_key
    con = duckdb.connect("/data/warehouse.duckdb")
    con.begin()
    con.execute("DELETE FROM daily_active_users WHERE event_date = ?", [day])
    con.execute(
        """
        INSERT INTO daily_active_users
        SELECT event_date, count(DISTINCT user_id)
        FROM events
        WHERE event_date = ?
        GROUP BY event_date
        """,
        [day],
    )
    con.commit()


events_job = define_asset_job("events_job", selection=[events, daily_active_users],
                              partitions_def=daily)

defs = Definitions(
    assets=[events, daily_active_users],
    schedules=[build_schedule_from_partitioned_job(events_job)],
    resources={"io_manager": DuckDBPandasIOManager(database="/data/warehouse.duckdb")},
)
