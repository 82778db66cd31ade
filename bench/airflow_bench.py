"""What an Airflow check costs: `python bench/airflow_bench.py [--db DSN] [--examples N]`.

Needs `pip install 'idemtest[airflow]'` and a PostgreSQL server. Plays the same
scenarios (same seed, same Spec) twice: once through `idemtest.airflow.check`'s DAG
run of examples/airflow/dags/events_interval.py (Airflow imported, templates rendered,
`SQLExecuteQueryOperator.execute`, the DAG run's record kept in the sandbox), once
through a plain load function sending the same two statements on psycopg2. Prints
the one-off cost (import Airflow, load the DAG), each wall time, the runs made, the
seconds per run and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure the checkout this file sits in

DELETE = "DELETE FROM analytics.loaded_events WHERE event_time >= %s AND event_time < %s"
INSERT = (
    "INSERT INTO analytics.loaded_events (event_id, order_id, event_type, amount, event_time) "
    "SELECT event_id, order_id, event_type, amount, event_time FROM src.events WHERE event_time >= %s AND event_time < %s"
)


def plain(run):  # type: ignore[no-untyped-def]
    import psycopg2

    conn = psycopg2.connect(run.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(DELETE, (run.window.start, run.window.end))
            cur.execute(INSERT, (run.window.start, run.window.end))
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--examples", type=int, default=20)
    args = ap.parse_args()

    import tempfile

    import idemtest
    from examples.sources import EVENTS
    from idemtest import Stats, Target

    t0 = time.perf_counter()
    test = idemtest.airflow.check(
        dag=str(ROOT / "examples/airflow/dags/events_interval.py"), sources=[EVENTS],
        targets=[Target("analytics.loaded_events", key="event_id")], setup=str(ROOT / "examples/airflow/schema.sql"),
    )
    plan = idemtest.airflow.definition_of(test).plan()  # type: ignore[union-attr]
    print(f"import Airflow + load the DAG: {time.perf_counter() - t0:.2f} s")
    rows = []
    for label, load in (("airflow DAG run", plan.load), ("plain psycopg2 load", plain)):
        stats = Stats()
        with tempfile.TemporaryDirectory() as failures:
            t0 = time.perf_counter()
            idemtest.verify(plan.spec, load, examples=args.examples, db=args.db, stats=stats, seed=1, failures_dir=failures)
            wall = time.perf_counter() - t0
        rows.append((label, wall, stats.runs))
        print(f"{label:22s} {wall:6.2f} s  {stats.runs:4d} runs  {wall / max(stats.runs, 1) * 1000:6.1f} ms/run")
    (_, a, ra), (_, b, rb) = rows
    print(f"ratio airflow/plain: {a / b:.2f}x wall, {(a / max(ra, 1)) / (b / max(rb, 1)):.2f}x per run")


if __name__ == "__main__":
    main()
