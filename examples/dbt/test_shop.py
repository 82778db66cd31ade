"""Incremental models of the dbt project in `shop/`, checked as dbt runs them.

Each check runs `dbt run --select +<model>` (dbt-core's runner, dbt-duckdb or
dbt-postgres on the sandbox) once per window, under retries after crashes at
dbt's own statements, duplicate runs, late rows and backfills, and compares the
model with `dbt run --full-refresh` over all arrived data. Sources, columns and
keys come from the project's YAML. Without dbt installed these skip with
`pip install 'idemtest[dbt]'`.

Buggy models are strict xfails (the bug class number of examples/README.md first):
the run exits 0 while every bug is caught, and fails if one stops being caught.
"""

from __future__ import annotations

import pytest

import idemtest

PROJECT = "shop"  # next to this file: the dbt project's folder


def caught(bug: str):
    return pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason=bug)


# correct: merge on order_id, re-reading 2 hours behind the newest loaded row
test_fct_orders_merge_with_lookback = idemtest.dbt.check(project_dir=PROJECT, select="fct_orders", max_lateness="1h")

# 1: append incremental: a retry or duplicate run of a window loads it twice
test_fct_orders_append = caught("1 append incremental model, no unique_key (dlt-hub/dlt#4052 in dbt form)")(
    idemtest.dbt.check(project_dir=PROJECT, select="fct_orders_append", max_lateness="1h")
)

# 5: `> max(updated_at)` without a lookback: a late row older than the newest is never loaded
test_fct_orders_no_lookback = caught("5 strict > max(updated_at) cursor, no lookback (dbt-labs/dbt-core#10867)")(
    idemtest.dbt.check(project_dir=PROJECT, select="fct_orders_no_lookback", max_lateness="1h")
)

# 9: delete+insert keyed on run_started_at: a retry inserts the window's orders again
test_fct_orders_delete_insert_on_run_time = caught("9 delete+insert keyed on the run's time, not the order")(
    idemtest.dbt.check(project_dir=PROJECT, select="fct_orders_delete_insert", max_lateness="1h", ignore=["batch_at"])
)

# correct: microbatch (hourly batches on event_time), each run building its window's
# batch (`dbt run --event-time-start/--event-time-end`, as an orchestrator passes the
# interval), on events that land within their hour; events updated never, only appended
test_fct_events_microbatch = idemtest.dbt.check(
    project_dir=PROJECT, select="fct_events_microbatch", sources={"shop.events": {"updates": False}}
)

# 17: the same model under events up to an hour late: with explicit --event-time-start/end dbt
# builds exactly those batches and ignores `lookback`, so an event landing after its hour's
# run is never loaded (dbt-labs/dbt-core#10867: lookback only covers runs without explicit times)
test_fct_events_microbatch_late = caught("17 microbatch run per window: lookback ignored, a late event never loaded (dbt-labs/dbt-core#10867)")(
    idemtest.dbt.check(project_dir=PROJECT, select="fct_events_microbatch", max_lateness="1h", sources={"shop.events": {"updates": False}})
)
