"""The daily-partitioned assets of `pipelines/orders.py`, checked as Dagster runs them.

Each run is `dagster.materialize(..., partition_key=<day>)` in process, with the
definitions' `DuckDBResource` and IO manager pointed at the sandbox: retries as the
assets' `RetryPolicy(max_retries=2, delay=60)` allows, re-runs and backfills of days,
and two days at once (a backfill launches partitions concurrently). Sources, columns
and keys come from the assets' column schemas. Without Dagster these skip with
`pip install 'idemtest[dagster]'`.

Buggy assets are strict xfails: the run exits 0 while every bug is caught, and fails
if one stops being caught.
"""

from __future__ import annotations

import pytest

import idemtest

DEFS = "pipelines/orders.py"  # next to this file
#: orders are placed once and never change: a day's partition is fixed by ordered_at
ORDERS = {"raw/orders": {"updates": False}}


def caught(bug: str):
    return pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason=bug)


# correct: the day deleted and inserted in one transaction
test_daily_orders = idemtest.dagster.check(assets=DEFS, select=["analytics/daily_orders"], sources=ORDERS)

# 2: DELETE and INSERT committed separately (Dagster University's taxi_trips): a crash between them empties the day
test_daily_orders_autocommit = caught("2 DELETE and INSERT of the partition committed separately: a crash leaves the day empty (P3)")(
    idemtest.dagster.check(assets=DEFS, select=["analytics/daily_orders_autocommit"], sources=ORDERS)
)

# 11: read-modify-write of a summary (Dagster University's trips_by_week): two days at once lose one's row
test_daily_summary = caught("11 read-modify-write of a summary table: two partitions at once, one's row is lost")(
    idemtest.dagster.check(assets=DEFS, select=["analytics/daily_summary"], sources=ORDERS)
)

# 2: Dagster's DuckDBPandasIOManager deletes the partition and inserts it in two autocommitted statements
test_daily_orders_io_manager = caught("2 the DuckDB IO manager's DELETE and INSERT of a partition commit separately (P3)")(
    idemtest.dagster.check(assets=DEFS, select=["analytics/daily_orders_io"], sources=ORDERS)
)


# PostgreSQL (`pytest --idempotency --idem-db postgresql://...`; skipped on DuckDB with that option):
# a ConfigurableResource holding a connection string, pointed at the sandbox database
PG_DEFS = "pipelines/orders_pg.py"

# correct: the day replaced inside `with conn.transaction():`
test_daily_orders_pg = idemtest.dagster.check(assets=PG_DEFS, select=["analytics/daily_orders_pg"], sources=ORDERS)

# 2: the same statements on an autocommit connection: a crash between DELETE and INSERT empties the day
test_daily_orders_pg_autocommit = caught("2 DELETE and INSERT of the partition on an autocommit psycopg connection (P3)")(
    idemtest.dagster.check(assets=PG_DEFS, select=["analytics/daily_orders_pg_autocommit"], sources=ORDERS)
)
