"""The DuckDB examples: `pipelines/` (plain load functions), their checks in
`test_correct.py` / `test_buggy.py`, and the DDL every sandbox starts from.

    pytest --idempotency examples/duckdb
"""

from __future__ import annotations

from pathlib import Path

# absolute, so a spec finds it whatever the working directory
SCHEMA = Path(__file__).with_name("schema.sql")
