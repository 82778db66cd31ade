"""Daily partitioned assets stored by the DuckDB IO manager (dagster-io/dagster#21278:
re-materialising a partition wrote its rows a second time)."""

import duckdb
import pandas as pd
from dagster import (
    AssetExecutionContext,
    DailyPartitionsDefinition,
    Definitions,
    ScheduleDefinition,
    asset,
    define_asset_job,
)
from dagster_duckdb_pandas import DuckDBPandasIOManager

daily = DailyPartitionsDefinition(start_date="2024-01-01")


@asset(partitions_def=daily)  # expect: IDM107
def raw_trips(context: AssetExecutionContext) -> pd.DataFrame:
    day = context.partition_key
    df = pd.read_parquet(f"s3://landing/trips/{day}.parquet")
    df["pickup_date"] = day
    return df


@asset(partitions_def=daily, metadata={"partition_expr": "pickup_date"})
def trips_clean(context: AssetExecutionContext, raw_trips: pd.DataFrame) -> pd.DataFrame:
    return raw_trips.dropna(subset=["trip_id"]).drop_duplicates("trip_id")


@asset(partitions_def=daily, deps=[trips_clean])
def trip_stats(context: AssetExecutionContext) -> None:
    day = context.partition_key
    con = duckdb.connect("/data/warehouse.duckdb")
    con.execute("DELETE FROM trip_stats WHERE pickup_date = ?", [day])  # expect: IDM301
    con.execute(
        """
        INSERT INTO trip_stats
        SELECT pickup_date, count(*) AS trips, avg(fare) AS avg_fare
        FROM trips_clean
        WHERE pickup_date = ?
        GROUP BY pickup_date
        """,
        [day],
    )


trips_job = define_asset_job("trips_job", selection=[raw_trips, trips_clean, trip_stats],
                             partitions_def=daily)

defs = Definitions(
    assets=[raw_trips, trips_clean, trip_stats],
    schedules=[ScheduleDefinition(job=trips_job, cron_schedule="0 2 * * *")],
    resources={"io_manager": DuckDBPandasIOManager(database="/data/warehouse.duckdb")},
)
