"""Loads of `src.events` into `analytics.loaded_events` the way dlt and the
Singer SDK load: the window's rows are split into jobs, a pool of worker
threads writes each job on its own connection, and the load is recorded in
`analytics.event_loads` under a load id taken from the clock
(`str(time.time())`, dlt's load id).

`connect` opens a connection to the warehouse (`lambda: duckdb.connect(path)`);
each worker opens its own, as a connection cannot be shared across threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

WORKERS = 3
SELECT_WINDOW = "SELECT event_id, order_id, event_type, amount, event_time FROM src.events WHERE event_time >= ? AND event_time < ? ORDER BY event_id"
INSERT = "INSERT INTO analytics.loaded_events (event_id, order_id, event_type, amount, event_time, load_id) VALUES (?, ?, ?, ?, ?, ?)"


def _jobs(rows: list[Any], n: int) -> list[list[Any]]:
    return [job for job in (rows[i::n] for i in range(n)) if job]


def _already_loaded(con: Any, window_start: datetime) -> bool:
    return con.execute("SELECT 1 FROM analytics.event_loads WHERE window_start = ?", [window_start]).fetchone() is not None


def _record_load(con: Any, load_id: str, window_start: datetime, package: str, rows: int) -> None:
    con.execute("INSERT INTO analytics.event_loads (load_id, window_start, package, rows) VALUES (?, ?, ?, ?)", [load_id, window_start, package, rows])


def append_jobs_then_record(connect: Callable[[], Any], window_start: datetime, window_end: datetime, workers: int = WORKERS) -> None:
    """BUG (data committed by the workers, load record committed later: dlt-hub/dlt#4052).

    Each worker appends its job and commits; once every job is done the main
    thread records the load. A crash between a worker's commit and the load
    record leaves rows without a record, so the retry, seeing no record for the
    window, appends them again."""
    con = connect()
    if _already_loaded(con, window_start):
        return
    load_id = str(time.time())
    rows = con.execute(SELECT_WINDOW, [window_start, window_end]).fetchall()

    def job(part: list[Any]) -> None:
        c = connect()
        try:
            c.execute("BEGIN")
            c.executemany(INSERT, [(*r, load_id) for r in part])
            c.execute("COMMIT")
        finally:
            c.close()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(job, _jobs(rows, workers)))
    _record_load(con, load_id, window_start, "events", len(rows))
    con.close()


def replace_jobs_then_record(connect: Callable[[], Any], window_start: datetime, window_end: datetime, workers: int = WORKERS) -> None:
    """CORRECT: each worker replaces its job's rows by key (DELETE + INSERT in
    one transaction), so a retry that finds no load record redoes every job
    without duplicating any row; the record only lets a later duplicate run skip."""
    con = connect()
    if _already_loaded(con, window_start):
        return
    load_id = str(time.time())
    rows = con.execute(SELECT_WINDOW, [window_start, window_end]).fetchall()

    def job(part: list[Any]) -> None:
        c = connect()
        try:
            c.execute("BEGIN")
            ids = ", ".join(str(int(r[0])) for r in part)
            c.execute(f"DELETE FROM analytics.loaded_events WHERE event_id IN ({ids})")
            c.executemany(INSERT, [(*r, load_id) for r in part])
            c.execute("COMMIT")
        finally:
            c.close()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(job, _jobs(rows, workers)))
    _record_load(con, load_id, window_start, "events", len(rows))
    con.close()


def load_in_two_packages(connect: Callable[[], Any], window_start: datetime, window_end: datetime) -> None:
    """CORRECT: two load packages per run (purchases, then every other event),
    each under its own load id `str(time.time())` recorded with a primary key —
    as a dlt pipeline that runs two resources does. Each package replaces its
    rows and records itself in one transaction. On a stopped clock both ids
    would be equal and the second record would break the primary key."""
    con = connect()
    for package, cond in (("purchases", "event_type = 'purchase'"), ("other", "event_type <> 'purchase'")):
        load_id = str(time.time())
        con.execute("BEGIN")
        con.execute(f"DELETE FROM analytics.loaded_events WHERE event_time >= ? AND event_time < ? AND {cond}", [window_start, window_end])
        con.execute(
            f"INSERT INTO analytics.loaded_events SELECT event_id, order_id, event_type, amount, event_time, ? FROM src.events "
            f"WHERE event_time >= ? AND event_time < ? AND {cond}",
            [load_id, window_start, window_end],
        )
        _record_load(con, load_id, window_start, package, 0)
        con.execute("COMMIT")
    con.close()


def run_jobs_in_wrapper(connect: Callable[[], Any], window_start: datetime, window_end: datetime, workers: int = WORKERS) -> None:
    """CORRECT load (`replace_jobs_then_record`'s jobs) run by a library-style job
    wrapper: when a job fails, the wrapper's `finally` waits for the job to
    report a final state before it re-raises — and a job killed mid-way never
    reports one (dlt's load step waits on its jobs the same way). In production
    the kill ends the process; idemtest must not wait for this `finally`."""
    con = connect()
    if _already_loaded(con, window_start):
        return
    load_id = str(time.time())
    rows = con.execute(SELECT_WINDOW, [window_start, window_end]).fetchall()
    parts = _jobs(rows, workers)
    reported = [threading.Event() for _ in parts]  # a job's final state, written when it completes

    def job(i: int) -> None:
        part = parts[i]
        c = connect()
        try:
            c.execute("BEGIN")
            ids = ", ".join(str(int(r[0])) for r in part)
            c.execute(f"DELETE FROM analytics.loaded_events WHERE event_id IN ({ids})")
            c.executemany(INSERT, [(*r, load_id) for r in part])
            c.execute("COMMIT")
            reported[i].set()
        finally:
            c.close()

    pool = ThreadPoolExecutor(workers)
    futures = [pool.submit(job, i) for i in range(len(parts))]
    failed: BaseException | None = None
    try:
        for f in futures:
            f.result()
    except BaseException as e:
        failed = e
        raise AssertionError(f"load job failed: {e!r}") from e
    finally:
        if failed is not None:
            for state in reported:
                state.wait()  # a killed job never reports: this waits forever
        pool.shutdown(wait=False)
    _record_load(con, load_id, window_start, "events", len(rows))
    con.close()
