"""The one home of idemtest's defaults: every other module reads them from here."""

from __future__ import annotations

from pathlib import Path

VERSION = "0.1.0"

#: scenarios per check, systematic + generated (`--idem-examples`, `idem_examples`)
EXAMPLES = 50
#: the systematic single-fault pass (engine/systematic.py) plays at most this many
#: scenarios: a larger plan is thinned evenly, family by family
SYSTEMATIC_MAX = 400
#: ... and stops once it has spent this many times the cost of its clean run (a
#: single-fault scenario costs about one clean run), but never before SYSTEMATIC_MIN_SECONDS:
#: the cap is on what the load costs, so a slow load gets proportionally more time
SYSTEMATIC_CLEAN_RUNS = 600
SYSTEMATIC_MIN_SECONDS = 30.0
#: generated (random, multi-fault) scenarios after the systematic pass, even when
#: the pass alone used up `EXAMPLES`: random data is always tried
GENERATED_FLOOR = 10
#: sandbox database (`--idem-db`, `idem_db`)
DB = "duckdb"
#: where failing scenarios are saved, relative to the pytest rootdir or the working directory
FAILURES_DIR = Path(".idemtest") / "failures"
#: seconds spent shrinking a failure before the smallest one so far is reported: at most
#: half in Hypothesis's shrinker, the rest (at least half) in idemtest's own reduction,
#: which drops extra runs, crashes and source rows one at a time (engine/minimize.py)
SHRINK_SECONDS = 20.0
#: after its first failure the systematic pass goes on this long to find failures
#: of other properties or targets (one bug can hide another), each reported in one line
MORE_FINDINGS_SECONDS = 1.0
#: a check's own time budget (`--idem-max-seconds`); None: unbounded
MAX_SECONDS: float | None = None
#: rows of each kind shown in a report's diff
ROW_LIMIT = 5

#: the schema and table behind `run.state` (watermarks), created in every sandbox
STATE_SCHEMA = "_idemtest"
STATE_TABLE = f"{STATE_SCHEMA}.state"
