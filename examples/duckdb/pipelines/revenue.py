"""Revenue aggregates built from the `src.events` log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any


def rebuild_daily_revenue(db_path: str) -> None:
    """CORRECT: atomic full refresh — build a new table, then swap it in
    inside one transaction.

    Opens its own connection from a database path, as a cron script does.
    Readers see the old table or the new one, never an empty or half-built
    one; a crash anywhere leaves the old table; any number of re-runs give the
    same table, because it is rebuilt from all the data each time.
    """
    import duckdb  # here, not at the top: the module collects even where duckdb is missing

    con = duckdb.connect(db_path)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute("DROP TABLE IF EXISTS analytics.daily_revenue__new")
        con.execute(
            """
            CREATE TABLE analytics.daily_revenue__new AS
            SELECT CAST(event_time AS DATE) AS day, count(*) AS events, CAST(sum(amount) AS DECIMAL(18, 2)) AS revenue
            FROM src.events GROUP BY 1
            """
        )
        con.execute("DROP TABLE analytics.daily_revenue")
        con.execute("ALTER TABLE analytics.daily_revenue__new RENAME TO daily_revenue")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def replace_daily_totals(conn: Any, window_end: datetime) -> None:
    """BUG (replace-table clobbers a backfill): the shape of
    dagster-io/dagster#15155 (a backfill re-materialises old partitions) with
    a full-refresh model that is only right for the newest window.

    `CREATE OR REPLACE TABLE … WHERE event_time < window_end` is atomic and
    fine when runs go forward in time; but a backfill (or a catch-up run that
    finishes out of order) of an earlier day replaces the whole table with
    totals up to that day, and the later days disappear.
    """
    conn.execute(
        """
        CREATE OR REPLACE TABLE analytics.daily_totals AS
        SELECT CAST(event_time AS DATE) AS day, count(*) AS events, CAST(sum(amount) AS DECIMAL(18, 2)) AS revenue
        FROM src.events WHERE event_time < ? GROUP BY 1
        """,
        [window_end],
    )


def count_events(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (counter accumulation): running totals incremented per window —
    the same non-idempotent write as dagster-io/dagster#21278 (a partition
    materialised twice doubles its data), in aggregate form.

    `events = events + new` is right exactly once per window. A retry after
    the statement committed, or a duplicate run, counts the window again.
    """
    conn.execute(
        """
        INSERT INTO analytics.event_counts (event_type, events, revenue)
        SELECT event_type, count(*), sum(amount) FROM src.events
        WHERE event_time >= ? AND event_time < ? GROUP BY event_type
        ON CONFLICT (event_type) DO UPDATE SET
            events  = analytics.event_counts.events + excluded.events,
            revenue = analytics.event_counts.revenue + excluded.revenue
        """,
        [window_start, window_end],
    )


def _replace_hour(conn: Any, hour: datetime, window_start: datetime, window_end: datetime) -> None:
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM analytics.hourly_revenue WHERE hour = ?", [hour])
        conn.execute(
            """
            INSERT INTO analytics.hourly_revenue (hour, events, revenue)
            SELECT ?, count(*), coalesce(sum(amount), 0) FROM src.events
            WHERE event_time >= ? AND event_time < ?
            """,
            [hour, window_start, window_end],
        )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def hourly_revenue_for_last_hour(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (partition keyed on run time instead of the window): the bug
    behind dagster-io/dagster#15155-style backfills writing the wrong
    partition, and every "use data_interval_start, not datetime.now()" thread.

    The data is read for the window, but the partition it is written to is
    "the hour that just closed" by the wall clock. A nominal run at the end
    of its window gets it right; a backfill, a catch-up or a re-run hours
    later overwrites the current hour with an old window's numbers.
    """
    hour = (datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    _replace_hour(conn, hour, window_start, window_end)


def hourly_revenue_with_summary(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (read-modify-write of a shared summary row; concurrency only): the
    lost update of two runs at once — SQLMesh#3866, dagster-io/dagster#15155.

    The hour and the dashboard's running total are maintained incrementally:
    read the hour's old revenue and the total, compute the new total in
    Python, then replace the hour and write the total in one transaction.
    Run by run this is idempotent and crash-safe (a retry re-reads both).
    But two hours loading at once both read the same total before either
    writes it; the second write silently drops the first hour's revenue.
    (Reading inside the transaction would be safe on DuckDB — the two UPDATEs
    of the summary row conflict and one run is retried — but not on
    PostgreSQL READ COMMITTED, where the second UPDATE waits and then writes
    its stale value anyway.)
    """
    row = conn.execute("SELECT revenue FROM analytics.hourly_revenue WHERE hour = ?", [window_start]).fetchone()
    old_hour, is_new = (row[0], 0) if row else (0, 1)
    total, hours = conn.execute("SELECT total_revenue, hours_loaded FROM analytics.revenue_summary WHERE id = 1").fetchone()
    events_n, new_hour = conn.execute(
        "SELECT count(*), coalesce(sum(amount), 0) FROM src.events WHERE event_time >= ? AND event_time < ?",
        [window_start, window_end],
    ).fetchone()
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM analytics.hourly_revenue WHERE hour = ?", [window_start])
        conn.execute("INSERT INTO analytics.hourly_revenue VALUES (?, ?, ?)", [window_start, events_n, new_hour])
        conn.execute(
            "UPDATE analytics.revenue_summary SET total_revenue = ?, hours_loaded = ? WHERE id = 1",
            [total - old_hour + new_hour, hours + is_new],
        )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
