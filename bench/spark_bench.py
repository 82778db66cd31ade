"""What a Spark check costs: `python bench/spark_bench.py [--examples N] [--jobs a,b]`.

Needs `pip install 'idemtest[spark]'` and Java 17+. Prints the one-off session start
(JVM + SparkSession, once per process), the sandbox reset (create a sandbox with its
database, load a source, drop it), then for each job of examples/spark/test_jobs.py
the check's wall time at the Spark check's defaults (or `--examples`), the job runs
it made, runs per second, and its verdict (buggy jobs stop at their first failure).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure the checkout this file sits in


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=None, help="scenarios per check (default: the Spark check's default)")
    parser.add_argument("--jobs", default="", help="test names of examples/spark/test_jobs.py (default: all)")
    args = parser.parse_args()

    import idemtest
    from examples.spark import test_jobs
    from idemtest.adapters.spark import DEFAULT_EXAMPLES, DEFAULT_SYSTEMATIC_MAX
    from idemtest.engine.model import Stats
    from idemtest.engine.search import Checker, Config
    from idemtest.sandbox import spark
    from idemtest.sandbox.spark import SparkBackend

    backend = SparkBackend("spark")
    t0 = time.perf_counter()
    spark.session()
    print(f"session start (JVM + SparkSession, once per process): {time.perf_counter() - t0:5.1f} s")

    resets = []
    for _ in range(5):
        t0 = time.perf_counter()
        sb = backend.create()
        sb._create_source(test_jobs.EVENTS)
        sb.load_source(test_jobs.EVENTS, [])
        sb.close()
        resets.append(time.perf_counter() - t0)
    print(f"sandbox reset (new session + database + source table, then drop): median {statistics.median(resets) * 1000:5.0f} ms of 5")

    examples = args.examples or DEFAULT_EXAMPLES
    print(f"Spark checks: {examples} scenarios, single-fault pass capped at {DEFAULT_SYSTEMATIC_MAX}")
    tests = {n: fn for n, fn in vars(test_jobs).items() if n.startswith("test_") and hasattr(fn, "idemtest_spark")}
    names = args.jobs.split(",") if args.jobs else list(tests)
    total_wall = total_runs = 0.0
    for name in names:
        spec, load = tests[name].idemtest_spark
        stats = Stats()
        config = Config(
            examples=examples, db="spark", replay=None, failures_dir=Path(tempfile.mkdtemp()), test_id=name,
            stats=stats, backend=backend, systematic_max=DEFAULT_SYSTEMATIC_MAX,
        )
        t0 = time.perf_counter()
        checker = Checker(spec, load, config)
        try:
            checker.run()
            verdict = "passed"
        except idemtest.CheckFailure as e:
            verdict = f"caught {e.prop}"
        finally:
            checker.close()
        wall = time.perf_counter() - t0
        total_wall += wall
        total_runs += stats.runs
        print(f"{name:38} check {wall:6.1f} s  {stats.runs:4d} job runs ({stats.runs / wall:4.2f}/s)  {stats.crashes} crashes injected  {verdict}")
    if total_wall:
        print(f"all: {total_wall:6.1f} s, {total_runs:.0f} job runs, {total_runs / total_wall:4.2f} runs/s")
    backend.close()


if __name__ == "__main__":
    main()
