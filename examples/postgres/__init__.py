"""PostgreSQL example pipelines for idemtest, run against a real server.

Each module is a load a data engineer would write (psycopg 3, psycopg2, or the
run's own connection) plus its `Spec(dialect="postgres", ...)`. Correct loads
pass under every perturbation, concurrency included; buggy ones are caught.

    pytest --idempotency --idem-db postgresql://postgres@127.0.0.1:5432/postgres examples/postgres

On the default DuckDB sandbox (`pytest --idempotency examples`) they are
skipped, with a reason naming the option to use.
"""
