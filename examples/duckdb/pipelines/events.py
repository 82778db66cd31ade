"""Loads of the append-only `src.events` log (one row per order event).

Every function loads one window [window_start, window_end) — Airflow's data
interval — and is called once per scheduled run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

COLUMNS = "event_id, order_id, event_type, amount, event_time"
IN_WINDOW = "event_time >= ? AND event_time < ?"


def replace_event_partition(conn: Any, window_start: datetime, window_end: datetime, lookback: timedelta = timedelta(hours=1)) -> None:
    """CORRECT: delete + insert of the window's partition in one transaction,
    re-processing a lookback like dbt's microbatch `lookback` (the fix for
    dbt-core#10867).

    Events may land up to `lookback` after their event time, so each run
    rebuilds its own window and the `lookback` before it. DELETE and INSERT
    commit together: a crash leaves the old partition in place, a retry or a
    duplicate run rebuilds the same rows. The target's primary key makes two
    overlapping runs at once fail (and be retried) instead of double-inserting
    (the race of SQLMesh#3866).
    """
    lo = window_start - lookback
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DELETE FROM analytics.fct_order_events WHERE {IN_WINDOW}", [lo, window_end])
        conn.execute(
            f"INSERT INTO analytics.fct_order_events ({COLUMNS}) SELECT {COLUMNS} FROM src.events WHERE {IN_WINDOW}",
            [lo, window_end],
        )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def append_events(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (append under retry): the bug behind dlt-hub/dlt#4052 and
    WordPress/openverse-catalog#800 (an Airflow retry after a timeout reloaded
    4.9M rows).

    A bare INSERT … SELECT of the window into a table without a key. When the
    task is retried after the INSERT committed (a timeout, a killed worker),
    or the run is cleared and re-run, the window is appended a second time.
    """
    conn.execute(
        f"INSERT INTO analytics.order_events ({COLUMNS}) SELECT {COLUMNS} FROM src.events WHERE {IN_WINDOW}",
        [window_start, window_end],
    )


def append_events_pandas(engine: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (append under retry, pandas flavour): the same bug as
    `append_events` (dlt-hub/dlt#4052, openverse-catalog#800), written the way
    many notebook-born jobs are: extract with `pd.read_sql`, transform in
    pandas, `to_sql(if_exists="append")`.
    """
    import pandas as pd
    from sqlalchemy import text

    with engine.connect() as c:
        df = pd.read_sql(
            text(f"SELECT {COLUMNS} FROM src.events WHERE event_time >= :lo AND event_time < :hi"),
            c,
            params={"lo": window_start, "hi": window_end},
        )
    df["event_type"] = df["event_type"].str.lower()
    df.to_sql("order_events", engine, schema="analytics", if_exists="append", index=False)


def replace_event_partition_autocommit(conn: Any, window_start: datetime, window_end: datetime, lookback: timedelta = timedelta(hours=1)) -> None:
    """BUG (delete and insert committed separately): `replace_event_partition`
    without its transaction — the shape of dagster-io/dagster#21278's
    partition overwrite and of dlt-hub/dlt#3023 (a killed load leaves the
    destination half-done).

    Each statement autocommits. If the process dies after the DELETE, the
    window (and the lookback before it, loaded by the previous run) is gone
    until the retry runs: readers and downstream jobs see a hole.
    """
    lo = window_start - lookback
    conn.execute(f"DELETE FROM analytics.order_events WHERE {IN_WINDOW}", [lo, window_end])
    conn.execute(
        f"INSERT INTO analytics.order_events ({COLUMNS}) SELECT {COLUMNS} FROM src.events WHERE {IN_WINDOW}",
        [lo, window_end],
    )


def insert_new_events(conn: Any, window_start: datetime, window_end: datetime, lookback: timedelta = timedelta(hours=1)) -> int:
    """BUG (check-then-insert dedupe without a unique key; concurrency only):
    the race behind SQLMesh#3866 and dagster-io/dagster#15155 (duplicate rows
    when runs of a backfill overlap).

    The job re-reads a lookback for late events and skips the ones already
    loaded by looking them up first. Run by run that is idempotent; but two
    runs whose ranges overlap (a backfill with max_active_runs > 1) both look,
    both find nothing, and both insert: the table has no key to stop them.
    """
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM src.events WHERE {IN_WINDOW} ORDER BY event_id",
        [window_start - lookback, window_end],
    ).fetchall()
    inserted = 0
    for row in rows:
        (seen,) = conn.execute("SELECT count(*) FROM analytics.order_events WHERE event_id = ?", [row[0]]).fetchone()
        if seen == 0:
            conn.execute(f"INSERT INTO analytics.order_events ({COLUMNS}) VALUES (?, ?, ?, ?, ?)", list(row))
            inserted += 1
    return inserted


def stage_and_load_events(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (two partitions share one staging table; concurrency only): the
    shape of dlt-hub/dlt#3023 (staging left untruncated) meeting SQLMesh#3866
    (concurrent runs duplicate rows).

    Extract into `staging.order_events`, then swap the window in the target
    in one transaction. Run by run it is idempotent and crash-safe; but two
    windows loading at once truncate and fill the same staging table, and
    one of them publishes the other's rows.
    """
    conn.execute("DELETE FROM staging.order_events")  # TRUNCATE
    conn.execute(
        f"INSERT INTO staging.order_events ({COLUMNS}) SELECT {COLUMNS} FROM src.events WHERE {IN_WINDOW}",
        [window_start, window_end],
    )
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DELETE FROM analytics.order_events WHERE {IN_WINDOW}", [window_start, window_end])
        conn.execute(f"INSERT INTO analytics.order_events ({COLUMNS}) SELECT {COLUMNS} FROM staging.order_events")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


#: the lookback the job was configured with (dbt microbatch `lookback`, an Airflow
#: `data_interval_start - timedelta(...)`): shorter than the source's real lateness
MICROBATCH_LOOKBACK = timedelta(minutes=15)


def load_events_microbatch(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (lookback shorter than the maximum lateness): the bug behind
    dbt-labs/dbt-core#10867 and #15518 (microbatch batches incomplete because
    the lookback does not cover how late events land).

    Everything `replace_event_partition` does right — delete + insert of the
    window plus a lookback, in one transaction — but the lookback is 15
    minutes while the event log delivers events up to an hour late (mobile
    clients that sync on reconnect). An event that lands more than 15 minutes
    after its hour was loaded is outside every later run's range: never loaded.
    """
    replace_event_partition(conn, window_start, window_end, lookback=MICROBATCH_LOOKBACK)
