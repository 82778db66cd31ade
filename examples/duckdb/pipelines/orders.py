"""Incremental loads of the OLTP `src.orders` table into `analytics.orders`.

`state` is whatever small key-value store the orchestrator gives the job for
its cursor (a dlt pipeline state, an Airflow Variable, a row in a control
table): anything with `get(key, default)` and `set(key, value)`. Under
idemtest it is `run.state`, which lives in the same database and goes through
the same connection, so it takes part in the load's transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

CURSOR = "orders.updated_at"
EPOCH = datetime(1970, 1, 1)

COLUMNS = "order_id, customer_email, status, amount, updated_at"

# an upsert that never lets an older version overwrite a newer one
UPSERT = f"""
INSERT INTO analytics.orders ({COLUMNS})
SELECT {COLUMNS} FROM src.orders WHERE {{where}}
ON CONFLICT (order_id) DO UPDATE SET
    customer_email = excluded.customer_email,
    status         = excluded.status,
    amount         = excluded.amount,
    updated_at     = excluded.updated_at
WHERE excluded.updated_at > analytics.orders.updated_at
"""


def merge_orders(conn: Any, state: Any, lookback: timedelta = timedelta(hours=1)) -> int:
    """CORRECT: MERGE with a lookback on an event-time watermark.

    The watermark is the largest `updated_at` loaded so far (never wall-clock
    time), kept with GREATEST so it never moves back, and re-read with a
    lookback at least as long as the source's maximum lateness, so a row that
    commits late with an older `updated_at` is still picked up. The MERGE and
    the watermark are saved in one transaction: a crash anywhere leaves both
    as they were, and a retry redoes the same work. The MERGE only replaces a
    row with a strictly newer version, so re-reading the lookback is harmless.
    """
    conn.execute("BEGIN TRANSACTION")
    try:
        watermark = state.get(CURSOR)
        since = (watermark - lookback) if watermark is not None else EPOCH
        conn.execute(
            f"""
            MERGE INTO analytics.orders AS t
            USING (SELECT {COLUMNS} FROM src.orders WHERE updated_at >= ?) AS s
            ON t.order_id = s.order_id
            WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET
                customer_email = s.customer_email, status = s.status,
                amount = s.amount, updated_at = s.updated_at
            WHEN NOT MATCHED THEN INSERT ({COLUMNS})
                VALUES (s.order_id, s.customer_email, s.status, s.amount, s.updated_at)
            """,
            [since],
        )
        (loaded_max,) = conn.execute("SELECT max(updated_at) FROM src.orders WHERE updated_at >= ?", [since]).fetchone()
        candidates = [t for t in (watermark, loaded_max) if t is not None]
        if candidates:
            state.set(CURSOR, max(candidates))  # GREATEST(old, new): never moves back
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    (n,) = conn.execute("SELECT count(*) FROM analytics.orders").fetchone()
    return int(n)


def load_orders_watermark_first(conn: Any, state: Any) -> None:
    """BUG (watermark saved before the load): the bug behind
    datamill-co/target-postgres PR 120 / 130 and adswerve/target-bigquery#9 —
    state emitted before the data is flushed.

    The job reads the source's high-water mark, saves it (autocommit) and only
    then copies the rows up to it. If the process dies between the two, the
    retry finds the new watermark already saved, copies nothing, and the rows
    in between are never loaded.
    """
    old = state.get(CURSOR)
    (high,) = conn.execute("SELECT max(updated_at) FROM src.orders").fetchone()
    if high is None:
        return
    state.set(CURSOR, high)  # committed on its own, before the data
    conn.execute(UPSERT.format(where="updated_at > ? AND updated_at <= ?"), [old or EPOCH, high])


def load_orders_last_hour(conn: Any) -> None:
    """BUG (wall-clock cutoff without lookback): the bug behind dbt-core#10867
    (microbatch with lookback 0 gives incomplete batches).

    An hourly job that takes "everything updated in the last hour" by the
    wall clock. A row that commits late — its `updated_at` more than an hour
    before the run that could first see it — is never loaded; a retry five
    minutes later also skips the first five minutes of the hour.
    """
    cutoff = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)
    conn.execute(UPSERT.format(where="updated_at > ?"), [cutoff])


def merge_orders_on_version(conn: Any, window_start: datetime, window_end: datetime, lookback: timedelta = timedelta(hours=1)) -> None:
    """BUG (MERGE keyed on the version key): merge keys that include the
    cursor column — the duplicates of frappe/insights PR 1121 (a `modified`
    cursor turned updates into new rows) and of
    GoogleCloudPlatform/DataflowTemplates PR 133 (duplicate primary keys in the
    replica after updates).

    `ON t.order_id = s.order_id AND t.updated_at = s.updated_at` looks
    careful: a retry, a duplicate run or the lookback re-reading rows matches
    the same version and inserts nothing twice. But a newer version of an
    order never matches the old row — it is inserted next to it, and the
    lakehouse table (no enforced primary key) now holds the order twice.
    """
    conn.execute(
        f"""
        MERGE INTO analytics.orders_lake AS t
        USING (SELECT {COLUMNS} FROM src.orders WHERE updated_at >= ? AND updated_at < ?) AS s
        ON t.order_id = s.order_id AND t.updated_at = s.updated_at
        WHEN MATCHED THEN UPDATE SET customer_email = s.customer_email, status = s.status, amount = s.amount
        WHEN NOT MATCHED THEN INSERT ({COLUMNS})
            VALUES (s.order_id, s.customer_email, s.status, s.amount, s.updated_at)
        """,
        [window_start - lookback, window_end],
    )


def merge_orders_on_key(conn: Any, window_start: datetime, window_end: datetime, lookback: timedelta = timedelta(hours=1)) -> None:
    """CORRECT: the same MERGE into the same key-less table, matched on the
    business key alone and guarded by the version: one row per order, and an
    older version re-read by a lookback or a backfill never replaces a newer one."""
    conn.execute(
        f"""
        MERGE INTO analytics.orders_lake AS t
        USING (SELECT {COLUMNS} FROM src.orders WHERE updated_at >= ? AND updated_at < ?) AS s
        ON t.order_id = s.order_id
        WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET
            customer_email = s.customer_email, status = s.status, amount = s.amount, updated_at = s.updated_at
        WHEN NOT MATCHED THEN INSERT ({COLUMNS})
            VALUES (s.order_id, s.customer_email, s.status, s.amount, s.updated_at)
        """,
        [window_start - lookback, window_end],
    )


def load_orders_sql_now(conn: Any) -> None:
    """BUG (a SQL `now()` watermark): the wall-clock cutoff of
    `load_orders_last_hour`, written in the SQL itself — the incremental model
    `WHERE updated_at > now() - INTERVAL 1 HOUR` that dbt-core#10867's thread
    starts from.

    The database's clock decides what is read: an order that commits more
    than an hour after its `updated_at` (late replication) is never loaded,
    and a retry a few minutes late skips the first minutes of the hour.
    """
    conn.execute(UPSERT.format(where="updated_at > now() - INTERVAL 1 HOUR"))


def load_orders_sql_now_with_watermark(conn: Any, lookback: timedelta = timedelta(hours=1)) -> None:
    """CORRECT: the SQL clock only caps the read; what to read is decided by
    an event-time watermark — the newest `updated_at` already in the target,
    minus a lookback at least as long as the maximum lateness. The watermark
    is the data itself, so it can never run ahead of what was loaded, and the
    guarded upsert makes re-reading the lookback harmless."""
    conn.execute(
        UPSERT.format(
            where=(
                "updated_at >= (SELECT coalesce(max(updated_at), TIMESTAMP '1970-01-01') FROM analytics.orders) - ? "
                "AND updated_at <= CAST(now() AS TIMESTAMP)"
            )
        ),
        [lookback],
    )
