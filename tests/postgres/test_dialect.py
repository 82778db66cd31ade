"""SQL written for DuckDB fails on PostgreSQL with a clear error that names the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

import idemtest
from idemtest import Source, Spec, Target, hourly

pytestmark = pytest.mark.postgres

DDL = """CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, amount DOUBLE PRECISION, updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT PRIMARY KEY, amount DOUBLE PRECISION, updated_at TIMESTAMP);"""


def spec(**kw: object) -> Spec:
    return Spec(
        setup=DDL,
        sources=[Source("src.orders", columns={"order_id": "BIGINT", "amount": "DOUBLE", "updated_at": "TIMESTAMP"}, key="order_id", event_time="updated_at", max_rows=4)],
        targets=[Target("analytics.orders", key="order_id")],
        schedule=hourly("2026-06-01", periods=2),
        **kw,  # type: ignore[arg-type]
    )


def duckdb_only(run: idemtest.RunContext) -> None:
    # INSERT OR REPLACE is DuckDB/SQLite syntax
    run.conn.execute("INSERT OR REPLACE INTO analytics.orders SELECT * FROM src.orders")
    run.conn.commit()


def test_duckdb_only_sql_on_postgres_is_a_clear_error(pg_dsn: str, tmp_path: Path) -> None:
    with pytest.raises(idemtest.LoadError) as e:
        idemtest.verify(spec(), duckdb_only, db=pg_dsn, examples=3, failures_dir=tmp_path)
    text = str(e.value)
    assert "fails even without faults" in text
    assert "SyntaxError" in text
    assert "declare Spec(dialect='duckdb')" in text


def test_dialect_mismatch_in_verify_names_the_sandbox(pg_dsn: str, tmp_path: Path) -> None:
    with pytest.raises(idemtest.SpecError, match="declares dialect='duckdb' but the sandbox is PostgreSQL .* at postgresql://postgres@"):
        idemtest.verify(spec(dialect="duckdb"), duckdb_only, db=pg_dsn, examples=3, failures_dir=tmp_path)
