"""What a dlt check costs: `python bench/dlt_bench.py [--db duckdb] [--examples N] [--checks a,b]`.

Needs `pip install 'idemtest[dlt]'`. For each check of examples/dlt/test_shop.py it
prints the check's wall time at the dlt check's defaults (or `--examples`), the dlt
runs (`pipeline.run()`) it made, runs per second, the seconds inside dlt against the
harness's own (sandboxes, source sync, snapshots, judging), the retries run on a fresh
and on the same worker, and its verdict (buggy resources stop at their first failure).
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


def main() -> None:
    import examples.dlt.test_shop as shop

    checks = {n: fn for n, fn in vars(shop).items() if n.startswith("test_")}
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="duckdb")
    parser.add_argument("--examples", type=int, default=None, help="scenarios per check (default: the dlt check's default)")
    parser.add_argument("--checks", default=",".join(checks))
    args = parser.parse_args()

    import idemtest
    from idemtest.adapters.dlt import (
        DEFAULT_EXAMPLES,
        DEFAULT_MAX_SECONDS,
        DEFAULT_SYSTEMATIC_MAX,
        definition_of,
    )
    from idemtest.engine.model import Stats
    from idemtest.engine.search import Checker, Config
    from idemtest.sandbox import get_backend, parse_db

    dialect = parse_db(args.db).dialect
    examples = args.examples or DEFAULT_EXAMPLES
    print(f"dlt checks on {dialect}: {examples} scenarios, single-fault pass capped at {DEFAULT_SYSTEMATIC_MAX}, budget {DEFAULT_MAX_SECONDS} s")
    backend = get_backend(args.db)
    total = 0.0
    try:
        for name in args.checks.split(","):
            definition = definition_of(checks[name])
            assert definition is not None
            plan = definition.plan(dialect)
            stats = Stats()
            config = Config(
                examples=examples, db=args.db, replay=None, failures_dir=Path(tempfile.mkdtemp()), test_id=name,
                stats=stats, backend=backend, systematic_max=DEFAULT_SYSTEMATIC_MAX, max_seconds=DEFAULT_MAX_SECONDS,
            )
            t0 = time.perf_counter()
            try:
                Checker(plan.spec, plan.load, config).run()
                verdict = "passed" + (" (cut short by the time budget)" if stats.cut_short else "")
            except idemtest.CheckFailure as e:
                verdict = f"caught {e.prop}"
            wall = time.perf_counter() - t0
            total += wall
            n, inside = plan.stats.runs, plan.stats.seconds
            print(
                f"{name:34} check {wall:6.1f} s  {n:4d} dlt runs ({n / wall:4.2f}/s, {inside / max(n, 1):5.3f} s each in dlt)  "
                f"harness {wall - inside:5.1f} s / dlt {inside:5.1f} s ({(wall - inside) / max(inside, 1e-9):4.2f})  "
                f"{stats.crashes} crashes, retries {plan.stats.fresh} fresh / {plan.stats.same} same worker  {verdict}"
            )
    finally:
        backend.close()
    print(f"total {total:.1f} s")


if __name__ == "__main__":
    main()
