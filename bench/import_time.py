"""What loading the pytest plugin costs a pytest run that does not ask for checks.

    python bench/import_time.py [--runs 15]

Every pytest run with idemtest installed loads `idemtest.plugin` through its
pytest11 entry point. Each run is a fresh interpreter that imports pytest
first (pytest users pay that anyway), then the plugin; the figure is the
median of the plugin's own import time, and the heavy modules it pulled in
(there should be none: the engine, Hypothesis and the drivers load with a check).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = r"""
import json, sys, time
import pytest
t0 = time.perf_counter()
import idemtest.plugin
t1 = time.perf_counter()
heavy = [m for m in ("duckdb", "hypothesis", "pandas", "psycopg", "psycopg2", "sqlalchemy", "sqlglot", "faker",
                     "time_machine", "idemtest.engine.search", "idemtest.sandbox.duckdb") if m in sys.modules]
print(json.dumps({"ms": (t1 - t0) * 1000, "heavy": heavy, "idemtest_modules": sorted(m for m in sys.modules if m.startswith("idemtest"))}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--goal-ms", type=float, default=50.0)
    ns = ap.parse_args()
    samples, last = [], {}
    for _ in range(ns.runs):
        out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
        last = json.loads(out)
        samples.append(last["ms"])
    med = statistics.median(samples)
    print(f"import idemtest.plugin (after pytest): median {med:.1f} ms, min {min(samples):.1f} ms, max {max(samples):.1f} ms over {ns.runs} fresh interpreters (goal <= {ns.goal_ms:g} ms)")
    print(f"idemtest modules loaded: {', '.join(last['idemtest_modules'])}")
    print(f"heavy modules loaded: {', '.join(last['heavy']) or 'none'}")
    return 0 if med <= ns.goal_ms and not last["heavy"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
