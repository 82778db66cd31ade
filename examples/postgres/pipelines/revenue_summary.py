"""Buggy under concurrency only: a running total kept by read-modify-write in Python.

Each run recomputes its window's revenue, upserts it into
`analytics.window_revenue`, and moves the dashboard's running total in
`analytics.revenue_summary` by the difference — reading the total with a
`SELECT` at the start, adding in Python, writing it back at the end with
`UPDATE … SET total_revenue = %s`.
Everything happens in one transaction and a re-run adds `new - old = 0`, so
retries, crashes, duplicate runs, backfills and catch-up runs are all fine.

Two runs at once are not (Airflow `max_active_runs > 1`, a backfill next to the
scheduled run): in READ COMMITTED both read the same total, the second UPDATE
waits for the first to commit and then overwrites it with a total computed
from a stale read — a lost update. Only an interleaving finds it, so its check
exercises nothing else. Fixes: `SET total_revenue = total_revenue + %s` (the
row lock then serialises the arithmetic), `SELECT … FOR UPDATE`, or recompute
the total as `SELECT sum(revenue) FROM analytics.window_revenue`.

A psycopg 3 connection the caller owns (`run.conn` under idemtest).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg


def update_revenue(conn: psycopg.Connection, *, start: datetime, end: datetime) -> None:
    """BUG (read-modify-write of a shared running total; concurrency only): the
    lost update of two runs at once — SQLMesh#3866, dagster-io/dagster#15155."""
    with conn.transaction():
        (total,) = conn.execute("SELECT total_revenue FROM analytics.revenue_summary WHERE id = 1").fetchone()
        row = conn.execute("SELECT revenue FROM analytics.window_revenue WHERE window_start = %s", [start]).fetchone()
        old = row[0] if row else Decimal(0)
        (new,) = conn.execute(
            "SELECT coalesce(sum(amount), 0) FROM src.events WHERE event_time >= %s AND event_time < %s",
            [start, end],
        ).fetchone()
        conn.execute(
            "INSERT INTO analytics.window_revenue (window_start, revenue) VALUES (%s, %s) "
            "ON CONFLICT (window_start) DO UPDATE SET revenue = EXCLUDED.revenue",
            [start, new],
        )
        conn.execute("UPDATE analytics.revenue_summary SET total_revenue = %s WHERE id = 1", [total - old + new])
