"""Hourly revenue: rebuild the hours of the window (plus a lookback) by delete+insert.

- `rebuild_hours` (correct): `DELETE` the hours, `INSERT` their aggregates, in
  ONE transaction on the run's connection. A crash anywhere rolls back both; a
  reader on another connection sees each hour either as before or as after
  (P4). `LOCK TABLE … IN SHARE ROW EXCLUSIVE MODE` makes two runs whose
  lookbacks overlap take turns: without it, READ COMMITTED lets the second
  DELETE miss the rows the first one inserted, and the second INSERT collides
  with them (the concurrent DELETE+INSERT race of SQLMesh#3866). Readers are
  not blocked by that lock.
- `rebuild_hours_autocommit` (buggy): the same two statements on an autocommit
  connection. A crash between them leaves the hours deleted until the retry
  (P3, the dagster-io/dagster#21278 family of partition rewrites), and a
  dashboard reading during the run sees empty hours (P4, for a Target declared
  `atomic=True`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

DELETE_HOURS = "DELETE FROM analytics.hourly_revenue WHERE hour >= %(since)s AND hour < %(until)s"
INSERT_HOURS = """
INSERT INTO analytics.hourly_revenue (hour, events, revenue)
SELECT date_trunc('hour', event_time), count(*), sum(amount)
FROM src.events
WHERE event_time >= %(since)s AND event_time < %(until)s
GROUP BY 1
"""


def _hour_range(start: datetime, end: datetime, lookback: timedelta) -> dict[str, datetime]:
    """Whole hours from the one holding `start - lookback` up to `end`: an hour is
    always rebuilt from all of its events, never from part of them."""
    since = (start - lookback).replace(minute=0, second=0, microsecond=0)
    return {"since": since, "until": end}


def rebuild_hours(conn: psycopg.Connection, *, start: datetime, end: datetime, lookback: timedelta) -> None:
    """CORRECT: recompute the hours in [start - lookback, end) in one transaction,
    serialised against an overlapping run (the race of SQLMesh#3866)."""
    bounds = _hour_range(start, end, lookback)
    with conn.transaction():
        conn.execute("LOCK TABLE analytics.hourly_revenue IN SHARE ROW EXCLUSIVE MODE")
        conn.execute(DELETE_HOURS, bounds)
        conn.execute(INSERT_HOURS, bounds)


def rebuild_hours_autocommit(dsn: str, *, start: datetime, end: datetime, lookback: timedelta) -> None:
    """BUG (DELETE and INSERT committed separately): the same rebuild, each
    statement committed on its own — the dagster-io/dagster#21278 family."""
    import psycopg  # here, not at the top: importing the examples needs no driver

    bounds = _hour_range(start, end, lookback)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(DELETE_HOURS, bounds)
        conn.execute(INSERT_HOURS, bounds)
