"""P3 and P4 caught on real DuckDB, and their correct counterparts passing."""

from __future__ import annotations

from pathlib import Path

import pytest

import idemtest
from idemtest import Source, Spec, Target, daily

DDL = """CREATE SCHEMA src; CREATE SCHEMA mart;
CREATE TABLE src.events(event_id BIGINT, amount DOUBLE, ts TIMESTAMP);
CREATE TABLE mart.daily(day DATE, event_id BIGINT, amount DOUBLE);"""


def spec(atomic: bool = True, **kw: object) -> Spec:
    return Spec(
        setup=DDL,
        sources=[Source("src.events", columns={"event_id": "BIGINT", "amount": "DOUBLE", "ts": "TIMESTAMP"}, key="event_id", event_time="ts", append_only=True, max_rows=6)],
        targets=[Target("mart.daily", key="event_id", atomic=atomic, partition_by="day")],
        schedule=daily("2026-06-01", 3),
        concurrency="none",
        **kw,  # type: ignore[arg-type]
    )


def split(run: idemtest.RunContext) -> None:
    """Delete the day, then insert it, each autocommitted: the classic gap."""
    run.conn.execute("DELETE FROM mart.daily WHERE day = ?", [run.window.start.date()])
    run.conn.execute(
        "INSERT INTO mart.daily SELECT CAST(ts AS DATE), event_id, amount FROM src.events WHERE ts >= ? AND ts < ?",
        [run.window.start, run.window.end],
    )


def atomic(run: idemtest.RunContext) -> None:
    run.conn.execute("BEGIN")
    split(run)
    run.conn.execute("COMMIT")


def test_p4_reader_sees_the_half_written_partition(tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as e:
        idemtest.verify(spec(exercise={"duplicate"}), split, examples=60, failures_dir=tmp_path)
    assert e.value.prop == "P4"
    assert "before statement 2 (execute: INSERT INTO mart.daily" in e.value.report
    (d,) = e.value.diffs
    assert d.missing  # rows there after the run that the reader did not see


def test_p3_crash_between_delete_and_insert(tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as e:
        idemtest.verify(spec(atomic=False, exercise={"crash", "duplicate"}), split, examples=100, failures_dir=tmp_path)
    assert e.value.prop == "P3"
    assert "CRASHED after statement 1 — execute: DELETE FROM mart.daily" in e.value.report
    (d,) = e.value.diffs
    assert d.missing and d.columns == ["day", "event_id", "amount"]


def test_transactional_delete_insert_passes_p3_and_p4(tmp_path: Path) -> None:
    stats = idemtest.verify(spec(), atomic, examples=100, failures_dir=tmp_path)
    assert stats.scenarios == 100 and stats.crashes > 0 and stats.duplicates > 0
