"""The PostgreSQL example pipelines as idemtest checks.

    pytest --idempotency --idem-db postgresql://postgres@127.0.0.1:5432/postgres examples/postgres

Correct loads pass; buggy ones are caught (strict xfails, so the run exits 0).
On the default DuckDB sandbox every check here is skipped: their specs declare
dialect="postgres".
"""

from __future__ import annotations

import pytest

import idemtest

from . import (
    employees_airflow,
    hourly_revenue,
    order_status,
    orders_do_nothing,
    orders_merge,
    revenue_summary,
)

EXAMPLES = 30  # each example needs two PostgreSQL sandboxes; --idem-examples overrides


# --- correct -------------------------------------------------------------------------
@idemtest.check(orders_merge.SPEC, examples=EXAMPLES)
def test_merge_with_event_time_watermark(run):
    orders_merge.load_orders(run.dsn, lookback=orders_merge.SPEC.max_lateness)


@idemtest.check(order_status.SPEC, examples=EXAMPLES)
def test_upsert_with_version_guard(run):
    order_status.upsert_order_status(run.dsn, start=run.window.start, end=run.window.end, lookback=order_status.SPEC.max_lateness)


@idemtest.check(hourly_revenue.SPEC, examples=EXAMPLES)
def test_delete_insert_in_one_transaction(run):
    hourly_revenue.rebuild_hours(run.conn, start=run.window.start, end=run.window.end, lookback=hourly_revenue.SPEC.max_lateness)


@idemtest.check(employees_airflow.SPEC, examples=EXAMPLES)
def test_airflow_temp_table_upsert(run):
    employees_airflow.merge_employees(run.dsn, run.landing)


@idemtest.check(revenue_summary.SPEC_SEQUENTIAL, examples=EXAMPLES)
def test_running_total_without_concurrency(run):
    revenue_summary.update_revenue(run.conn, start=run.window.start, end=run.window.end)


# --- buggy ---------------------------------------------------------------------------
@pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason="P1: without the version guard a backfill or catch-up run writes an older change over a newer one")
@idemtest.check(order_status.SPEC, examples=EXAMPLES)
def test_upsert_without_version_guard(run):
    order_status.upsert_order_status_unguarded(run.dsn, start=run.window.start, end=run.window.end, lookback=order_status.SPEC.max_lateness)


@pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason="P1: ON CONFLICT DO NOTHING keeps the first version of an order")
@idemtest.check(orders_do_nothing.SPEC, examples=EXAMPLES)
def test_on_conflict_do_nothing(run):
    orders_do_nothing.insert_new_orders(run.conn, start=run.window.start, end=run.window.end, lookback=orders_do_nothing.SPEC.max_lateness)


@pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason="P3: a crash between the autocommitted DELETE and INSERT leaves hours missing")
@idemtest.check(hourly_revenue.SPEC_KEYED, examples=EXAMPLES)
def test_delete_insert_autocommit(run):
    hourly_revenue.rebuild_hours_autocommit(run.dsn, start=run.window.start, end=run.window.end, lookback=hourly_revenue.SPEC.max_lateness)


@pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason="P4: a reader sees an hour deleted and not yet re-inserted")
@idemtest.check(hourly_revenue.SPEC_ATOMIC, examples=EXAMPLES)
def test_delete_insert_autocommit_seen_by_a_reader(run):
    hourly_revenue.rebuild_hours_autocommit(run.dsn, start=run.window.start, end=run.window.end, lookback=hourly_revenue.SPEC.max_lateness)


@pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason="P1: the tutorial's except swallows the error of every run after a crash (apache/airflow PR 29158)")
@idemtest.check(employees_airflow.SPEC_CRASHES, examples=EXAMPLES)
def test_airflow_tutorial_swallowed_errors(run):
    employees_airflow.merge_employees_tutorial(run.dsn, run.landing)


@pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason="P1: two runs at once lose an update of the running total")
@idemtest.check(revenue_summary.SPEC, examples=EXAMPLES)
def test_running_total_read_modify_write(run):
    revenue_summary.update_revenue(run.conn, start=run.window.start, end=run.window.end)


@pytest.mark.xfail(strict=True, raises=idemtest.LoadError, reason="PostgreSQL: CardinalityViolation when the change log repeats an order (DuckDB resolves it silently)")
@idemtest.check(order_status.SPEC, examples=EXAMPLES)
def test_upsert_from_change_log_without_dedup(run):
    order_status.upsert_order_changes_undeduplicated(run.dsn, start=run.window.start, end=run.window.end, lookback=order_status.SPEC.max_lateness)
