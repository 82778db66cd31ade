"""The cost of crash='kill' per attempt, beside crash='raise', measured in one run:

    python bench/crash_modes.py [--db duckdb --db postgresql://postgres@127.0.0.1/postgres] [--attempts 40] [--examples 3]

Two figures per sandbox:
- a trivial load (one INSERT in a transaction), attempts played one after the
  other through the engine: what one attempt costs in each mode, idemtest's own
  overhead (kill: fork, the child's connections, DuckDB's detach/attach of the
  file; raise: a worker thread);
- the correct example checks (examples/duckdb, examples/postgres) at a fixed
  seed and a fixed systematic cap, concurrent pairs left out in both modes
  (kill mode does not play them): wall time per attempt.

The modes alternate check by check, so a machine busy with something else
weighs on both alike. On DuckDB, raise mode uses the in-memory sandbox (the
default) and kill mode the file sandbox it needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, discover


def trivial(db: str, mode: str, attempts: int) -> float:
    """Median ms per attempt of a one-INSERT load."""
    from idemtest import Spec, Target, hourly
    from idemtest.engine.execute import Env
    from idemtest.engine.model import Dataset, RunStep
    from idemtest.sandbox import get_backend

    spec = Spec(sources=[], targets=[Target("t")], schedule=hourly("2026-01-01", 1), setup="CREATE TABLE t (id BIGINT)", crash=mode)  # type: ignore[arg-type]
    backend = get_backend("duckdb-file" if db == "duckdb" and mode == "kill" else db)
    param = "?" if backend.dialect == "duckdb" else "%s"

    def load(run: Any) -> None:
        run.conn.execute("BEGIN")
        run.conn.execute(f"INSERT INTO t VALUES ({param})", [run.attempt])
        run.conn.execute("COMMIT")

    at = datetime(2026, 1, 1, 1)
    sb = backend.create(spec)
    try:
        if sb.prepared_for is None:
            sb.prepare(spec)
        env = Env(spec, sb, Dataset({}), load)
        times = []
        for i in range(attempts):
            t0 = time.perf_counter()
            rec = env.execute(1, RunStep(0, at), i + 1, at, None)
            times.append(time.perf_counter() - t0)
            assert rec.outcome == "ok", rec.error
        return statistics.median(times) * 1000
    finally:
        sb.close()
        backend.close()


def check(spec: Any, load: Any, db: str, mode: str, examples: int, cap: int, backend: Any) -> tuple[float, int]:
    """Seconds and attempts of one check at a fixed seed, on the shared backend."""
    import idemtest
    from idemtest.engine.model import Stats
    from idemtest.engine.search import Checker, Config

    stats = Stats()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as failures:
        cfg = Config(examples=examples, db=db, failures_dir=Path(failures), stats=stats, backend=backend, database=None, shrink_seconds=0, systematic_max=cap, seed=1)
        checker = Checker(spec.with_crash(mode), load, cfg)
        try:
            checker.run()
        except idemtest.IdempotencyViolation:
            pass
        finally:
            checker.close()  # kill mode on DuckDB: its file backend
    return time.perf_counter() - t0, stats.runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", action="append", help="sandbox(es): duckdb (default) and/or postgresql://…")
    ap.add_argument("--attempts", type=int, default=40, help="attempts of the trivial load per mode (default 40)")
    ap.add_argument("--examples", type=int, default=3, help="generated scenarios per example check (default 3)")
    ap.add_argument("--cap", type=int, default=20, help="systematic scenarios per example check (default 20)")
    ap.add_argument("-k", default="", help="only example checks whose name contains this")
    args = ap.parse_args()
    from idemtest.sandbox import parse_db, redact

    for db in args.db or ["duckdb"]:
        choice = parse_db(db)
        print(f"== {redact(db)}")
        raise_ms, kill_ms = trivial(db, "raise", args.attempts), trivial(db, "kill", args.attempts)
        print(f"trivial load, median of {args.attempts} attempts: raise {raise_ms:.1f} ms, kill {kill_ms:.1f} ms per attempt; kill/raise = {kill_ms / raise_ms:.1f}x")
        folder = ROOT / "examples" / ("duckdb" if choice.dialect == "duckdb" else "postgres")
        totals = {"raise": [0.0, 0], "kill": [0.0, 0]}
        print(f"{'example check (correct ones)':<58} {'raise ms/attempt':>16} {'kill ms/attempt':>16} {'kill/raise':>10}")
        from idemtest.sandbox import get_backend

        backend = get_backend(choice)
        n = 0
        for name, spec, load, buggy in discover(folder):
            if buggy or args.k not in name or (spec.dialect not in (None, choice.dialect)):
                continue
            # concurrent pairs left out in both modes (kill mode does not play them)
            fair = dataclasses.replace(spec, exercise=spec.exercise - {"concurrent"}, concurrency="none")
            backend.create(fair).close()  # warm-up: a PostgreSQL template is built once, outside the timings
            row = {}
            n += 1
            for mode in ("raise", "kill") if n % 2 else ("kill", "raise"):  # alternate who goes first
                secs, runs = check(fair, load, db, mode, args.examples, args.cap, backend)
                totals[mode][0] += secs
                totals[mode][1] += runs
                row[mode] = secs / max(runs, 1) * 1000
            print(f"{name:<58} {row['raise']:>16.1f} {row['kill']:>16.1f} {row['kill'] / row['raise']:>9.1f}x")
        r = totals["raise"][0] / max(totals["raise"][1], 1) * 1000
        k = totals["kill"][0] / max(totals["kill"][1], 1) * 1000
        backend.close()
        if r:
            print(f"{'all (' + str(totals['raise'][1]) + ' / ' + str(totals['kill'][1]) + ' attempts)':<58} {r:>16.1f} {k:>16.1f} {k / r:>9.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
