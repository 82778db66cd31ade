"""The Dagster adapter on a real PostgreSQL server: a ConfigurableResource holding a
connection string (examples/dagster/pipelines/orders_pg.py, given as an EnvVar that is
unset here) is pointed at the sandbox database; psycopg connects are intercepted, so
crashes land inside the asset's transaction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import idemtest

ROOT = Path(__file__).resolve().parents[2]
PG_DEFS = ROOT / "examples" / "dagster" / "pipelines" / "orders_pg.py"
IMMUTABLE = {"raw/orders": {"updates": False}}


def plan(select: str):
    from idemtest.adapters.dagster import definition_of

    if os.environ.get("IDEMTEST_REQUIRE_DAGSTER") != "1":
        pytest.importorskip("dagster", reason="needs idemtest[dagster]: pip install 'idemtest[dagster]'")
    definition = definition_of(idemtest.dagster.check(assets=str(PG_DEFS), select=[select], sources=IMMUTABLE))
    assert definition is not None
    return definition.plan("postgres")


def test_the_connection_string_resource_is_pointed_at_the_sandbox(pg_dsn, tmp_path):
    p = plan("analytics/daily_orders_pg_autocommit")
    assert p.spec.dialect == "postgres"
    assert p.resources["postgres"].kind == "postgres" and p.resources["postgres"].dsn_field == "conn_string"
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(p.spec, p.load, examples=2, db=pg_dsn, failures_dir=tmp_path, systematic_max=120, shrink_seconds=5)
    report = info.value.report
    assert "P3" in report and "CRASHED after statement" in report and "DELETE FROM analytics.daily_orders_pg_autocommit" in report
    assert p.counters.runs > 0


def test_the_transactional_asset_passes_on_postgres(pg_dsn):
    p = plan("analytics/daily_orders_pg")
    stats = idemtest.verify(p.spec, p.load, examples=2, db=pg_dsn, systematic_max=16, max_seconds=20)
    assert stats.crashes > 0 and stats.runs > 0
