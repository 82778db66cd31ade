"""Issue 13's declarations on the real PostgreSQL server: keyless and snapshot
sources, a run delay, a target the load creates, key shapes, and the reference
oracle (P5)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import examples.postgres.test_buggy as buggy
import examples.postgres.test_correct as correct
import idemtest
from idemtest import Source, Spec, Target, daily, hourly, keys

pytestmark = pytest.mark.postgres

SYSTEMATIC_MAX = 24  # thinned evenly over every family; the examples/ checks run the full pass


@pytest.mark.parametrize("test", [correct.test_keyless_trips_window_replaced, correct.test_snapshot_rates_replaced], ids=lambda t: t.__name__)
def test_keyless_and_snapshot_examples_pass(test: Any, pg_dsn: str, tmp_path: Path) -> None:
    stats = idemtest.verify(test.idemtest.spec, test.idemtest.load, db=pg_dsn, examples=10, failures_dir=tmp_path, systematic_max=SYSTEMATIC_MAX)
    assert stats.scenarios >= 10 and stats.crashes > 0 and stats.failures == 0
    assert not any(tmp_path.iterdir())


def test_a_clean_run_double_load_is_caught_by_the_reference(pg_dsn: str, tmp_path: Path) -> None:
    test = buggy.test_lookback_append_double_loads
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(test.idemtest.spec, test.idemtest.load, db=pg_dsn, failures_dir=tmp_path)
    e = info.value
    assert e.prop == "P5" and "found by the clean run itself" in e.report
    (d,) = e.diffs
    assert d.target == "analytics.trips" and d.extra and not d.missing


DDL = """
CREATE SCHEMA src;
CREATE TABLE src.invoices (invoice_id BIGINT, customer VARCHAR, amount DECIMAL(10, 2), issued_at TIMESTAMP);
"""
INVOICES = Source(
    "src.invoices",
    {"invoice_id": "BIGINT", "customer": "VARCHAR", "amount": "DECIMAL(10,2)", "issued_at": "TIMESTAMP"},
    key="invoice_id",
    event_time="issued_at",
    values={"invoice_id": keys.autoincrement()},
    updates=False,
    max_rows=5,
)


def load_by_id_cursor(run: idemtest.RunContext) -> None:
    """An id cursor: right when ids grow with arrival (an upstream sequence)."""
    with run.conn.transaction():
        run.conn.execute("CREATE SCHEMA IF NOT EXISTS mart")
        run.conn.execute("CREATE TABLE IF NOT EXISTS mart.invoices (invoice_id BIGINT PRIMARY KEY, customer VARCHAR, amount DECIMAL(10, 2), issued_at TIMESTAMP)")
        run.conn.execute("LOCK TABLE mart.invoices IN SHARE ROW EXCLUSIVE MODE")
        run.conn.execute("INSERT INTO mart.invoices SELECT * FROM src.invoices WHERE invoice_id > (SELECT coalesce(max(invoice_id), 0) FROM mart.invoices)")


def test_an_id_cursor_passes_on_autoincrement_keys_in_a_table_it_creates(pg_dsn: str, tmp_path: Path) -> None:
    spec = Spec(
        sources=[INVOICES],
        targets=[Target("mart.invoices", key="invoice_id", expected="SELECT * FROM src.invoices")],
        schedule=daily("2026-06-01", 2, at="03:00"),
        max_lateness="2h",
        setup=DDL,
        dialect="postgres",
    )
    seen: list[datetime] = []

    def load(run: idemtest.RunContext) -> None:
        seen.append(run.now)
        load_by_id_cursor(run)

    stats = idemtest.verify(spec, load, db=pg_dsn, examples=10, failures_dir=tmp_path, systematic_max=SYSTEMATIC_MAX)
    assert stats.failures == 0 and stats.late_rows > 0
    assert datetime(2026, 6, 2, 3) in seen and datetime(2026, 6, 2) not in seen, "runs start at 03:00, after their day"


def test_keyless_append_is_caught_on_postgres(pg_dsn: str, tmp_path: Path) -> None:
    spec = Spec(
        sources=[Source("src.trips", {"vendor_id": "INTEGER", "pickup_at": "TIMESTAMP", "pu_location_id": "INTEGER", "fare_amount": "DECIMAL(10,2)"}, key=None, event_time="pickup_at", max_rows=4)],
        targets=[Target("analytics.trips")],
        schedule=hourly("2026-06-01", 2),
        setup=correct.SCHEMA,
        dialect="postgres",
        exercise={"duplicate"},
    )

    def append(run: idemtest.RunContext) -> None:
        with run.conn.transaction():
            run.conn.execute("INSERT INTO analytics.trips SELECT * FROM src.trips WHERE pickup_at >= %s AND pickup_at < %s", [run.window.start, run.window.end])

    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec, append, db=pg_dsn, failures_dir=tmp_path)
    assert info.value.prop == "P1"
    (d,) = info.value.diffs
    assert d.extra and not d.missing and d.keys == ()


FILES_DDL = "CREATE SCHEMA mart; CREATE TABLE mart.trips (vendor_id INTEGER, pickup_at TIMESTAMP, fare DECIMAL(10, 2));"
TRIP_FILES = Source(
    "tlc.trips",
    {"vendor_id": "INTEGER", "pickup_at": "TIMESTAMP", "fare": "DECIMAL(10,2)"},
    key=None,
    event_time="pickup_at",
    path="tlc/trips_{partition}.csv",
    max_rows=5,
)


def load_day_file_and_export(run: idemtest.RunContext) -> None:
    """The day's CSV into PostgreSQL (replaced in one transaction), then the day's
    rows exported as out/trips_<day>.csv, written aside and renamed."""
    import csv

    src = run.landing / "tlc" / f"trips_{run.partition}.csv"
    rows = list(csv.DictReader(src.open())) if src.exists() else []
    with run.conn.transaction():
        run.conn.execute("LOCK TABLE mart.trips IN SHARE ROW EXCLUSIVE MODE")
        run.conn.execute("DELETE FROM mart.trips WHERE pickup_at >= %s AND pickup_at < %s", [run.window.start, run.window.end])
        for r in rows:
            run.conn.execute("INSERT INTO mart.trips VALUES (%s, %s, %s)", [r["vendor_id"], r["pickup_at"], r["fare"]])
    out = run.landing / "out"
    out.mkdir(exist_ok=True)
    got = run.conn.execute(
        "SELECT pickup_at::date AS day, vendor_id, pickup_at, fare FROM mart.trips WHERE pickup_at >= %s AND pickup_at < %s ORDER BY 1, 2, 3, 4",
        [run.window.start, run.window.end],
    ).fetchall()
    tmp = out / f".trips_{run.partition}.csv"
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["day", "vendor_id", "pickup_at", "fare"])
        w.writerows(got)
    tmp.replace(out / f"trips_{run.partition}.csv")


def test_partition_files_in_and_a_file_target_out_on_postgres(pg_dsn: str, tmp_path: Path) -> None:
    spec = Spec(
        sources=[TRIP_FILES],
        targets=[
            Target("mart.trips"),
            Target("trip_exports", file="out/trips_{partition}.csv", atomic=True, partition_by="day"),
        ],
        schedule=daily("2026-06-01", 2, at="01:00"),
        setup=FILES_DDL,
        dialect="postgres",
        concurrency="none",
    )
    stats = idemtest.verify(spec, load_day_file_and_export, db=pg_dsn, examples=10, failures_dir=tmp_path, systematic_max=SYSTEMATIC_MAX)
    assert stats.failures == 0 and stats.crashes > 0

    def export_in_place(run: idemtest.RunContext) -> None:
        load_day_file_and_export(run)
        # a second writer rewrites the export in place, a row at a time, between two queries
        path = run.landing / "out" / f"trips_{run.partition}.csv"
        lines = path.read_text().splitlines()
        with path.open("w", buffering=1) as f:
            f.write(lines[0] + "\n")
            for line in lines[1:]:
                run.conn.execute("SELECT 1")
                f.write(line + "\n")

    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec, export_in_place, db=pg_dsn, failures_dir=tmp_path)
    assert info.value.prop == "P4" and "trip_exports" in info.value.report
