"""Loads of taxi trips: records without a trip id (identical rows occur), from a
table (`src.trips`) or from the monthly Parquet files the TLC publishes
(`tlc/yellow_tripdata_2026-01.parquet`, one per month, rewritten when late trips
arrive). Every function loads one window [window_start, window_end)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

COLUMNS = "vendor_id, pickup_at, pu_location_id, fare_amount"
IN_WINDOW = "pickup_at >= ? AND pickup_at < ?"


def replace_trip_window(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """CORRECT: the window's trips replaced in one transaction.

    Without a key nothing can be upserted: the run deletes the window's rows and
    inserts them again, both committed together, so a retry or a duplicate run
    rebuilds the same multiset (identical trips included)."""
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DELETE FROM analytics.trips WHERE {IN_WINDOW}", [window_start, window_end])
        conn.execute(f"INSERT INTO analytics.trips SELECT {COLUMNS} FROM src.trips WHERE {IN_WINDOW}", [window_start, window_end])
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def append_trip_window(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (keyless append): the shape of dlt-hub/dlt#971 (no primary key, so
    no dedupe on DuckDB): each run appends its window. A retry after the INSERT
    committed, or a re-run, appends the window's trips again."""
    conn.execute(f"INSERT INTO analytics.trips SELECT {COLUMNS} FROM src.trips WHERE {IN_WINDOW}", [window_start, window_end])


def append_with_lookback(conn: Any, lookback: timedelta = timedelta(hours=2)) -> None:
    """BUG (clean-run double load): a clock-relative window, "the last two hours
    up to now", appended every hour so that late trips are not missed — the
    lookback of dbt-labs/dbt-core#10867 without the delete that should go with
    it. Every trip falls in two consecutive runs' ranges, so even one clean pass
    loads it twice; only a reference of what the table should hold shows it."""
    conn.execute(
        f"INSERT INTO analytics.trips SELECT {COLUMNS} FROM src.trips "
        "WHERE pickup_at >= CAST(now() AS TIMESTAMP) - ? AND pickup_at < CAST(now() AS TIMESTAMP)",
        [lookback],
    )


def _month_file(landing: Path, month: str) -> str:
    return str(landing / "tlc" / f"yellow_tripdata_{month}.parquet")


def load_month_file(conn: Any, landing: Path, window_start: datetime, window_end: datetime, partition: str) -> None:
    """CORRECT: the month's file, named from the run's data interval, replaces the
    month's rows in one transaction. The job runs on the 5th of the next month, so
    trips landing up to four days late are in the file by then."""
    path = _month_file(landing, partition)
    _create_monthly_trips(conn)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DELETE FROM analytics.monthly_trips WHERE {IN_WINDOW}", [window_start, window_end])
        if Path(path).exists():
            conn.execute(f"INSERT INTO analytics.monthly_trips SELECT {COLUMNS} FROM read_parquet(?)", [path])
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def load_current_month_file(conn: Any, landing: Path) -> None:
    """BUG (file named from the run date): the month is taken from today's date,
    as in CityofPittsburgh/data-rivers PR 266 (the operator looked in the current
    month's folder). The job runs on the 5th of the next month, so it loads the
    new month's first days — and that file is rewritten as the month goes on."""
    month = datetime.now().strftime("%Y-%m")
    path = _month_file(landing, month)
    start = datetime.strptime(month, "%Y-%m")
    _create_monthly_trips(conn)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM analytics.monthly_trips WHERE pickup_at >= ?", [start])
        if Path(path).exists():
            conn.execute(f"INSERT INTO analytics.monthly_trips SELECT {COLUMNS} FROM read_parquet(?)", [path])
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def _create_monthly_trips(conn: Any) -> None:
    # the job creates its table on first run (it is not in the setup DDL)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS analytics.monthly_trips "
        "(vendor_id INTEGER, pickup_at TIMESTAMP, pu_location_id INTEGER, fare_amount DECIMAL(10, 2))"
    )


def export_trips_csv(conn: Any, landing: Path, day: str) -> None:
    """CORRECT: the day's trips exported for a partner as out/trips_<day>.csv,
    written aside and renamed into place, so a reader sees the old file or the
    new one, never half of it; re-running the day rewrites the same file."""
    out = landing / "out"
    out.mkdir(exist_ok=True)
    final = out / f"trips_{day}.csv"
    tmp = out / f".trips_{day}.csv.part"
    conn.execute(
        f"COPY (SELECT CAST(pickup_at AS DATE) AS pickup_date, {COLUMNS} FROM src.trips WHERE CAST(pickup_at AS DATE) = CAST(? AS DATE) "
        f"ORDER BY ALL) TO '{_sql_path(tmp)}' (HEADER, DELIMITER ',')",
        [day],
    )
    tmp.replace(final)


def export_trips_csv_streaming(conn: Any, landing: Path, day: str) -> None:
    """BUG (half-written output file): the export streams the day's trips into
    the final path a quarter-day at a time, so a reader (a partner's sync, the
    next task) can pick up a file holding part of the day — the reader-side face
    of partial partitions (dagster-io/dagster#21278: a partition written in place)."""
    out = landing / "out"
    out.mkdir(exist_ok=True)
    start = datetime.fromisoformat(day)
    with open(out / f"trips_{day}.csv", "w", buffering=1) as f:  # line-buffered: each row is visible as written
        f.write("pickup_date,vendor_id,pickup_at,pu_location_id,fare_amount\n")
        for q in range(4):
            lo, hi = start + timedelta(hours=6 * q), start + timedelta(hours=6 * (q + 1))
            rows = conn.execute(f"SELECT {COLUMNS} FROM src.trips WHERE {IN_WINDOW} ORDER BY ALL", [lo, hi]).fetchall()
            for vendor, pickup, loc, fare in rows:
                f.write(f"{day},{vendor},{pickup},{loc},{fare}\n")


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
