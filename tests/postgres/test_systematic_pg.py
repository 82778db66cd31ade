"""The systematic single-fault pass on a PostgreSQL sandbox: a month replaced by
a DELETE and an INSERT committed separately is caught at the default number of
scenarios (one fault: a re-run that dies after its DELETE); the same load in
one transaction passes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import idemtest
from idemtest import Source, Spec, Target, windows

pytestmark = pytest.mark.postgres

SPEC = Spec(
    setup="""
    CREATE SCHEMA src; CREATE SCHEMA mart;
    CREATE TABLE src.sales(sale_id BIGINT, amount DECIMAL(10,2), sold_at TIMESTAMP);
    CREATE TABLE mart.sales(month DATE, sale_id BIGINT PRIMARY KEY, amount DECIMAL(10,2), sold_at TIMESTAMP);
    """,
    sources=[Source("src.sales", columns={"sale_id": "BIGINT", "amount": "DECIMAL(10,2)", "sold_at": "TIMESTAMP"}, key="sale_id", event_time="sold_at", append_only=True)],
    targets=[Target("mart.sales", key="sale_id")],
    schedule=windows([("2026-01-01", "2026-02-01"), ("2026-02-01", "2026-03-01"), ("2026-03-01", "2026-04-01")]),
    dialect="postgres",
    concurrency="none",
)

DELETE = "DELETE FROM mart.sales WHERE month = %s"
INSERT = "INSERT INTO mart.sales SELECT %s, sale_id, amount, sold_at FROM src.sales WHERE sold_at >= %s AND sold_at < %s"


def committed_separately(run: Any) -> None:
    month = run.window.start.date()
    run.conn.execute(DELETE, [month])
    run.conn.commit()
    run.conn.execute(INSERT, [month, run.window.start, run.window.end])
    run.conn.commit()


def one_transaction(run: Any) -> None:
    month = run.window.start.date()
    with run.conn.transaction():
        run.conn.execute(DELETE, [month])
        run.conn.execute(INSERT, [month, run.window.start, run.window.end])


def test_delete_and_insert_committed_separately_is_caught_by_the_systematic_pass(pg_dsn: str, tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(SPEC, committed_separately, db=pg_dsn, failures_dir=tmp_path)
    exc = info.value
    assert exc.prop == "P3", exc.report
    assert re.search(r"found by the systematic pass: single-fault scenario \d+ of \d+, a duplicate run of window \d+ crashes (after|before) statement \d+", exc.report), exc.report
    assert exc.diffs[0].missing
    with pytest.raises(idemtest.IdempotencyViolation) as again:
        idemtest.replay(exc.saved, SPEC, committed_separately, db=pg_dsn)
    assert [d.missing for d in again.value.diffs] == [d.missing for d in exc.diffs]


def test_the_same_load_in_one_transaction_passes(pg_dsn: str, tmp_path: Path) -> None:
    stats = idemtest.verify(SPEC, one_transaction, db=pg_dsn, failures_dir=tmp_path, systematic_max=30)
    assert stats.failures == 0 and stats.systematic > 0 and stats.generated >= 10
    assert stats.crash_points_hit > 0
