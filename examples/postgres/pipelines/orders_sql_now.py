"""Incremental upserts of `src.orders` whose range is written in SQL against the
database clock — the shape of many hand-written PostgreSQL jobs and dbt
incremental models (`where updated_at > now() - interval '1 hour'`).

Under idemtest `now()` reads the run's simulated time (the SQL clock), so the
same SQL behaves as it would at that run's moment in production. A psycopg 3
connection the caller owns (`run.conn` under idemtest).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

UPSERT = """
INSERT INTO analytics.orders (order_id, customer_email, status, amount, updated_at)
SELECT order_id, customer_email, status, amount, updated_at
FROM src.orders
WHERE {where}
ON CONFLICT (order_id) DO UPDATE SET
    customer_email = EXCLUDED.customer_email,
    status         = EXCLUDED.status,
    amount         = EXCLUDED.amount,
    updated_at     = EXCLUDED.updated_at
WHERE analytics.orders.updated_at < EXCLUDED.updated_at
"""


def upsert_orders_last_hour(conn: psycopg.Connection) -> None:
    """BUG (a SQL `now()` watermark): the wall-clock cutoff of dbt-core#10867
    in plain SQL — whatever committed more than an hour after its `updated_at`
    (a replica catching up, a late batch from a partner) is never read, and a
    retry a few minutes late skips the first minutes of the hour."""
    with conn.transaction():
        conn.execute(UPSERT.format(where="updated_at > now() - interval '1 hour'"))


def upsert_orders_since_loaded(conn: psycopg.Connection, *, lookback: timedelta) -> None:
    """CORRECT: the database clock only caps the read (`<= now()`); the range
    starts at the newest `updated_at` already loaded minus a lookback at least
    as long as the maximum lateness. That watermark is the data itself (it
    cannot run ahead of it), and the version guard makes re-reading harmless."""
    with conn.transaction():
        conn.execute(
            UPSERT.format(
                where=(
                    "updated_at >= (SELECT coalesce(max(updated_at), timestamp '1970-01-01') FROM analytics.orders) - %(lookback)s "
                    "AND updated_at <= now()::timestamp"
                )
            ),
            {"lookback": lookback},
        )
