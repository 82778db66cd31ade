"""Benchmark the examples: `python bench/run.py [--examples N] [--db duckdb --db postgresql://…]`.

For every `@idemtest.check` test under examples/ (duckdb/ and postgres/; each
--db runs the checks of its dialect) it runs the check directly
(no pytest, no Hypothesis example database, so counts are honest) and prints:
scenarios per second, the ratio of total time to time inside user load code,
and for each buggy example the number of generated scenarios until the first
failure, the property broken and the size of the shrunk schedule. All figures
of one table come from one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def package_root(folder: Path) -> Path:
    """The folder holding the outermost package around `folder` (what pytest puts on
    sys.path). Never `folder`'s parent blindly: with --folder examples/duckdb that
    would be examples/, and its `duckdb/` package would shadow the real duckdb."""
    base = folder.resolve()
    while (base / "__init__.py").is_file():
        base = base.parent
    return base


def discover(folder: Path) -> list[tuple[str, Any, Any, bool]]:
    """Every `@idemtest.check` test in test_*.py files below `folder` (examples/duckdb
    and examples/postgres alike), imported as package modules so that their relative
    imports work."""
    import importlib
    import inspect

    from idemtest import CheckDefinition

    folder = folder.resolve()
    base = package_root(folder)
    if str(base) not in sys.path:
        sys.path.insert(0, str(base))
    found = []
    for path in sorted(folder.rglob("test_*.py")):
        name = ".".join(path.relative_to(base).with_suffix("").parts)
        mod = importlib.import_module(name)
        for attr, fn in vars(mod).items():
            check = getattr(fn, "idemtest", None)
            if not attr.startswith("test_") or not isinstance(check, CheckDefinition):
                continue
            load = check.load
            if len(inspect.signature(load).parameters) != 1:
                continue  # needs pytest fixtures
            buggy = any(m.name == "xfail" for m in getattr(fn, "pytestmark", []))
            found.append((f"{path.relative_to(folder).as_posix()}::{attr}", check.spec.located(check.base_dir) if check.base_dir else check.spec, load, buggy))
    return found


def run_one(spec: Any, load: Any, db: str, examples: int, backend: Any) -> dict[str, Any]:
    from idemtest import IdempotencyViolation, IdemtestError
    from idemtest.engine.model import Stats
    from idemtest.engine.search import Checker, Config

    stats = Stats()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(examples=examples, db=db, failures_dir=Path(tmp), stats=stats, backend=backend, database=None)
        t0 = time.perf_counter()
        result: dict[str, Any] = {"prop": "pass"}
        try:
            checker = Checker(spec, load, cfg)
            checker.run()
        except IdempotencyViolation as e:
            sc = e.scenario
            steps = getattr(sc, "steps", [])
            perturbed = sum(1 for s in steps if getattr(s, "tag", "parallel") != "nominal" or getattr(s, "faults", ()))
            result = {"prop": e.prop, "first": checker.first_failure_at, "steps": len(steps), "perturbed": perturbed}
        except IdemtestError as e:
            result = {"prop": f"error: {type(e).__name__}: {str(e).splitlines()[0][:60]}"}
        wall = time.perf_counter() - t0
    result.update(wall=wall, scenarios=stats.scenarios, user=stats.user_seconds, interleavings=stats.interleavings, blocked=stats.blocked)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=50, help="generated scenarios per check (default 50)")
    ap.add_argument("--db", action="append", help="sandbox(es) to compare, e.g. duckdb and postgresql://postgres@127.0.0.1/postgres")
    ap.add_argument("--folder", default=str(ROOT / "examples"))
    ap.add_argument("-k", default="", help="only examples whose name contains this")
    args = ap.parse_args()
    from idemtest.sandbox import get_backend, redact

    checks = [c for c in discover(Path(args.folder)) if args.k in c[0]]
    for db in args.db or ["duckdb"]:
        backend = get_backend(db)
        mine = [c for c in checks if not c[1].dialect or c[1].dialect == backend.dialect]
        print(f"\n== {redact(db)}: {len(mine)} examples, {args.examples} scenarios each ==")
        print(f"{'example':58} {'kind':7} {'result':10} {'scen/s':>7} {'total/user':>10} {'1st fail':>8} {'shrunk':>9}")
        tot_wall = tot_user = 0.0
        tot_scen = 0
        try:
            for name, spec, load, buggy in mine:
                r = run_one(spec, load, db, args.examples, backend)
                tot_wall += r["wall"]
                tot_user += r["user"]
                tot_scen += r["scenarios"]
                rate = r["scenarios"] / r["wall"] if r["wall"] else 0.0
                ratio = r["wall"] / r["user"] if r["user"] else float("nan")
                first = str(r.get("first", "")) if "first" in r else "-"
                shrunk = f"{r['steps']} ({r['perturbed']}*)" if "steps" in r else "-"
                print(f"{name:58} {'buggy' if buggy else 'correct':7} {r['prop'][:10]:10} {rate:7.1f} {ratio:10.2f} {first:>8} {shrunk:>9}")
                if r["prop"].startswith("error"):
                    print(f"    {r['prop']}")
        finally:
            backend.close()
        if tot_user:
            print(f"{'TOTAL':58} {'':7} {'':10} {tot_scen / tot_wall:7.1f} {tot_wall / tot_user:10.2f}")
    print("\nscen/s: generated scenarios judged per second, including shrinking; total/user: wall time of the check /")
    print("time inside the user's load function; 1st fail: scenarios generated until the first failure;")
    print("shrunk: steps in the minimal schedule (* = perturbed steps: crashes, duplicates, backfills, catch-up, concurrency)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
