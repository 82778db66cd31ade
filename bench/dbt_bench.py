"""What a dbt check costs: `python bench/dbt_bench.py [--db duckdb] [--examples N] [--models a,b]`.

Needs `pip install 'idemtest[dbt]'`. For each model of examples/dbt/shop it prints:
the one-off parse (once per process and adapter; later checks reuse the manifest),
the check's wall time at the dbt check's defaults (or `--examples`), the dbt runs it
made, runs per second, and its verdict (buggy models stop at their first failure).
A PostgreSQL sandbox: `--db postgresql://postgres@127.0.0.1:5432/postgres`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure the checkout this file sits in

PROJECT = ROOT / "examples" / "dbt" / "shop"
MODELS = {  # model -> check options, as examples/dbt/test_shop.py declares them
    "fct_orders": {},
    "fct_orders_append": {},
    "fct_orders_no_lookback": {},
    "fct_orders_delete_insert": {"ignore": ["batch_at"]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="duckdb")
    parser.add_argument("--examples", type=int, default=None, help="scenarios per check (default: the dbt check's default)")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    import idemtest
    from idemtest.adapters.dbt import (
        DEFAULT_EXAMPLES,
        DEFAULT_SYSTEMATIC_MAX,
        definition_of,
        project_for,
    )
    from idemtest.engine.model import Stats
    from idemtest.sandbox import get_backend, parse_db

    dialect = parse_db(args.db).dialect
    examples = args.examples or DEFAULT_EXAMPLES
    print(f"dbt checks on {dialect}: {examples} scenarios, single-fault pass capped at {DEFAULT_SYSTEMATIC_MAX}")
    backend = get_backend(args.db)
    try:
        for name in args.models.split(","):
            test = idemtest.dbt.check(project_dir=PROJECT, select=name, max_lateness="1h", **MODELS[name])
            definition = definition_of(test)
            assert definition is not None
            t0 = time.perf_counter()
            plan = definition.plan(dialect)
            parse = time.perf_counter() - t0
            stats = Stats()
            runs = project_for(definition.project_dir, "duckdb" if dialect == "duckdb" else "postgres")
            before = (runs.invocations, runs.seconds)
            t0 = time.perf_counter()
            from idemtest.engine.search import Checker, Config

            config = Config(
                examples=examples, db=args.db, replay=None, failures_dir=Path(tempfile.mkdtemp()), test_id=name,
                stats=stats, backend=backend, systematic_max=DEFAULT_SYSTEMATIC_MAX,
            )
            try:
                Checker(plan.spec, plan.load, config).run()
                verdict = "passed"
            except idemtest.CheckFailure as e:
                verdict = f"caught {e.prop}"
            wall = time.perf_counter() - t0
            runs = project_for(definition.project_dir, "duckdb" if dialect == "duckdb" else "postgres")
            n, secs = runs.invocations - before[0], runs.seconds - before[1]
            print(
                f"{name:26} parse {parse:5.1f} s  check {wall:6.1f} s  {n:4d} dbt runs ({n / wall:4.2f}/s overall, "
                f"{secs / max(n, 1):5.3f} s each in dbt)  {stats.crashes} crashes injected  {verdict}"
            )
    finally:
        backend.close()


if __name__ == "__main__":
    main()
