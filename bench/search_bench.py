"""How soon, and how reliably, the search finds the examples' bugs at the defaults:
`python bench/search_bench.py [--seeds 5] [--false-alarm-examples 1000] [--db duckdb|postgres]`.

For every buggy `@idemtest.check` under examples/ (found as bench/run.py finds
them) it runs the check at the default number of scenarios under several
Hypothesis seeds (no example database, so nothing is remembered between runs)
and reports: caught or not, the scenarios played until the first failure (the
systematic pass's index, or its size plus the generated count), which phase
found it, the size of the reported failure (faults and source rows), and the
wall time; then the same per bug class (the number the example's xfail reason
starts with, as in examples/README.md). Every correct
example then runs once at `--false-alarm-examples` scenarios: any failure
there is a false alarm. The last line checks the goal: median <= 5 and max <=
25 scenarios to the first failure, and no false alarm. `--random-only` skips
the systematic pass, to compare with the random search alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure the checkout this file sits in

from run import discover  # noqa: E402  (bench/run.py, next to this file)

GOAL_MEDIAN = 5
GOAL_MAX = 25


def faults_of(steps: list[Any]) -> int:
    """Faults in a reported schedule: planned crashes, plus one per duplicate, backfill,
    catch-up or concurrent step (each is one perturbation of the nominal plan)."""
    from idemtest.engine.minimize import count_faults

    return count_faults(steps)


#: examples whose bug is that the load fails without any fault (xfail raises=LoadError):
#: caught by the clean run, before any scenario
LOAD_ERROR_EXPECTED: set[str] = set()


def bug_classes(folder: Path) -> dict[str, str]:
    """example name (as discover() names it) -> its bug class: the number its strict
    xfail reason starts with (examples/README.md numbers the classes)."""
    import re

    out: dict[str, str] = {}
    folder = folder.resolve()
    for mod in list(sys.modules.values()):
        path = getattr(mod, "__file__", None)
        if not path or not Path(path).resolve().is_relative_to(folder):
            continue
        rel = Path(path).resolve().relative_to(folder).as_posix()
        for attr, fn in vars(mod).items():
            for m in getattr(fn, "pytestmark", []) if attr.startswith("test_") else []:
                if m.name == "xfail":
                    found = re.match(r"(\d+) ", str(m.kwargs.get("reason", "")))
                    if found:
                        out[f"{rel}::{attr}"] = found.group(1)
                    if getattr(m.kwargs.get("raises"), "__name__", "") == "LoadError":
                        LOAD_ERROR_EXPECTED.add(f"{rel}::{attr}")
    return out


def run_check(spec: Any, load: Any, backend: Any, *, examples: int, seed: int, systematic: bool) -> dict[str, Any]:
    """One check: what was found, by which phase, after how many scenarios."""
    from idemtest import IdempotencyViolation, IdemtestError
    from idemtest.engine.model import ParallelStep, Stats
    from idemtest.engine.search import Checker, Config

    stats = Stats()
    out: dict[str, Any] = {"caught": False, "phase": "-", "first": None, "steps": None, "perturbed": None, "faults": None, "rows": None, "error": ""}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(examples=examples, failures_dir=Path(tmp), stats=stats, backend=backend, database=None, seed=seed, systematic=systematic)
        t0 = time.perf_counter()
        checker = Checker(spec, load, cfg)
        try:
            checker.run()
        except IdempotencyViolation as e:
            steps = list(getattr(e.scenario, "steps", []))
            out.update(caught=True, prop=e.prop, phase=checker.found_by, steps=len(steps))
            out["perturbed"] = sum(1 for s in steps if isinstance(s, ParallelStep) or s.tag != "nominal" or s.faults)
            out["faults"] = faults_of(steps)
            out["rows"] = e.scenario.data.row_count() if e.scenario is not None else None
            if checker.found_by == "systematic" and checker.systematic is not None and checker.systematic.found is not None:
                out["first"] = checker.systematic.found.index
            else:
                out["first"] = stats.systematic + (checker.first_failure_at or 0)
        except IdemtestError as e:
            out["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"
        out["wall"] = time.perf_counter() - t0
    out.update(scenarios=stats.scenarios, systematic=stats.systematic, generated=stats.generated)
    return out


def _stat(values: list[Any]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    return f"{statistics.median(vals):g}/{max(vals)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5, help="Hypothesis seeds per buggy example (default 5: seeds 0..4)")
    ap.add_argument("--examples", type=int, default=None, help="scenarios per buggy check (default: idemtest's default, 50)")
    ap.add_argument("--false-alarm-examples", type=int, default=1000, help="scenarios per correct check (default 1000; lower for a quick run; 0 skips)")
    ap.add_argument("--db", default="duckdb", help="sandbox: duckdb, postgres (the local server at 127.0.0.1:5432) or a postgresql:// DSN")
    ap.add_argument("--folder", default=str(ROOT / "examples"))
    ap.add_argument("-k", default="", help="only examples whose name contains this (several: comma-separated)")
    ap.add_argument("--random-only", action="store_true", help="skip the systematic pass (the search before it existed)")
    args = ap.parse_args()

    from idemtest import _defaults
    from idemtest.sandbox import get_backend, redact

    db = "postgresql://postgres@127.0.0.1:5432/postgres" if args.db == "postgres" else args.db
    examples = args.examples or _defaults.EXAMPLES
    backend = get_backend(db)
    folder = Path(args.folder)
    wanted = args.k.split(",")
    checks = [c for c in discover(folder) if any(k in c[0] for k in wanted) and (not c[1].dialect or c[1].dialect == backend.dialect)]
    classes = bug_classes(folder)
    buggy = [c for c in checks if c[3]]
    correct = [c for c in checks if not c[3]]
    seeds = list(range(args.seeds))
    mode = "random search only" if args.random_only else "systematic pass + random search"
    firsts: list[int] = []
    misses = 0
    false_alarms = 0
    per_class: dict[str, list[dict[str, Any]]] = {}
    try:
        print(f"\n== {redact(db)}: {len(buggy)} buggy examples x {len(seeds)} seeds at {examples} scenarios ({mode}) ==")
        print(f"{'class':>5} {'example':50} {'caught':>6} {'phase':>13} {'1st failure (per seed)':>22} {'faults':>6} {'rows':>5} {'wall s':>7}")
        for name, spec, load, _ in buggy if seeds else []:
            runs = [run_check(spec, load, backend, examples=examples, seed=s, systematic=not args.random_only) for s in seeds]
            if name in LOAD_ERROR_EXPECTED:
                for r in runs:
                    if r["error"].startswith("LoadError"):
                        r.update(caught=True, phase="clean run", first=0, faults=0, rows=None, error="")
            cls = classes.get(name, "?")
            per_class.setdefault(cls, []).extend(runs)
            caught = [r for r in runs if r["caught"]]
            misses += len(runs) - len(caught)
            firsts.extend(r["first"] for r in caught)
            phase = "/".join(p[:10] for p in sorted({r["phase"] for r in caught})) or "-"
            per_seed = ",".join(str(r["first"]) if r["caught"] else "x" for r in runs)
            faults = _stat([r["faults"] for r in caught])
            rows = _stat([r["rows"] for r in caught])
            wall = statistics.mean(r["wall"] for r in runs)
            print(f"{cls:>5} {name[-50:]:50} {len(caught)}/{len(runs):<4} {phase:>13} {per_seed:>22} {faults:>6} {rows:>5} {wall:7.1f}")
            for r in runs:
                if r["error"]:
                    print(f"    {r['error']}")

        if per_class:
            print(f"\n== per bug class on {redact(db)} ({len(seeds)} seeds each; median/max over every seed of every example of the class) ==")
            print(f"{'class':>5} {'examples':>8} {'caught':>7} {'1st failure':>11} {'faults':>6} {'rows':>6} {'wall s':>11}")
            for cls in sorted(per_class, key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c)):
                runs = per_class[cls]
                caught = [r for r in runs if r["caught"]]
                walls = [r["wall"] for r in runs]
                print(
                    f"{cls:>5} {len(runs) // max(1, len(seeds)):>8} {len(caught):>3}/{len(runs):<3} {_stat([r['first'] for r in caught]):>11} "
                    f"{_stat([r['faults'] for r in caught]):>6} {_stat([r['rows'] for r in caught]):>6} {statistics.median(walls):5.1f}/{max(walls):<5.1f}"
                )

        if args.false_alarm_examples > 0 and correct:
            print(f"\n== false alarms: {len(correct)} correct examples at {args.false_alarm_examples} scenarios ==")
            print(f"{'example':56} {'result':>8} {'systematic':>10} {'generated':>9} {'wall s':>7}")
            for name, spec, load, _ in correct:
                r = run_check(spec, load, backend, examples=args.false_alarm_examples, seed=0, systematic=not args.random_only)
                alarm = r["caught"] or bool(r["error"])
                false_alarms += alarm
                result = "ALARM" if alarm else "pass"
                print(f"{name[-56:]:56} {result:>8} {r['systematic']:>10} {r['generated']:>9} {r['wall']:7.1f}")
                if r["error"]:
                    print(f"    {r['error']}")
    finally:
        backend.close()

    print("\n1st failure: scenarios played until the first failing one (the systematic pass's index, or the pass's size")
    print("plus the generated count; x = not caught); faults: perturbations in the reported schedule (crashes, duplicate /")
    print("backfill / catch-up runs, runs at once); rows: source row versions in it; a/b = median/max")
    if not firsts:
        print("goal: nothing was caught")
        return 1
    median = statistics.median(firsts)
    worst = max(firsts)
    met = misses == 0 and median <= GOAL_MEDIAN and worst <= GOAL_MAX and false_alarms == 0
    fa = f"{false_alarms} false alarms" if args.false_alarm_examples > 0 else "false alarms not measured"
    print(
        f"goal (median <= {GOAL_MEDIAN}, max <= {GOAL_MAX} scenarios to the first failure, every bug caught, 0 false alarms): "
        f"median {median:g}, max {worst}, {misses} missed, {fa} — {'MET' if met else 'NOT MET'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
