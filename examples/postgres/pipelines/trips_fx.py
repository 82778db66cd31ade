"""Keyless taxi trips and a daily snapshot of exchange rates, on PostgreSQL
(a psycopg 3 connection the caller owns: `run.conn` under idemtest)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

COLUMNS = "vendor_id, pickup_at, pu_location_id, fare_amount"


def replace_trip_window(conn: psycopg.Connection, *, start: datetime, end: datetime) -> None:
    """CORRECT: without a key the window's trips are deleted and inserted again,
    both in one transaction: a retry or a re-run rebuilds the same multiset.
    The lock makes two runs take turns (READ COMMITTED would let both insert)."""
    with conn.transaction():
        conn.execute("LOCK TABLE analytics.trips IN SHARE ROW EXCLUSIVE MODE")
        conn.execute("DELETE FROM analytics.trips WHERE pickup_at >= %s AND pickup_at < %s", [start, end])
        conn.execute(f"INSERT INTO analytics.trips SELECT {COLUMNS} FROM src.trips WHERE pickup_at >= %s AND pickup_at < %s", [start, end])


def append_with_lookback(conn: psycopg.Connection, *, lookback: timedelta = timedelta(hours=2)) -> None:
    """BUG (clean-run double load): "the last two hours up to now()" appended
    every hour so late trips are not missed — the lookback of
    dbt-labs/dbt-core#10867 without the delete that goes with it. Every trip is
    in two runs' ranges: one clean pass already loads it twice."""
    with conn.transaction():
        conn.execute(
            f"INSERT INTO analytics.trips SELECT {COLUMNS} FROM src.trips "
            "WHERE pickup_at >= now()::timestamp - %s AND pickup_at < now()::timestamp",
            [lookback],
        )


def replace_rates(conn: psycopg.Connection) -> None:
    """CORRECT: the snapshot is the whole truth: TRUNCATE and reload in one
    transaction (TRUNCATE is transactional on PostgreSQL), into a table the
    load creates on its first run."""
    conn.execute("CREATE TABLE IF NOT EXISTS analytics.fx_rates (currency VARCHAR PRIMARY KEY, rate DECIMAL(12, 6))")
    conn.commit()
    with conn.transaction():
        conn.execute("TRUNCATE analytics.fx_rates")
        conn.execute("INSERT INTO analytics.fx_rates SELECT currency, rate FROM src.fx_rates")
