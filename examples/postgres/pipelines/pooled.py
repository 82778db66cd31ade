"""Loads of `src.events` into `analytics.loaded_events` on a pool of worker
threads, dlt / Singer SDK style, on PostgreSQL: each job runs on its own
connection from `connect()` (psycopg 3 or psycopg2, `run.dsn` under idemtest),
and every load is recorded in `analytics.event_loads` under a load id taken
from the clock (`str(time.time())`, dlt's load id).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

WORKERS = 3
SELECT_WINDOW = "SELECT event_id, order_id, event_type, amount, event_time FROM src.events WHERE event_time >= %s AND event_time < %s ORDER BY event_id"
INSERT = "INSERT INTO analytics.loaded_events (event_id, order_id, event_type, amount, event_time, load_id) VALUES (%s, %s, %s, %s, %s, %s)"
RECORD = "INSERT INTO analytics.event_loads (load_id, window_start, package, rows) VALUES (%s, %s, %s, %s)"


def _jobs(rows: list[Any], n: int) -> list[list[Any]]:
    return [job for job in (rows[i::n] for i in range(n)) if job]


def _load(connect: Callable[[], Any], window_start: datetime, window_end: datetime, workers: int, replace: bool) -> None:
    con = connect()
    with con.cursor() as cur:
        cur.execute("SELECT 1 FROM analytics.event_loads WHERE window_start = %s", [window_start])
        if cur.fetchone() is not None:
            con.close()
            return
        load_id = str(time.time())
        cur.execute(SELECT_WINDOW, [window_start, window_end])
        rows = cur.fetchall()
    con.commit()

    def job(part: list[Any]) -> None:
        c = connect()
        try:
            with c.cursor() as cur:  # one transaction per job (the drivers open it implicitly)
                if replace:
                    cur.execute("DELETE FROM analytics.loaded_events WHERE event_id = ANY(%s)", [[int(r[0]) for r in part]])
                cur.executemany(INSERT, [(*r, load_id) for r in part])
            c.commit()
        finally:
            c.close()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(job, _jobs(rows, workers)))
    with con.cursor() as cur:
        cur.execute(RECORD, [load_id, window_start, "events", len(rows)])
    con.commit()
    con.close()


def append_jobs_then_record(connect: Callable[[], Any], window_start: datetime, window_end: datetime, workers: int = WORKERS) -> None:
    """BUG (data committed by the workers, load record committed later: dlt-hub/dlt#4052).

    A crash after a worker's commit and before the load record leaves rows
    without a record; the retry sees no record for the window and appends them again."""
    _load(connect, window_start, window_end, workers, replace=False)


def replace_jobs_then_record(connect: Callable[[], Any], window_start: datetime, window_end: datetime, workers: int = WORKERS) -> None:
    """CORRECT: each worker replaces its job's rows by key (DELETE + INSERT in one
    transaction), so a retry that finds no load record redoes the jobs without duplicates."""
    _load(connect, window_start, window_end, workers, replace=True)


def load_in_two_packages(connect: Callable[[], Any], window_start: datetime, window_end: datetime) -> None:
    """CORRECT: two load packages per run, each under its own load id
    `str(time.time())` recorded with a primary key, each replacing its rows and
    recording itself in one transaction (a dlt pipeline running two resources)."""
    con = connect()
    for package, cond in (("purchases", "event_type = 'purchase'"), ("other", "event_type <> 'purchase'")):
        load_id = str(time.time())
        with con.cursor() as cur:
            cur.execute(f"DELETE FROM analytics.loaded_events WHERE event_time >= %s AND event_time < %s AND {cond}", [window_start, window_end])
            cur.execute(
                f"INSERT INTO analytics.loaded_events SELECT event_id, order_id, event_type, amount, event_time, %s FROM src.events "
                f"WHERE event_time >= %s AND event_time < %s AND {cond}",
                [load_id, window_start, window_end],
            )
            cur.execute(RECORD, [load_id, window_start, package, 0])
        con.commit()
    con.close()
