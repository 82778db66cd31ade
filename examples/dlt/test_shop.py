"""The shop's dlt resources (`shop.py`), checked as dlt runs them.

Each check runs the resource's real `pipeline.run()` (extract, normalize, load) into the
sandbox through dlt's duckdb or postgres destination, once per window, under retries
after crashes at dlt's own statements (on the same worker or on a fresh one whose local
pipelines_dir is gone), duplicate runs, late rows and backfills. The API calls the
resources make are answered with generated rows (`readers=`). Without dlt installed
these skip with `pip install 'idemtest[dlt]'`.

Buggy resources are strict xfails: the run exits 0 while every bug is caught, and
fails if one stops being caught.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import idemtest

from .. import sources

# the example warehouse's tables (examples/sources.py), as the shop's API serves them;
# events here: one row per event id, never updated
ORDERS = sources.ORDERS
EVENTS = replace(sources.EVENTS, append_only=False, updates=False)
FETCH_ORDERS = {"examples.dlt.api.fetch_orders": "src.orders"}
FETCH_EVENTS = {"examples.dlt.api.fetch_events": "src.events"}


def caught(bug: str):
    return pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason=bug)


# correct: merge of the full order list on its primary key
test_orders_merge = idemtest.dlt.check(
    source="examples.dlt.shop:orders_full", sources=[ORDERS], readers=FETCH_ORDERS, dataset_name="shop", max_lateness="1h"
)

# correct: incremental on updated_at with lag=2h, orders land up to 1h late
test_orders_incremental_with_lag = idemtest.dlt.check(
    source="examples.dlt.shop:orders_incremental", sources=[ORDERS], readers=FETCH_ORDERS, dataset_name="shop", max_lateness="1h"
)

# dlt's default merge (delete-insert) on DuckDB is two autocommitted statements: a crash
# between them leaves the merged orders missing until the retry (on PostgreSQL dlt sends
# them as one query, which PostgreSQL runs as one transaction: skipped there). One crash
# point per run shows it: the pass here plays every crash point (20 per window would
# spread over the duplicate, backfill and out-of-order families and step over it)
test_orders_delete_insert_merge = caught("2 non-atomic replace: dlt's delete-insert merge on DuckDB commits its DELETE before its INSERT")(
    idemtest.dlt.check(
        source="examples.dlt.shop:orders_delete_insert", sources=[ORDERS], readers=FETCH_ORDERS, dataset_name="shop", dialect="duckdb",
        exercise=["crash"], systematic_max=48,
    )
)

# 5: a cursor without lag under late data: a late order older than the cursor is never loaded
test_orders_cursor_without_lag = caught("5 incremental cursor without lag drops late rows (airbytehq/airbyte#14732 in dlt form)")(
    idemtest.dlt.check(
        source="examples.dlt.shop:orders_no_lag", sources=[ORDERS], readers=FETCH_ORDERS, dataset_name="shop", max_lateness="1h"
    )
)

# 1: append with an incremental cursor: a load that dies before its _dlt_loads row, retried on
# a fresh worker, restores the old cursor from the destination and appends the rows again
test_events_append_with_cursor = caught("1 append + incremental cursor duplicates rows on a retry (dlt-hub/dlt#4052)")(
    idemtest.dlt.check(
        source="examples.dlt.shop:events_append", sources=[EVENTS], readers=FETCH_EVENTS, dataset_name="shop", tables={"events": "event_id"}
    )
)
