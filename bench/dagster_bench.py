"""What a Dagster check costs: `python bench/dagster_bench.py [--examples N] [--assets a,b]`.

Needs `pip install 'idemtest[dagster]'`. For each asset of examples/dagster/pipelines/orders.py
it prints the check's wall time at the Dagster check's defaults (or `--examples`), the
materializations it made, runs per second, the seconds spent inside `dagster.materialize`
against the harness's own (sandboxes, snapshots, judging, shrinking), and its verdict (buggy
assets stop at their first failure and are then reduced). A plain `materialize` of one
partition on a DuckDB file, without idemtest, is timed first as the floor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure the checkout this file sits in

DEFS = ROOT / "examples" / "dagster" / "pipelines" / "orders.py"
ASSETS = ["analytics/daily_orders", "analytics/daily_orders_autocommit", "analytics/daily_summary", "analytics/daily_orders_io"]
ORDERS = {"raw/orders": {"updates": False}}


def plain_materialize(n: int = 10) -> float:
    """Seconds per `dagster.materialize` of one partition on a DuckDB file, no idemtest."""
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from idemtest.adapters.dagster import RUN_CONFIG, _import_path

    module = _import_path(str(DEFS), None)
    with tempfile.TemporaryDirectory() as tmp:
        import duckdb

        db = f"{tmp}/w.duckdb"
        con = duckdb.connect(db)
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders (order_id BIGINT, customer VARCHAR, amount DECIMAL(12,2), ordered_at TIMESTAMP)")
        con.close()
        resources = {"duckdb": DuckDBResource(database=db)}
        instance = dg.DagsterInstance.ephemeral()
        assets = [a for a in module.defs.assets if a.key.to_user_string() in ("raw/orders", "analytics/daily_orders")]
        dg.materialize(assets, selection=[assets[1]], partition_key="2026-06-01", resources=resources, run_config=RUN_CONFIG, instance=instance)
        t0 = time.perf_counter()
        for _ in range(n):
            dg.materialize(assets, selection=[assets[1]], partition_key="2026-06-01", resources=resources, run_config=RUN_CONFIG, instance=instance)
        return (time.perf_counter() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=None, help="scenarios per check (default: the Dagster check's default)")
    parser.add_argument("--assets", default=",".join(ASSETS))
    args = parser.parse_args()

    import idemtest
    from idemtest.adapters.dagster import DEFAULT_EXAMPLES, DEFAULT_SYSTEMATIC_MAX, definition_of
    from idemtest.engine.model import Stats
    from idemtest.engine.search import Checker, Config
    from idemtest.sandbox import get_backend

    floor = plain_materialize()
    examples = args.examples or DEFAULT_EXAMPLES
    print(f"plain dagster.materialize of one partition (DuckDB file, no idemtest): {floor:.3f} s")
    print(f"Dagster checks on duckdb: {examples} scenarios, single-fault pass capped at {DEFAULT_SYSTEMATIC_MAX}")
    backend = get_backend("duckdb")
    total_wall = total_in = 0.0
    total_runs = 0
    try:
        for name in args.assets.split(","):
            definition = definition_of(idemtest.dagster.check(assets=str(DEFS), select=[name], sources=ORDERS))
            assert definition is not None
            t0 = time.perf_counter()
            plan = definition.plan("duckdb")
            load_s = time.perf_counter() - t0
            stats = Stats()
            config = Config(
                examples=examples, db="duckdb", replay=None, failures_dir=Path(tempfile.mkdtemp()), test_id=name,
                stats=stats, backend=backend, systematic_max=DEFAULT_SYSTEMATIC_MAX,
            )
            t0 = time.perf_counter()
            try:
                Checker(plan.spec, plan.load, config).run()
                verdict = "passed"
            except idemtest.CheckFailure as e:
                verdict = f"caught {e.prop}"
            wall = time.perf_counter() - t0
            n, inside = plan.counters.runs, plan.counters.seconds
            total_wall, total_in, total_runs = total_wall + wall, total_in + inside, total_runs + n
            print(
                f"{name:36} defs {load_s:4.1f} s  check {wall:6.1f} s  {n:4d} materializations ({n / wall:4.2f}/s)  "
                f"inside dagster {inside:6.1f} s ({inside / max(n, 1):5.3f} s each)  harness {wall - inside:5.1f} s "
                f"(harness/dagster {(wall - inside) / max(inside, 1e-9):4.2f})  {stats.crashes} crashes injected  {verdict}"
            )
    finally:
        backend.close()
    print(
        f"all: {total_wall:.1f} s, {total_runs} materializations, {total_runs / max(total_wall, 1e-9):.2f} runs/s, "
        f"{total_in:.1f} s inside dagster, harness/dagster {(total_wall - total_in) / max(total_in, 1e-9):.2f}"
    )


if __name__ == "__main__":
    main()
