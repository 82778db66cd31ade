"""Example pipelines for idemtest: correct ones that pass, buggy ones that are caught.

`sources.py` declares every source table once; `duckdb/` and `postgres/` hold
the load functions (`pipelines/`) and their checks (`test_correct.py`,
`test_buggy.py`) for each backend.

    pytest --idempotency examples                       # DuckDB; the PostgreSQL checks skip
    pytest --idempotency --idem-db postgresql://... examples/postgres
"""
