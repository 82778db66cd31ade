"""The public API on a PostgreSQL sandbox: a correct upsert passes, a bare INSERT is caught."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import idemtest
from idemtest import Source, Spec, Target, hourly

pytestmark = pytest.mark.postgres

SETUP = """
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, status VARCHAR, amount DECIMAL(12,2), updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT, status VARCHAR, amount DECIMAL(12,2), updated_at TIMESTAMP);
CREATE UNIQUE INDEX analytics_orders_pk ON analytics.orders (order_id);
"""

SPEC = Spec(
    setup=SETUP,
    sources=[Source("src.orders", columns={"order_id": "BIGINT", "status": "VARCHAR", "amount": "DECIMAL(12,2)", "updated_at": "TIMESTAMP"}, key="order_id", event_time="updated_at")],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=3),
    max_lateness="1h",
)


def good(run: Any) -> None:
    with run.conn.transaction():
        run.conn.execute(
            """INSERT INTO analytics.orders SELECT * FROM src.orders
               ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, amount = excluded.amount,
                 updated_at = excluded.updated_at
               WHERE excluded.updated_at > analytics.orders.updated_at"""
        )


BARE_SPEC = Spec(
    setup=SETUP.replace("CREATE UNIQUE INDEX analytics_orders_pk ON analytics.orders (order_id);", ""),
    sources=SPEC.sources,
    targets=SPEC.targets,
    schedule=SPEC.schedule,
    max_lateness="1h",
)


def bare_insert(run: Any) -> None:
    import psycopg2  # user code on its own connection, with the most common driver

    conn = psycopg2.connect(run.dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO analytics.orders SELECT * FROM src.orders WHERE updated_at >= %s AND updated_at < %s",
            (run.window.start, run.window.end),
        )
    conn.close()


def test_correct_upsert_passes(pg_dsn: str, tmp_path: Path) -> None:
    stats = idemtest.verify(SPEC, good, db=pg_dsn, examples=10, failures_dir=tmp_path, systematic_max=24)
    assert stats.scenarios >= 1


def test_bare_insert_is_caught(pg_dsn: str, tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(BARE_SPEC, bare_insert, db=pg_dsn, examples=10, failures_dir=tmp_path)
    assert info.value.prop in ("P1", "P2")
    assert info.value.saved and Path(info.value.saved).is_file()
