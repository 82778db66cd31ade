"""What following a run's threads costs, and how fast a dead attempt is given up.

    python bench/threads_bench.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Prints: the cost of one statement boundary (lock included) on the run's thread
and from 4 threads at once; the cost of a `ThreadPoolExecutor.submit` with and
without a live run (the inherit wrapper); the time from an injected crash to the
attempt's CRASHED record when the load's `finally` waits forever; and, with
--pg, the cost of the PostgreSQL unseen-session check.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any


def per_boundary(threads: int, n: int = 20000) -> float:
    from idemtest.instrument import Controller

    ctl = Controller("bench")

    def hammer() -> None:
        for _ in range(n // threads):
            ctl.done(ctl.boundary("execute", "x"))

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return (time.perf_counter() - t0) / n * 1e6


def per_submit(live: bool, n: int = 5000) -> float:
    from idemtest.instrument import Controller, activate, begin_run, end_run

    ctl = Controller("bench")
    begin_run(ctl)
    try:
        with ThreadPoolExecutor(2) as pool:
            pool.submit(lambda: None).result()
            if live:
                with activate(ctl):
                    t0 = time.perf_counter()
                    for f in [pool.submit(lambda: None) for _ in range(n)]:
                        f.result()
            else:
                t0 = time.perf_counter()
                for f in [pool.submit(lambda: None) for _ in range(n)]:
                    f.result()
            return (time.perf_counter() - t0) / n * 1e6
    finally:
        end_run(ctl)


def crash_to_record(runs: int = 5) -> list[float]:
    import duckdb

    from idemtest import Spec, Target, hourly
    from idemtest.engine.execute import Env
    from idemtest.engine.model import Dataset, RunStep
    from idemtest.instrument import Fault
    from idemtest.sandbox.duckdb import DuckDBBackend

    spec = Spec(setup="CREATE TABLE t (id BIGINT)", sources=[], targets=[Target("t", key="id")], schedule=hourly("2026-06-01", periods=1), timeout="30s")
    backend = DuckDBBackend()
    sb = backend.create()
    sb.prepare(spec)

    def load(run: Any) -> None:
        try:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(lambda: duckdb.connect(run.path).execute("INSERT INTO t VALUES (1)")).result()
        finally:
            threading.Event().wait()  # a wrapper waiting for a job state that never comes

    now = datetime(2026, 6, 1, 1)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rec = Env(spec, sb, Dataset(), load).execute(1, RunStep(0, now), 1, now, Fault(2, "after"))
        assert rec.outcome == "crash", rec.outcome
        out.append(time.perf_counter() - t0)
    sb.close()
    backend.close()
    return out


def pg_unseen(dsn: str, runs: int = 50) -> float:
    from idemtest.sandbox.postgres import PostgresBackend

    be = PostgresBackend(dsn)
    sb = be.create()
    try:
        sb.unseen()
        t0 = time.perf_counter()
        for _ in range(runs):
            sb.unseen()
        return (time.perf_counter() - t0) / runs * 1e3
    finally:
        sb.close()
        be.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default=None, help="a PostgreSQL DSN where idemtest may create databases")
    args = ap.parse_args()
    print(f"boundary, run's thread only : {statistics.median(per_boundary(1) for _ in range(3)):.2f} µs")
    print(f"boundary, 4 threads at once : {statistics.median(per_boundary(4) for _ in range(3)):.2f} µs")
    print(f"pool submit, no run         : {per_submit(False):.1f} µs")
    print(f"pool submit, inside a run   : {per_submit(True):.1f} µs")
    waits = crash_to_record()
    print(f"crash -> CRASHED record, finally waits forever: median {statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms")
    if args.pg:
        print(f"PostgreSQL unseen-session check: {pg_unseen(args.pg):.2f} ms")


if __name__ == "__main__":
    main()
