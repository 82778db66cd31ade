"""Hourly batch loads of `src.events` that record each batch in a load log
(`etl.load_log`, one row per window): the orchestrator-side "done" marker — a
`_SUCCESS` file, a row in an audit table, a `load_id` in dlt's `_dlt_loads` —
that later runs (and downstream jobs) read to skip a batch already loaded.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

COLUMNS = "event_id, order_id, event_type, amount, event_time"
IN_WINDOW = "event_time >= ? AND event_time < ?"


def _already_loaded(conn: Any, window_start: datetime) -> bool:
    (n,) = conn.execute("SELECT count(*) FROM etl.load_log WHERE batch_start = ?", [window_start]).fetchone()
    return bool(n)


def load_batch_marker_in_transaction(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """CORRECT: the batch and its load-log row commit together.

    The check "already loaded?" and the marker live in the same transaction as
    the data: a crash before COMMIT leaves neither, so the retry loads the
    batch; a crash after it leaves both, so the retry skips it rightly. The
    `_SUCCESS`-last rule of Spark/Hadoop writers (treeverse/lakeFS#1660), done
    with a transaction.
    """
    conn.execute("BEGIN TRANSACTION")
    try:
        if _already_loaded(conn, window_start):
            conn.execute("COMMIT")
            return
        conn.execute(
            f"INSERT INTO analytics.fct_order_events ({COLUMNS}) SELECT {COLUMNS} FROM src.events WHERE {IN_WINDOW}",
            [window_start, window_end],
        )
        conn.execute("INSERT INTO etl.load_log (batch_start, batch_end) VALUES (?, ?)", [window_start, window_end])
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def load_batch_marker_first(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (completion marker committed before the data): the failure the
    `_SUCCESS`-last rule exists for — treeverse/lakeFS#1660 ("write _success
    files last") and TresAmigosSD/SMV#554 (a killed job left data its restart
    took as complete) — and of dlt-hub/dlt#4052's state saved out of step
    with the load.

    The job claims the batch in the load log first (so a second worker skips
    it), autocommitted, then copies the rows. If the process dies in between,
    the retry finds the batch logged as done and skips it: the hour is missing
    from the fact table for good, and every dashboard reading the log says it
    is there.
    """
    if _already_loaded(conn, window_start):
        return
    conn.execute("INSERT INTO etl.load_log (batch_start, batch_end) VALUES (?, ?)", [window_start, window_end])
    conn.execute(
        f"INSERT INTO analytics.fct_order_events ({COLUMNS}) SELECT {COLUMNS} FROM src.events WHERE {IN_WINDOW}",
        [window_start, window_end],
    )


def load_batch_via_staging(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """CORRECT: the staging variant done right — a TEMP table (private to the
    connection, replaced if a crashed attempt left one), the swap in one
    transaction, and a failure logged *and re-raised* so the orchestrator
    retries the task and alerts.
    """
    try:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE events_batch AS SELECT {COLUMNS} FROM src.events WHERE {IN_WINDOW}", [window_start, window_end])
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(f"DELETE FROM analytics.fct_order_events WHERE {IN_WINDOW}", [window_start, window_end])
            conn.execute(f"INSERT INTO analytics.fct_order_events ({COLUMNS}) SELECT {COLUMNS} FROM events_batch")
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        conn.execute("DROP TABLE events_batch")
    except Exception:
        log.exception("loading events %s..%s failed", window_start, window_end)
        raise


def load_batch_swallowing_errors(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (a swallowed exception leaves a gap): the shape of the Airflow
    tutorial's `merge_data` (apache/airflow PR 29158), which caught every
    exception and returned, so the task always succeeded.

    The batch is built in `staging.events_batch`, swapped into the fact table,
    and the staging table dropped. A crash after the CREATE leaves the staging
    table behind; the retry's CREATE fails ("already exists"), the `except
    Exception: log; return` turns that into a green task, and the hour is never
    loaded. Two hours loading at once collide on the same staging table the same way.
    """
    try:
        conn.execute(f"CREATE TABLE staging.events_batch AS SELECT {COLUMNS} FROM src.events WHERE {IN_WINDOW}", [window_start, window_end])
        conn.execute("BEGIN TRANSACTION")
        conn.execute(f"DELETE FROM analytics.fct_order_events WHERE {IN_WINDOW}", [window_start, window_end])
        conn.execute(f"INSERT INTO analytics.fct_order_events ({COLUMNS}) SELECT {COLUMNS} FROM staging.events_batch")
        conn.execute("COMMIT")
        conn.execute("DROP TABLE staging.events_batch")
    except Exception:
        log.exception("loading events %s..%s failed", window_start, window_end)
        return  # the task reports success; nobody is paged
