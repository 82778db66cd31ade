"""File sources: rows land as files in run.landing, one file per arrival batch."""

from __future__ import annotations

from pathlib import Path

import pytest

import idemtest
from idemtest import Source, Spec, Target, hourly

DDL = "CREATE SCHEMA raw; CREATE TABLE raw.orders(order_id BIGINT, amount DECIMAL(10,2), updated_at TIMESTAMP);"


def spec(fmt: str) -> Spec:
    return Spec(
        setup=DDL,
        sources=[Source("orders", columns={"order_id": "BIGINT", "amount": "DECIMAL(10,2)", "updated_at": "TIMESTAMP"},
                        key="order_id", event_time="updated_at", landing=fmt, max_rows=6)],  # type: ignore[arg-type]
        targets=[Target("raw.orders", key="order_id")],
        schedule=hourly("2026-06-01", periods=3),
        max_lateness="30m",
        concurrency="none",
    )


def reader(run: idemtest.RunContext, fmt: str) -> str:
    assert run.landing is not None
    pattern = str(run.landing / "orders" / f"*.{fmt}")
    fn = {"csv": "read_csv", "jsonl": "read_json", "parquet": "read_parquet"}[fmt]
    return f"{fn}('{pattern}')"


def replace_latest(fmt: str):  # type: ignore[no-untyped-def]
    def load(run: idemtest.RunContext) -> None:
        """Correct: rebuild from every landed file, the latest version of each order wins."""
        if not any((run.landing / "orders").glob(f"*.{fmt}")):  # type: ignore[operator]
            return
        run.conn.execute("BEGIN")
        run.conn.execute("DELETE FROM raw.orders")
        run.conn.execute(
            f"INSERT INTO raw.orders SELECT order_id, amount, updated_at FROM {reader(run, fmt)} "
            "QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY updated_at DESC) = 1"
        )
        run.conn.execute("COMMIT")

    return load


def append_files(run: idemtest.RunContext) -> None:
    """Buggy: appends every file it finds on each run (no record of what was loaded)."""
    if any((run.landing / "orders").glob("*.csv")):  # type: ignore[operator]
        run.conn.execute(f"INSERT INTO raw.orders SELECT order_id, amount, updated_at FROM {reader(run, 'csv')}")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_rebuild_from_landed_files_passes(fmt: str, tmp_path: Path) -> None:
    stats = idemtest.verify(spec(fmt), replace_latest(fmt), examples=25, failures_dir=tmp_path, systematic_max=40)
    assert stats.scenarios == stats.systematic + stats.generated and stats.generated >= 10 and stats.late_rows > 0


def test_appending_every_landed_file_is_caught(tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as e:
        idemtest.verify(spec("csv"), append_files, examples=50, failures_dir=tmp_path)
    assert e.value.prop == "P2"
    assert e.value.diffs[0].duplicate_keys
