"""The one home of idemtest's defaults: every other module reads them from here."""

from __future__ import annotations

from pathlib import Path

VERSION = "0.1.0"

#: generated scenarios per check (`--idem-examples`, `idem_examples`)
EXAMPLES = 50
#: sandbox database (`--idem-db`, `idem_db`)
DB = "duckdb"
#: where failing scenarios are saved, relative to the pytest rootdir or the working directory
FAILURES_DIR = Path(".idemtest") / "failures"
#: seconds spent shrinking a failure before the smallest one so far is reported
SHRINK_SECONDS = 10.0
#: rows of each kind shown in a report's diff
ROW_LIMIT = 5

#: the schema and table behind `run.state` (watermarks), created in every sandbox
STATE_SCHEMA = "_idemtest"
STATE_TABLE = f"{STATE_SCHEMA}.state"
