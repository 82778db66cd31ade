"""Spark jobs as they are written in production: `def job(spark, start, end)`.

Correct ones first, then the buggy ones (each named after its bug). They read the
`events` table (one row per sale, a sale can be corrected later: a newer version
of the same `event_id`) or the `changes` table (a change log: every version of a
customer is a row) and write the sandbox's tables. Delta tables are written with
delta-rs (`deltalake`), the Delta Lake library pipelines use without a JVM; the
job finds them under its `warehouse` root, as production passes its lake path.

pyspark and deltalake are imported inside the jobs, so collecting this module
never fails where the spark extra is missing.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any

DAILY_SALES_DDL = "CREATE TABLE IF NOT EXISTS daily_sales (store STRING, revenue DECIMAL(22,2), sales BIGINT, day DATE) USING parquet PARTITIONED BY (day)"


def _daily(spark: Any, start: datetime, end: datetime) -> Any:
    from pyspark.sql import functions as F

    return (
        spark.table("events")
        .where((F.col("ts") >= F.lit(start)) & (F.col("ts") < F.lit(end)))
        .groupBy(F.to_date("ts").alias("day"), "store")
        .agg(F.sum("amount").alias("revenue"), F.count("*").alias("sales"))
        .select("store", "revenue", "sales", "day")
    )


# --- correct ----------------------------------------------------------------------------


def daily_sales_dynamic_overwrite(spark: Any, start: datetime, end: datetime) -> None:
    """Dynamic partition overwrite: only the window's `day` partitions are replaced."""
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    _daily(spark, start, end).write.insertInto("daily_sales", overwrite=True)


def customers_merge_with_lookback(spark: Any, start: datetime, end: datetime, warehouse: str = "s3://lake") -> None:
    """Delta MERGE on the key of the latest version per customer, re-reading a day back
    (late changes of the previous window land on the next run)."""
    from deltalake import DeltaTable, write_deltalake
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    path = f"{warehouse}/customers"
    latest = Window.partitionBy("customer_id").orderBy(F.col("changed_at").desc(), F.col("change_id").desc())
    batch = (
        spark.table("changes")
        .where((F.col("changed_at") >= F.lit(start - timedelta(days=1))) & (F.col("changed_at") < F.lit(end)))
        .withColumn("rn", F.row_number().over(latest))
        .where("rn = 1")
        .drop("rn")
    )
    rows = batch.toArrow()
    if not DeltaTable.is_deltatable(path):
        write_deltalake(path, rows.schema.empty_table())
    (
        DeltaTable(path)
        .merge(rows, predicate="t.customer_id = s.customer_id", source_alias="s", target_alias="t")
        .when_matched_update_all(predicate="s.changed_at > t.changed_at OR (s.changed_at = t.changed_at AND s.change_id >= t.change_id)")
        .when_not_matched_insert_all()
        .execute()
    )


def sales_replace_where(spark: Any, start: datetime, end: datetime, warehouse: str = "s3://lake") -> None:
    """Delta `replaceWhere` (delta-rs: predicate overwrite) of exactly the window's days."""
    from deltalake import write_deltalake

    day0, day1 = start.date().isoformat(), end.date().isoformat()
    rows = _daily(spark, start, end).toArrow()
    write_deltalake(f"{warehouse}/sales", rows, mode="overwrite", predicate=f"day >= '{day0}' AND day < '{day1}'", partition_by=["day"])


# --- buggy ------------------------------------------------------------------------------


def daily_sales_static_overwrite(spark: Any, start: datetime, end: datetime) -> None:
    """`mode("overwrite").partitionBy("day")` under the default static
    partitionOverwriteMode: every run (a backfill too) wipes the other days."""
    _daily(spark, start, end).write.mode("overwrite").partitionBy("day").saveAsTable("daily_sales")


def daily_sales_insert_into(spark: Any, start: datetime, end: datetime) -> None:
    """`insertInto` appends: a retry or a duplicate run adds the window again."""
    _daily(spark, start, end).write.insertInto("daily_sales")


def customers_merge_duplicate_key(spark: Any, start: datetime, end: datetime, warehouse: str = "s3://lake") -> None:
    """MERGE straight from the change log: a customer changed twice in a window is
    two source rows for one key: inserted twice when new, and Delta refuses the
    MERGE ("matched a target row with multiple source rows") once it exists."""
    from deltalake import DeltaTable, write_deltalake
    from pyspark.sql import functions as F

    path = f"{warehouse}/customers"
    rows = spark.table("changes").where((F.col("changed_at") >= F.lit(start)) & (F.col("changed_at") < F.lit(end))).toArrow()
    if not DeltaTable.is_deltatable(path):
        write_deltalake(path, rows.schema.empty_table())
    (
        DeltaTable(path)
        .merge(rows, predicate="t.customer_id = s.customer_id", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )


def sales_replace_where_wall_clock(spark: Any, start: datetime, end: datetime, warehouse: str = "s3://lake") -> None:
    """replaceWhere of "yesterday" from the wall clock, not the window it was given:
    a late or repeated run rewrites the wrong day."""
    from deltalake import write_deltalake

    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    day_start, day_end = today - timedelta(days=1), today
    rows = _daily(spark, day_start, day_end).toArrow()
    pred = f"day >= '{day_start.date().isoformat()}' AND day < '{day_end.date().isoformat()}'"
    write_deltalake(f"{warehouse}/sales", rows, mode="overwrite", predicate=pred, partition_by=["day"])


def sales_log_output_before_checkpoint(spark: Any, start: datetime, end: datetime, warehouse: str = "s3://lake") -> None:
    """Incremental by checkpoint file: appends the events after the checkpoint, then
    saves the checkpoint. A crash between the two appends them again on the retry."""
    from pyspark.sql import functions as F

    ckpt = os.path.join(warehouse, "_checkpoints", "sales_log.json")
    since = "1970-01-01 00:00:00"
    if os.path.exists(ckpt):
        with open(ckpt) as f:
            since = json.load(f)["ts"]
    new = spark.table("events").where((F.col("ts") > F.lit(since)) & (F.col("ts") < F.lit(end)))
    newest = new.agg(F.max("ts")).first()[0]
    if newest is None:
        return
    new.select("event_id", "store", "amount", "ts").write.insertInto("sales_log")
    os.makedirs(os.path.dirname(ckpt), exist_ok=True)
    with open(ckpt, "w") as f:
        json.dump({"ts": newest.isoformat(sep=" ")}, f)
