"""What real pipelines declare (issue 13): keyless and snapshot sources, landing
files per partition or as one snapshot, file targets, a run delay, targets the
load creates, key shapes, and the reference oracle (P5) — on real DuckDB."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import idemtest
from idemtest import Source, Spec, Target, daily, hourly, keys, monthly
from idemtest.engine.diff import compare
from idemtest.engine.execute import clean_run
from idemtest.engine.generate import dataset_strategy
from idemtest.engine.model import Dataset, Version, nominal_plan
from idemtest.engine.systematic import enumerate_plan, systematic_dataset
from idemtest.sandbox.duckdb import DuckDBBackend
from idemtest.sandbox.landing import cleanup_landing, read_files, write_landing

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import examples.duckdb.test_buggy as buggy  # noqa: E402
import examples.duckdb.test_correct as correct  # noqa: E402

TRIPS = {"vendor_id": "INTEGER", "pickup_at": "TIMESTAMP", "fare": "DECIMAL(10,2)"}
DDL = (
    "CREATE SCHEMA src; CREATE SCHEMA analytics; CREATE TABLE src.trips(vendor_id INTEGER, pickup_at TIMESTAMP, fare DECIMAL(10,2));"
    "CREATE TABLE analytics.trips(vendor_id INTEGER, pickup_at TIMESTAMP, fare DECIMAL(10,2));"
)


def trips(**kw: Any) -> Source:
    args: dict[str, Any] = dict(table="src.trips", columns=TRIPS, key=None, event_time="pickup_at", max_rows=6)
    args.update(kw)
    return Source(**args)


def spec_of(*sources: Source, targets: Any = None, **kw: Any) -> Spec:
    return Spec(sources=list(sources), targets=targets or [Target("analytics.trips")], schedule=kw.pop("schedule", hourly("2026-06-01", periods=3)), setup=DDL, **kw)


@pytest.fixture
def sandbox():
    backend = DuckDBBackend()
    sb = backend.create()
    yield sb
    cleanup_landing(sb)
    backend.close()


# --- declarations ------------------------------------------------------------------------


def test_keyless_and_snapshot_sources_declare_without_invented_columns() -> None:
    assert trips().keys == ()
    snap = Source("src.rates", {"currency": "VARCHAR", "rate": "DOUBLE"}, key="currency", snapshot=True)
    assert snap.event_time is None and snap.keys == ("currency",)
    files = trips(path="tlc/trips_{partition}.parquet")
    assert files.landing == "parquet" and files.per_partition  # the suffix names the format
    assert not Source("crm.c", {"id": "BIGINT"}, key="id", snapshot=True, path="crm/c.jsonl").per_partition


@pytest.mark.parametrize(
    ("schedule", "delay", "first_run", "partition"),
    [
        (daily("2026-06-01", 2, at="02:00"), timedelta(hours=2), datetime(2026, 6, 2, 2), "2026-06-01"),
        (monthly("2026-01-15", 3, day=5), timedelta(days=4), datetime(2026, 2, 5), "2026-01"),
        (monthly("2026-11-01", 3, day=1, at="06:30"), timedelta(hours=6, minutes=30), datetime(2026, 12, 1, 6, 30), "2026-11"),
        (hourly("2026-06-01", 2, run_delay="10m"), timedelta(minutes=10), datetime(2026, 6, 1, 1, 10), "2026-06-01T00:00"),
    ],
)
def test_a_run_delay_moves_every_run(schedule: Any, delay: timedelta, first_run: datetime, partition: str) -> None:
    spec = spec_of(trips(), schedule=schedule)
    assert spec.run_delay == delay
    w0 = spec.all_windows[0]
    assert w0.partition == partition
    assert spec.run_time(w0) == first_run
    assert [s.at for s in nominal_plan(spec.all_windows, spec.run_delay)] == [w.end + delay for w in spec.all_windows]
    # the systematic pass runs each window at its run time too
    plan = enumerate_plan(spec, spec.all_windows, {w.index: 2 for w in spec.all_windows})
    for p in plan:
        for step in p.steps:
            for run in getattr(step, "runs", (step,)):
                assert run.at >= spec.run_time(spec.all_windows[run.window]), p.what


def test_monthly_windows_are_calendar_months_and_spec_run_delay_wins() -> None:
    sched = monthly("2026-11-20", 3)
    assert [(w.start, w.end) for w in sched.windows] == [
        (datetime(2026, 11, 1), datetime(2026, 12, 1)),
        (datetime(2026, 12, 1), datetime(2027, 1, 1)),
        (datetime(2027, 1, 1), datetime(2027, 2, 1)),
    ]
    spec = spec_of(trips(), schedule=sched, max_lateness="40d", run_delay="1d")
    assert spec.run_delay == timedelta(days=1)
    tail = spec.all_windows[3:]
    assert tail and all(w.partition in ("2027-02", "2027-03") for w in tail)  # tail windows are months too


# --- generated data ----------------------------------------------------------------------


def test_keyless_data_holds_identical_rows() -> None:
    spec = spec_of(trips())
    rows = [tuple(v.values.values()) for v in systematic_dataset(spec).sources["src.trips"]]
    assert len(rows) > len(set(rows)), "the systematic data set has an exact duplicate trip"
    dups: list[bool] = []

    @settings(database=None, max_examples=100, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(dataset_strategy(spec))
    def generated(d: Dataset) -> None:
        got = [tuple(v.values.values()) for v in d.sources["src.trips"]]
        dups.append(len(set(got)) < len(got))

    generated()
    assert any(dups), "the generator draws identical trips too"
    # a keyless row is never treated as a newer version of another: all of them stay visible
    data = Dataset({"src.trips": [Version({"vendor_id": 1, "pickup_at": datetime(2026, 6, 1), "fare": Decimal("1")}, datetime(2026, 6, 1))] * 2})
    assert len(data.visible(trips(), None)) == 2


def test_snapshot_data_replaces_the_whole_content() -> None:
    rates = Source("src.rates", {"currency": "VARCHAR", "rate": "DOUBLE"}, key="currency", snapshot=True)
    spec = Spec(sources=[rates], targets=[Target("analytics.rates")], schedule=daily("2026-06-01", 3))
    data = systematic_dataset(spec)
    landed = sorted({v.arrival for v in data.sources["src.rates"]})
    assert landed[0] == spec.schedule.start and len(landed) == 3
    first = {r["currency"] for r in data.visible(rates, landed[0])}
    second = {r["currency"] for r in data.visible(rates, landed[1])}
    assert first - second, "a key is dropped by a later snapshot"
    assert second - first, "a key is added by a later snapshot"
    assert data.visible(rates, landed[1] - timedelta(seconds=1)) == data.visible(rates, landed[0])

    @settings(database=None, max_examples=30, suppress_health_check=list(HealthCheck))
    @given(dataset_strategy(spec))
    def every_snapshot_is_unique_by_key(d: Dataset) -> None:
        versions = d.sources["src.rates"]
        assert versions[0].arrival == spec.schedule.start
        for at in {v.arrival for v in versions}:
            cur = [r["currency"] for r in d.visible(rates, at)]
            assert len(cur) == len(set(cur)) and cur

    every_snapshot_is_unique_by_key()


ORDER_LINE_COLS = {"order_id": "BIGINT", "line_no": "BIGINT", "qty": "INTEGER", "updated_at": "TIMESTAMP"}


@pytest.mark.parametrize(
    ("key", "columns", "shape", "check"),
    [
        (["order_id", "line_no"], ORDER_LINE_COLS, {"order_id": keys.concat_collisions(), "line_no": keys.concat_collisions()},
         lambda ks: {(1, 11), (11, 1)} <= set(ks)),
        ("code", {"code": "VARCHAR", "updated_at": "TIMESTAMP"}, {"code": keys.with_separators()},
         lambda ks: any("," in k[0] for k in ks) and any("|" in k[0] for k in ks)),
        ("code", {"code": "VARCHAR", "updated_at": "TIMESTAMP"}, {"code": keys.case_variants()},
         lambda ks: len({k[0].strip().lower() for k in ks}) < len(ks)),
        ("code", {"code": "VARCHAR", "updated_at": "TIMESTAMP"}, {"code": st.sampled_from(["x-1", "y-2", "z-3"])},
         lambda ks: {k[0] for k in ks} <= {"x-1", "y-2", "z-3"} and len(ks) >= 2),
    ],
)
def test_key_shapes_and_key_strategies_are_honoured(key: Any, columns: dict[str, str], shape: dict[str, Any], check: Any) -> None:
    src = Source("src.t", columns, key=key, event_time="updated_at", values=shape, updates=False)
    spec = Spec(sources=[src], targets=[Target("analytics.t")], schedule=hourly("2026-06-01", 3))
    ks = [tuple(v.values[k] for k in src.keys) for v in systematic_dataset(spec).sources["src.t"]]
    assert check(ks), ks

    @settings(database=None, max_examples=25, suppress_health_check=list(HealthCheck))
    @given(dataset_strategy(spec))
    def generated(d: Dataset) -> None:
        gen = [tuple(v.values[k] for k in src.keys) for v in d.sources["src.t"]]
        if isinstance(shape[src.keys[0]], keys.KeyShape):
            domain = {tuple(shape[k].value(n, i, columns[k]) for i, k in enumerate(src.keys)) for n in range(1, 100)}
            assert set(gen) <= domain
        else:
            assert {g[0] for g in gen} <= {"x-1", "y-2", "z-3"}

    generated()


def test_autoincrement_ids_grow_with_arrival() -> None:
    src = Source("src.o", {"id": "BIGINT", "updated_at": "TIMESTAMP"}, key="id", event_time="updated_at", values={"id": keys.autoincrement()})
    spec = Spec(sources=[src], targets=[Target("analytics.o")], schedule=hourly("2026-06-01", 3), max_lateness="2h")

    def first_seen(d: Dataset) -> list[int]:
        out: list[int] = []
        for v in d.sources["src.o"]:  # arrival order
            if v.values["id"] not in out:
                out.append(v.values["id"])
        return out

    data = systematic_dataset(spec)
    assert any(v.arrival > v.values["updated_at"] for v in data.sources["src.o"]), "some rows land late"
    assert first_seen(data) == list(range(1, len(first_seen(data)) + 1))

    @settings(database=None, max_examples=30, suppress_health_check=list(HealthCheck))
    @given(dataset_strategy(spec))
    def generated(d: Dataset) -> None:
        assert first_seen(d) == list(range(1, len(first_seen(d)) + 1))

    generated()


# --- landing files and file targets ------------------------------------------------------


def _read(path: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        reader = {".csv": "read_csv", ".parquet": "read_parquet", ".jsonl": "read_json_auto"}[path.suffix]
        return sorted(con.execute(f"SELECT vendor_id, fare FROM {reader}('{path}')").fetchall())
    finally:
        con.close()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_per_partition_files_are_named_from_the_window_and_rewritten_when_late_rows_land(sandbox: Any, fmt: str) -> None:
    src = trips(path=f"tlc/trips_{{partition}}.{fmt}")
    spec = spec_of(src, schedule=daily("2026-06-01", 2), max_lateness="1d")
    v = lambda n, day, late: Version({"vendor_id": n, "pickup_at": datetime(2026, 6, day, 12), "fare": Decimal(f"{n}.50")}, datetime(2026, 6, day, 12) + late)  # noqa: E731
    data = Dataset({"src.trips": [v(1, 1, timedelta(0)), v(2, 1, timedelta(0)), v(3, 1, timedelta(hours=20)), v(4, 2, timedelta(0))]})
    write_landing(sandbox, src, data, datetime(2026, 6, 2), spec.all_windows)
    folder = sandbox.landing / "tlc"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [f"trips_2026-06-01.{fmt}"]
    assert [(r[0], Decimal(str(r[1]))) for r in _read(folder / f"trips_2026-06-01.{fmt}")] == [(1, Decimal("1.5")), (2, Decimal("2.5"))]
    write_landing(sandbox, src, data, datetime(2026, 6, 3), spec.all_windows)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [f"trips_2026-06-01.{fmt}", f"trips_2026-06-02.{fmt}"]
    assert [r[0] for r in _read(folder / f"trips_2026-06-01.{fmt}")] == [1, 2, 3], "the late trip rewrote its day's file"


def test_a_snapshot_file_holds_the_current_state(sandbox: Any) -> None:
    src = Source("crm.c", {"id": "BIGINT", "city": "VARCHAR"}, key="id", snapshot=True, path="crm/c.csv")
    spec = Spec(sources=[src], targets=[Target("analytics.c")], schedule=daily("2026-06-01", 2))
    t0, t1 = datetime(2026, 6, 1), datetime(2026, 6, 2)
    data = Dataset({"crm.c": [Version({"id": 1, "city": "a"}, t0), Version({"id": 2, "city": "b"}, t0), Version({"id": 2, "city": "c"}, t1)]})
    write_landing(sandbox, src, data, t0, spec.all_windows)
    path = sandbox.landing / "crm" / "c.csv"
    assert list(csv.reader(path.open())) == [["id", "city"], ["1", "a"], ["2", "b"]]
    write_landing(sandbox, src, data, t1, spec.all_windows)
    assert list(csv.reader(path.open())) == [["id", "city"], ["2", "c"]], "the new export replaced the old one"


def test_file_targets_read_every_matching_file(sandbox: Any) -> None:
    target = Target("exports", file="out/part_{partition}.jsonl", key="id")
    assert read_files(sandbox, target) == ([], []), "no file yet: no columns, no rows"
    out = sandbox.landing / "out"
    out.mkdir()
    (out / "part_a.jsonl").write_text(json.dumps({"id": 1, "v": "x"}) + "\n")
    (out / "part_b.jsonl").write_text(json.dumps({"id": 2, "v": "y"}) + "\n" + json.dumps({"id": 3, "v": "z"}) + "\n")
    (out / "other.jsonl").write_text(json.dumps({"id": 9, "v": "no"}) + "\n")
    cols, rows = read_files(sandbox, target)
    assert cols == ["id", "v"] and sorted(rows) == [(1, "x"), (2, "y"), (3, "z")]
    # a header-only CSV (an empty partition) does not turn the other files' columns into text
    csvs = Target("c", file="out/*.csv")
    (out / "a.csv").write_text("id,amount\n1,2.5\n")
    (out / "b.csv").write_text("id,amount\n")
    assert read_files(sandbox, csvs) == (["id", "amount"], [(1, 2.5)])


def test_a_table_the_load_creates_reads_as_empty_until_it_exists() -> None:
    def load(run: idemtest.RunContext) -> None:
        run.conn.execute("CREATE TABLE IF NOT EXISTS analytics.made (vendor_id INTEGER, pickup_at TIMESTAMP, fare DECIMAL(10,2))")
        run.conn.execute("BEGIN")
        run.conn.execute("DELETE FROM analytics.made WHERE pickup_at >= ? AND pickup_at < ?", [run.window.start, run.window.end])
        run.conn.execute("INSERT INTO analytics.made SELECT * FROM src.trips WHERE pickup_at >= ? AND pickup_at < ?", [run.window.start, run.window.end])
        run.conn.execute("COMMIT")

    spec = spec_of(trips(), targets=[Target("analytics.made", expected="SELECT * FROM src.trips")], concurrency="none")
    stats = idemtest.verify(spec, load, examples=12, shrink_seconds=0, systematic_max=30)
    assert stats.scenarios >= 12
    assert compare("t", (), (["a"], [(1,)]), ([], [])).missing == [(1,)], "an absent table compares as empty"


def test_the_clean_run_starts_each_window_after_its_delay() -> None:
    seen: list[datetime] = []

    def load(run: idemtest.RunContext) -> None:
        seen.append(run.now)
        assert datetime.now() == run.now

    spec = spec_of(trips(), schedule=daily("2026-06-01", 2, at="02:00"))
    backend = DuckDBBackend()
    sb = backend.create()
    try:
        sb.prepare(spec)
        clean_run(spec, sb, load, systematic_dataset(spec))
    finally:
        backend.close()
    assert seen == [datetime(2026, 6, 2, 2), datetime(2026, 6, 3, 2)]


# --- the examples: caught with the right property and evidence ------------------------


def _caught(test: Any, tmp_path: Path) -> idemtest.IdempotencyViolation:
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(test.idemtest.spec, test.idemtest.load, failures_dir=tmp_path, shrink_seconds=1)
    return info.value


def test_keyless_append_is_caught_as_extra_rows(tmp_path: Path) -> None:
    exc = _caught(buggy.test_keyless_trips_appended, tmp_path)
    assert exc.prop == "P1"
    (d,) = exc.diffs
    assert d.extra and not d.missing and not d.keys, exc.report


def test_a_clean_run_double_load_is_reported_against_the_reference(tmp_path: Path) -> None:
    exc = _caught(buggy.test_lookback_append_double_loads, tmp_path)
    assert exc.prop == "P5"
    assert "found by the clean run itself" in exc.report and "extra (in the target, not in the reference)" in exc.report
    (d,) = exc.diffs
    assert d.extra and not d.missing, exc.report
    # the saved failure replays to the same finding, without saving another file
    saved = sorted(tmp_path.glob("*.json"))
    assert len(saved) == 1
    with pytest.raises(idemtest.IdempotencyViolation) as again:
        idemtest.replay(saved[0], buggy.test_lookback_append_double_loads.idemtest.spec, buggy.test_lookback_append_double_loads.idemtest.load)
    assert again.value.prop == "P5" and sorted(tmp_path.glob("*.json")) == saved


def test_a_concatenated_composite_key_loses_the_colliding_line(tmp_path: Path) -> None:
    exc = _caught(buggy.test_singer_concatenated_composite_key, tmp_path)
    assert exc.prop == "P5"
    (d,) = exc.diffs
    lost = {(r[d.columns.index("order_id")], r[d.columns.index("line_no")]) for r in d.missing}
    assert (1, 11) in lost or (11, 1) in lost, exc.report
    assert not d.extra


def test_a_monthly_job_reading_the_run_dates_file_misses_trips(tmp_path: Path) -> None:
    exc = _caught(buggy.test_monthly_file_named_from_run_date, tmp_path)
    assert exc.prop == "P1"
    assert "at 2026-02-05 00:00:00" in exc.report, "the January run starts on 5 February"
    (d,) = exc.diffs
    assert d.missing, exc.report


def test_a_snapshot_merged_by_key_keeps_a_deleted_customer(tmp_path: Path) -> None:
    exc = _caught(buggy.test_snapshot_export_upserted, tmp_path)
    assert exc.prop == "P1"
    assert "snapshot landed" in exc.report
    (d,) = exc.diffs
    assert d.extra and not d.missing, exc.report


def test_a_half_written_output_file_is_seen_by_a_reader(tmp_path: Path) -> None:
    exc = _caught(buggy.test_csv_export_streamed_in_place, tmp_path)
    assert exc.prop == "P4"
    assert "half-written" in exc.report and "trip_exports" in exc.report


@pytest.mark.parametrize(
    "test",
    [
        correct.test_keyless_trips_window_replaced,
        correct.test_monthly_parquet_file_run_on_the_5th,
        correct.test_snapshot_file_replaces_table,
        correct.test_csv_export_renamed_into_place,
        correct.test_singer_upsert_on_json_key,
    ],
    ids=lambda t: t.__name__,
)
def test_the_correct_pipelines_pass(test: Any, tmp_path: Path) -> None:
    # a thinned single-fault pass and a few generated scenarios: the full checks run in examples/
    stats = idemtest.verify(test.idemtest.spec, test.idemtest.load, examples=10, failures_dir=tmp_path, systematic_max=40)
    assert stats.scenarios >= 10 and stats.runs > stats.scenarios
