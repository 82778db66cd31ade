"""Spark jobs (examples/spark/jobs.py) checked on a local Spark session.

Each check runs the job unchanged, `job(spark, start, end)`, once per daily
window, under retries after crashes before and after each Spark write (and
inside a non-atomic Parquet job commit), duplicate runs, late rows and
backfills, and compares the tables with one clean run. Without pyspark these
skip with `pip install 'idemtest[spark]'`.

Buggy jobs are strict xfails: the run exits 0 while every bug is caught, and
fails if one stops being caught.
"""

from __future__ import annotations

import pytest

import idemtest
from examples import sources
from idemtest import Target

from . import jobs

EVENTS = sources.SALES_EVENTS
CHANGES = sources.CUSTOMER_CHANGES
DAILY_SALES = Target("daily_sales", key=["day", "store"])
CUSTOMERS = Target("customers", key="customer_id")
SALES = Target("sales", key=["day", "store"])


def caught(bug: str):
    return pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason=bug)


# --- correct: no false alarm ---------------------------------------------------------------
test_dynamic_partition_overwrite = idemtest.spark.check(
    jobs.daily_sales_dynamic_overwrite, sources=[EVENTS], targets=[DAILY_SALES], setup=jobs.DAILY_SALES_DDL
)
test_delta_merge_with_lookback = idemtest.spark.check(
    jobs.customers_merge_with_lookback, sources=[CHANGES], targets=[CUSTOMERS], max_lateness="12h"
)
test_delta_replace_where = idemtest.spark.check(jobs.sales_replace_where, sources=[EVENTS], targets=[SALES])

# --- buggy: caught -------------------------------------------------------------------------
test_static_partition_overwrite = caught("8 static partitionOverwriteMode: a backfill wipes the other days")(
    idemtest.spark.check(jobs.daily_sales_static_overwrite, sources=[EVENTS], targets=[DAILY_SALES])
)
test_insert_into_append = caught("1 insertInto appends: a retry or duplicate run loads the window twice")(
    idemtest.spark.check(jobs.daily_sales_insert_into, sources=[EVENTS], targets=[DAILY_SALES], setup=jobs.DAILY_SALES_DDL)
)
test_merge_duplicate_source_key = caught("15 MERGE from the change log: a key changed twice in a window is inserted twice")(
    idemtest.spark.check(jobs.customers_merge_duplicate_key, sources=[CHANGES], targets=[CUSTOMERS])
)
test_replace_where_wall_clock = caught("9 replaceWhere of 'yesterday' from the wall clock: a late run rewrites the wrong day")(
    idemtest.spark.check(jobs.sales_replace_where_wall_clock, sources=[EVENTS], targets=[SALES])
)
test_output_before_checkpoint = caught("16 output appended before the checkpoint is saved: the retry appends it again")(
    idemtest.spark.check(
        jobs.sales_log_output_before_checkpoint,
        sources=[EVENTS],
        targets=[Target("sales_log", key="event_id")],
        setup="CREATE TABLE sales_log (event_id BIGINT, store STRING, amount DECIMAL(12,2), ts TIMESTAMP) USING parquet",
    )
)
