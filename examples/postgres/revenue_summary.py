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
from a stale read — a lost update. Only an interleaving finds it, so the spec
exercises nothing else. Fixes: `SET total_revenue = total_revenue + %s` (the
row lock then serialises the arithmetic), `SELECT … FOR UPDATE`, or recompute
the total as `SELECT sum(revenue) FROM analytics.window_revenue`.

The run's own connection (`run.conn`, psycopg 3).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import psycopg

from idemtest import Spec, Target

from ._common import ORDER_EVENTS, SCHEDULE, SCHEMA


def update_revenue(conn: psycopg.Connection, *, start: datetime, end: datetime) -> None:
    with conn.transaction():
        (total,) = conn.execute("SELECT total_revenue FROM analytics.revenue_summary WHERE id = 1").fetchone()
        row = conn.execute("SELECT revenue FROM analytics.window_revenue WHERE window_start = %s", [start]).fetchone()
        old = row[0] if row else Decimal(0)
        (new,) = conn.execute(
            "SELECT coalesce(sum(amount), 0) FROM src.order_events WHERE event_time >= %s AND event_time < %s",
            [start, end],
        ).fetchone()
        conn.execute(
            "INSERT INTO analytics.window_revenue (window_start, revenue) VALUES (%s, %s) "
            "ON CONFLICT (window_start) DO UPDATE SET revenue = EXCLUDED.revenue",
            [start, new],
        )
        conn.execute("UPDATE analytics.revenue_summary SET total_revenue = %s WHERE id = 1", [total - old + new])


SPEC = Spec(
    dialect="postgres",
    setup=SCHEMA,
    sources=[ORDER_EVENTS],
    targets=[
        Target("analytics.window_revenue", key="window_start"),
        Target("analytics.revenue_summary", key="id"),
    ],
    schedule=SCHEDULE,
    max_lateness=0,  # events land on time here: the point is the race, not late data
    exercise={"concurrent"},
    concurrency="partitions",  # two different windows at once
)

# the same pipeline under every other perturbation, concurrency off: it passes
SPEC_SEQUENTIAL = Spec(
    dialect="postgres",
    setup=SCHEMA,
    sources=[ORDER_EVENTS],
    targets=SPEC.targets,
    schedule=SCHEDULE,
    max_lateness=0,
    concurrency="none",
)


def run_update_revenue(run) -> None:  # type: ignore[no-untyped-def]
    update_revenue(run.conn, start=run.window.start, end=run.window.end)
