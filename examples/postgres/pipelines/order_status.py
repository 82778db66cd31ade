"""Current order status from a CDC change log: `INSERT … ON CONFLICT DO UPDATE`.

Each run reads the changes of its window plus a lookback (late changes), keeps
the last change per order (`DISTINCT ON`), and upserts it on `order_id`.

- `upsert_order_status` (correct): the update only applies when the incoming
  change is newer — `WHERE (t.changed_at, t.change_id) < (EXCLUDED.changed_at,
  EXCLUDED.change_id)` — so a backfill, a catch-up run out of order or a slow
  concurrent run can never put an older change over a newer one.
- `upsert_order_status_unguarded` (buggy): the same upsert without the guard.
  Re-running an old window (a backfill, dagster-io/dagster#15155; an Airflow
  catch-up) writes that window's last change over the newer one already loaded.
- `upsert_order_changes_undeduplicated` (buggy, PostgreSQL-specific): the
  upsert straight from the change log, without `DISTINCT ON`. When one order
  changes twice in a window, PostgreSQL raises `CardinalityViolation` ("ON
  CONFLICT DO UPDATE command cannot affect row a second time") where DuckDB
  silently resolves it: the load fails in an ordinary run, so idemtest reports
  a LoadError ("fails even without faults") before judging any fault.

psycopg2, as most Airflow code still uses it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

LAST_CHANGE_PER_ORDER = """
    SELECT DISTINCT ON (order_id) order_id, status, amount, changed_at, change_id
    FROM src.order_changes
    WHERE changed_at >= %(since)s AND changed_at < %(until)s
    ORDER BY order_id, changed_at DESC, change_id DESC
"""

UPSERT_GUARDED = f"""
INSERT INTO analytics.order_status AS t (order_id, status, amount, changed_at, change_id)
{LAST_CHANGE_PER_ORDER}
ON CONFLICT (order_id) DO UPDATE
    SET status = EXCLUDED.status, amount = EXCLUDED.amount,
        changed_at = EXCLUDED.changed_at, change_id = EXCLUDED.change_id
    WHERE (t.changed_at, t.change_id) < (EXCLUDED.changed_at, EXCLUDED.change_id)
"""

UPSERT_UNGUARDED = f"""
INSERT INTO analytics.order_status AS t (order_id, status, amount, changed_at, change_id)
{LAST_CHANGE_PER_ORDER}
ON CONFLICT (order_id) DO UPDATE
    SET status = EXCLUDED.status, amount = EXCLUDED.amount,
        changed_at = EXCLUDED.changed_at, change_id = EXCLUDED.change_id
"""

UPSERT_UNDEDUPLICATED = """
INSERT INTO analytics.order_status AS t (order_id, status, amount, changed_at, change_id)
SELECT order_id, status, amount, changed_at, change_id
FROM src.order_changes
WHERE changed_at >= %(since)s AND changed_at < %(until)s
ON CONFLICT (order_id) DO UPDATE
    SET status = EXCLUDED.status, amount = EXCLUDED.amount,
        changed_at = EXCLUDED.changed_at, change_id = EXCLUDED.change_id
    WHERE (t.changed_at, t.change_id) < (EXCLUDED.changed_at, EXCLUDED.change_id)
"""


def _run(dsn: str, sql: str, start: datetime, end: datetime, lookback: timedelta) -> None:
    import psycopg2  # here, not at the top: importing the examples needs no driver

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:  # `with conn`: COMMIT on success, ROLLBACK on error
            cur.execute(sql, {"since": start - lookback, "until": end})
    finally:
        conn.close()


def upsert_order_status(dsn: str, *, start: datetime, end: datetime, lookback: timedelta) -> None:
    """CORRECT: the last change per order, upserted only over an older one — a
    backfill or catch-up run (dagster-io/dagster#15155) cannot go back in time."""
    _run(dsn, UPSERT_GUARDED, start, end, lookback)


def upsert_order_status_unguarded(dsn: str, *, start: datetime, end: datetime, lookback: timedelta) -> None:
    """BUG (upsert without a version guard): a backfill or catch-up run
    (dagster-io/dagster#15155) writes an older change over a newer one."""
    _run(dsn, UPSERT_UNGUARDED, start, end, lookback)


def upsert_order_changes_undeduplicated(dsn: str, *, start: datetime, end: datetime, lookback: timedelta) -> None:
    """BUG (PostgreSQL-specific: an upsert whose source repeats a key): the same
    failure as the Airflow tutorial's `SELECT DISTINCT *` merge (the query
    apache/airflow PR 29158 fixed; see employees_airflow.py). PostgreSQL raises
    CardinalityViolation where DuckDB picks one of the rows silently."""
    _run(dsn, UPSERT_UNDEDUPLICATED, start, end, lookback)
