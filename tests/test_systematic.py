"""The systematic single-fault pass: its fixed data set, its enumeration of
scenarios, and what it buys: every buggy example caught at the default
number of scenarios (most inside the pass), the correct ones passing, a
failure that replays from its file, and a warning when nothing is loaded."""

from __future__ import annotations

import importlib.util
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

import idemtest
from idemtest import Source, Spec, Target, daily, hourly, windows
from idemtest.engine.model import Boundary, Fault, ParallelStep, RunStep, Scenario, step_from_json
from idemtest.engine.systematic import (
    FAMILIES,
    Planned,
    enumerate_plan,
    pause_points,
    systematic_dataset,
    thin,
)

ROOT = Path(__file__).resolve().parents[1]


def _discover() -> list[tuple[str, Any, Any, bool]]:
    """The examples' checks, found the way bench/run.py finds them (the files may move)."""
    spec = importlib.util.spec_from_file_location("_bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    found = mod.discover(ROOT / "examples")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return [c for c in found if c[1].dialect in (None, "duckdb")]


EXAMPLES = _discover()
BUGGY = [c for c in EXAMPLES if c[3]]
CORRECT = [c for c in EXAMPLES if not c[3]]


# --- the data set ------------------------------------------------------------------------

ORDERS = Source(
    "src.orders",
    columns={"order_id": "BIGINT", "status": "VARCHAR", "amount": "DECIMAL(12,2)", "updated_at": "TIMESTAMP"},
    key="order_id",
    event_time="updated_at",
)


def orders_spec(**kw: Any) -> Spec:
    args: dict[str, Any] = dict(sources=[ORDERS], targets=[Target("analytics.orders", key="order_id")], schedule=hourly("2026-06-01", 3), max_lateness="1h")
    args.update(kw)
    return Spec(**args)


def rows(spec: Spec, table: str) -> list[tuple[Any, ...]]:
    """(key, event, arrival - event) of every version, in arrival order."""
    s = next(x for x in spec.sources if x.table == table)
    return [(tuple(v.values[k] for k in s.keys), v.event(s), v.arrival - v.event(s)) for v in systematic_dataset(spec).sources[table]]


def test_every_window_gets_its_edge_rows_and_late_rows() -> None:
    spec = orders_spec()
    got = rows(spec, "src.orders")
    events = [(e, late) for _, e, late in got]
    hour = timedelta(hours=1)
    for w in spec.schedule.windows:
        assert (w.start, timedelta(0)) in events, f"on time at the start of {w}"
        assert (w.end - timedelta(seconds=1), timedelta(0)) in events, f"on time at end-1s of {w}"
        # the event time of an on-time row, landing exactly max_lateness late (strict `>` cursors)
        assert (w.start, hour) in events
        # a row inside the window landing max_lateness late (wall-clock cutoffs)
        assert any(w.start < e < w.end - timedelta(seconds=1) and late == hour for e, late in events)
    assert not [w for w in spec.all_windows if w.extra and any(w.start <= e < w.end for e, _ in events)], "no row in a tail window"


def test_a_key_gets_a_newer_version_in_a_later_window() -> None:
    spec = orders_spec()
    by_key: dict[Any, list[datetime]] = {}
    for key, event, _ in rows(spec, "src.orders"):
        by_key.setdefault(key, []).append(event)
    updated = {k: e for k, e in by_key.items() if len(e) > 1}
    assert len(updated) == len(spec.schedule.windows) - 1
    index = {w.index: w for w in spec.schedule.windows}
    for events in updated.values():
        first = next(w for w in index.values() if w.start <= events[0] < w.end)
        assert events[1] >= first.end, "the newer version lands in a later window"
    # the newer version changes a value too, not only its time
    versions = systematic_dataset(spec).sources["src.orders"]
    for key in updated:
        a, b = [v.values for v in versions if v.values["order_id"] == key[0]]
        assert (a["status"], a["amount"]) != (b["status"], b["amount"])


def test_versions_arrive_in_order_and_never_after_the_last_run() -> None:
    for spec in (orders_spec(), orders_spec(max_lateness="3h"), orders_spec(schedule=daily("2026-06-01", 2), max_lateness="6h")):
        last_run = spec.all_windows[-1].end
        seen: dict[Any, tuple[datetime, datetime]] = {}
        for v in systematic_dataset(spec).sources["src.orders"]:
            assert v.event(ORDERS) < spec.schedule.end and v.arrival <= last_run
            prev = seen.get(v.values["order_id"])
            if prev is not None:
                assert v.event(ORDERS) > prev[0] and v.arrival >= prev[1]
            seen[v.values["order_id"]] = (v.event(ORDERS), v.arrival)


def test_no_late_rows_without_max_lateness() -> None:
    assert all(late == timedelta(0) for _, _, late in rows(orders_spec(max_lateness=0), "src.orders"))


def test_two_builds_are_equal() -> None:
    payments = Source(
        "src.payments",
        columns={"payment_id": "VARCHAR", "order_id": "BIGINT", "status": "VARCHAR", "amount": "DECIMAL(12,2)", "updated_at": "TIMESTAMP"},
        key="payment_id",
        event_time="updated_at",
        values={"status": st.sampled_from(["authorised", "captured"]), "order_id": st.integers(1, 20)},
    )
    spec = orders_spec(sources=[ORDERS, payments])
    first = Scenario(systematic_dataset(spec)).to_json()
    assert Scenario(systematic_dataset(spec)).to_json() == first
    # a fresh strategy object (no cache) gives the same values too
    fresh = Spec(
        sources=[ORDERS, Source(payments.table, payments.columns, key="payment_id", event_time="updated_at",
                                values={"status": st.sampled_from(["authorised", "captured"]), "order_id": st.integers(1, 20)})],
        targets=spec.targets, schedule=spec.schedule, max_lateness="1h",
    )
    assert Scenario(systematic_dataset(fresh)).to_json() == first
    pays = systematic_dataset(spec).sources["src.payments"]
    # key shapes as the generator's; user strategies give distinct values, then repeat
    assert all(re.fullmatch(r"PAY-\d{4}", v.values["payment_id"]) for v in pays)
    firsts: dict[str, int] = {}
    for v in pays:
        firsts.setdefault(v.values["payment_id"], v.values["order_id"])
    order_ids = list(firsts.values())
    assert len(set(order_ids)) == len(order_ids) and set(order_ids) <= set(range(1, 21))
    assert {v.values["status"] for v in pays} == {"authorised", "captured"}


def test_date_event_time_rows_are_whole_days() -> None:
    customers = Source("src.customers", columns={"customer_id": "BIGINT", "city": "VARCHAR", "updated_on": "DATE"}, key="customer_id", event_time="updated_on")
    spec = Spec(sources=[customers], targets=[Target("a.c", key="customer_id")], schedule=daily("2026-06-01", 3), max_lateness="6h")
    versions = systematic_dataset(spec).sources["src.customers"]
    assert all(type(v.values["updated_on"]).__name__ == "date" for v in versions)
    arrivals = {(v.values["updated_on"], v.arrival - v.event(customers)) for v in versions}
    for w in spec.schedule.windows:
        day = w.start.date()
        assert (day, timedelta(0)) in arrivals and (day, timedelta(hours=6)) in arrivals
    # one row of each shape: a DATE folds the start, end-1s and mid-window rows of a day together
    assert len(versions) <= 3 * len(spec.schedule.windows)


def test_append_only_sources_get_unique_keys() -> None:
    events = Source("src.events", columns={"event_id": "BIGINT", "kind": "VARCHAR", "at": "TIMESTAMP"}, key="event_id", event_time="at", append_only=True)
    spec = orders_spec(sources=[events])
    keys = [v.values["event_id"] for v in systematic_dataset(spec).sources["src.events"]]
    assert len(keys) == len(set(keys)) >= 4 * len(spec.schedule.windows)


# --- the enumeration -----------------------------------------------------------------------

SMALL = dict(sources=[ORDERS], targets=[Target("analytics.orders", key="order_id")], schedule=hourly("2026-06-01", 2))


def counts(plan: list[Planned]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in plan:
        out[p.family] = out.get(p.family, 0) + 1
    return out


def test_counts_per_family() -> None:
    spec = Spec(**SMALL)  # type: ignore[arg-type]
    plan = enumerate_plan(spec, spec.all_windows, {0: 2, 1: 3}, {0: 1, 1: 3})
    assert counts(plan) == {
        "nominal": 1,
        "duplicate": 2,  # one per window
        "backfill": 1,  # every window but the last, after the last
        "out_of_order": 1,  # each adjacent pair swapped
        "crash": 2 * (2 + 3),  # before and after each statement of each window
        "rerun_crash": 2 * (1 + 3),  # ... of each duplicate run
        "concurrent": 3 + (2 - 1) + (3 - 1),  # A first, B first, alternating; one preemption of each run
    }
    assert [p.family for p in plan] == sorted((p.family for p in plan), key=FAMILIES.index), "families run in order"


def test_the_scenarios_are_what_they_say() -> None:
    spec = Spec(**SMALL)  # type: ignore[arg-type]
    w0, w1 = spec.all_windows
    plan = enumerate_plan(spec, spec.all_windows, {0: 2, 1: 1})
    by = {p.what: p for p in plan}
    assert list(by["the nominal plan, no fault"].steps) == [RunStep(0, w0.end), RunStep(1, w1.end)]
    assert by["a duplicate run of window 0 right after its run"].steps[1] == RunStep(0, w0.end, (), "duplicate")
    assert by["a backfill of window 0 after the last window"].steps[-1] == RunStep(0, w1.end, (), "backfill")
    assert list(by["windows 1 and 0 run out of order"].steps) == [RunStep(1, w1.end, (), "catch-up"), RunStep(0, w1.end, (), "catch-up")]
    crash = by["window 0 crashes after statement 2, then is retried"]
    assert crash.steps[crash.fault_step - 1] == RunStep(0, w0.end, (Fault(2, "after"),))
    rerun = by["a duplicate run of window 1 crashes before statement 1, then is retried"]
    assert rerun.steps[rerun.fault_step - 1] == RunStep(1, w1.end, (Fault(1, "before"),), "duplicate")
    alternating = by["windows 0 and 1 at once, statements strictly alternating"].steps[0]
    assert isinstance(alternating, ParallelStep) and alternating.choices[:4] == (0, 1, 0, 1)
    assert by["windows 0 and 1 at once, window 0's statements first"].steps[0].choices == ()  # type: ignore[union-attr]
    paused = by["windows 0 and 1 at once, window 0 paused after 1 statement(s) while window 1 runs"].steps[0]
    assert paused.choices[:3] == (0, 1, 1)  # type: ignore[union-attr]
    for p in plan:  # plain model steps: they save and replay as JSON like any other
        assert [step_from_json(s.to_json()) for s in p.steps] == list(p.steps)


def test_exercise_and_concurrency_are_respected() -> None:
    b = {0: 2, 1: 3}
    only_crash = Spec(**SMALL, exercise={"crash"})  # type: ignore[arg-type]
    assert counts(enumerate_plan(only_crash, only_crash.all_windows, b)) == {"nominal": 1, "crash": 10}
    no_crash = Spec(**SMALL, exercise={"duplicate", "backfill"})  # type: ignore[arg-type]
    assert counts(enumerate_plan(no_crash, no_crash.all_windows, b)) == {"nominal": 1, "duplicate": 2, "backfill": 1}
    serial = Spec(**SMALL, concurrency="none")  # type: ignore[arg-type]
    assert "concurrent" not in counts(enumerate_plan(serial, serial.all_windows, b))
    same = Spec(**SMALL, exercise={"concurrent"}, concurrency="same-partition")  # type: ignore[arg-type]
    plan = enumerate_plan(same, same.all_windows, b)
    # pairs (0,0), (1,1), (0,1): 3 fixed interleavings each, then one preemption per statement but the last
    assert counts(plan) == {"nominal": 1, "concurrent": 9 + (1 + 1) + (2 + 2) + (1 + 2)}
    twins = [p.steps[0] for p in plan if isinstance(p.steps[0], ParallelStep) and p.steps[0].runs[0].window == p.steps[0].runs[1].window == 0]
    assert twins and all(t.runs[1].tag == "duplicate" for t in twins)  # type: ignore[union-attr]


def test_runs_are_paused_after_reads_that_a_later_write_may_act_on() -> None:
    trace = [
        Boundary(1, "cursor"),
        Boundary(2, "execute", "SELECT total FROM mart.summary"),
        Boundary(3, "execute", "  (select count(*) from src.events)"),
        Boundary(4, "execute", "BEGIN TRANSACTION"),
        Boundary(5, "execute", "WITH x AS (SELECT 1) INSERT INTO mart.h SELECT * FROM x"),
        Boundary(6, "execute", "UPDATE mart.summary SET total = 3"),
        Boundary(7, "commit"),
        Boundary(8, "execute", "SELECT count(*) FROM mart.h"),  # nothing is written after it
    ]
    assert pause_points(trace) == [2, 3]
    spec = Spec(**SMALL, exercise={"concurrent"})  # type: ignore[arg-type]
    plan = enumerate_plan(spec, spec.all_windows, {0: 8, 1: 8}, pauses={0: [2, 3], 1: []})
    assert counts(plan) == {"nominal": 1, "concurrent": 3 + 2}


def test_a_large_plan_is_thinned_evenly() -> None:
    spec = Spec(**{**SMALL, "schedule": hourly("2026-06-01", 30)})  # type: ignore[arg-type]
    full = enumerate_plan(spec, spec.all_windows, dict.fromkeys(range(30), 8))
    assert len(full) > 1000
    plan = thin(full, 400)
    assert len(plan) <= 400 + len(FAMILIES)
    assert counts(plan)["duplicate"] == 30 and counts(plan)["nominal"] == 1
    assert set(counts(plan)) == set(counts(full)), "every family keeps a share"
    crashes = [p for p in plan if p.family == "crash"]
    windows_hit = {p.steps[p.fault_step - 1].window for p in crashes}  # type: ignore[union-attr]
    assert len(windows_hit) == 30, "spread over every window, not the first few"


# --- what the pass finds --------------------------------------------------------------------


@pytest.mark.parametrize("example", BUGGY, ids=[c[0] for c in BUGGY])
def test_every_buggy_example_is_caught_at_the_default_examples(example: Any, tmp_path: Path) -> None:
    name, spec, load, _ = example
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec, load, failures_dir=tmp_path)  # examples: the default, 50
    if info.value.prop == "P5" and "found by the clean run itself" in info.value.report:
        return  # wrong without any fault: the reference oracle catches it before the pass starts
    m = re.search(r"found by the systematic pass: single-fault scenario (\d+) of (\d+)", info.value.report)
    assert m, info.value.report
    assert int(m.group(1)) <= 25, f"{name} needed {m.group(1)} single-fault scenarios"
    assert "shrunk over" not in info.value.report  # a single fault is already minimal


@pytest.mark.parametrize("example", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_examples_pass_under_every_family_of_faults(example: Any, tmp_path: Path) -> None:
    # the whole single-fault pass at the defaults is README command 1 (`pytest --idempotency
    # examples`, run by CI): here a thinned pass, every family still played, keeps the suite short
    _, spec, load, _ = example
    stats = idemtest.verify(spec, load, failures_dir=tmp_path, systematic_max=40)
    assert stats.failures == 0 and not list(tmp_path.iterdir())
    assert stats.systematic > 0 and stats.generated >= 10
    assert stats.scenarios == stats.systematic + stats.generated >= 50
    assert stats.crash_points > 0 and stats.crash_points_hit == stats.crash_points_retried > 0
    assert stats.windows_duplicated > 0 and stats.windows_backfilled > 0 and stats.windows_out_of_order > 0
    assert stats.duplicates > 0 and stats.backfills > 0
    if spec.max_lateness:  # a spec without lateness has no late rows to generate
        assert stats.late_rows > 0
    (line,) = stats.coverage
    assert "single-fault scenarios" in line and "crash points" in line


MONTHS = windows([("2026-01-01", "2026-02-01"), ("2026-02-01", "2026-03-01"), ("2026-03-01", "2026-04-01")])
SALES = Source(
    "src.sales",
    columns={"sale_id": "BIGINT", "amount": "DECIMAL(10,2)", "sold_at": "TIMESTAMP"},
    key="sale_id",
    event_time="sold_at",
    append_only=True,
)
MONTHLY = Spec(
    setup="""
    CREATE SCHEMA src; CREATE SCHEMA mart;
    CREATE TABLE src.sales(sale_id BIGINT, amount DECIMAL(10,2), sold_at TIMESTAMP);
    CREATE TABLE mart.sales(month DATE, sale_id BIGINT, amount DECIMAL(10,2), sold_at TIMESTAMP);
    """,
    sources=[SALES],
    targets=[Target("mart.sales", key="sale_id")],
    schedule=MONTHS,
    concurrency="none",
)


def monthly_partition_autocommit(run: idemtest.RunContext) -> None:
    """A partitioned asset, as an orchestrator runs it: replace the month. The
    DELETE and the INSERT each autocommit, so a run that dies between them
    leaves the month empty until it is retried."""
    month = run.window.start.date()
    run.conn.execute("DELETE FROM mart.sales WHERE month = ?", [month])
    run.conn.execute(
        "INSERT INTO mart.sales SELECT ?, sale_id, amount, sold_at FROM src.sales WHERE sold_at >= ? AND sold_at < ?",
        [month, run.window.start, run.window.end],
    )


def test_delete_month_then_insert_in_two_autocommits_is_caught_at_defaults(tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(MONTHLY, monthly_partition_autocommit, failures_dir=tmp_path)
    exc = info.value
    assert exc.prop == "P3", exc.report
    assert "found by the systematic pass" in exc.report
    # the month's rows were committed by its first run; a re-run died after its DELETE
    assert re.search(r"duplicate run of window \d+ crashes after statement 1", exc.report), exc.report
    assert re.search(r"CRASHED after statement 1 — execute: DELETE FROM mart\.sales", exc.report), exc.report
    assert exc.diffs[0].missing


def test_a_systematic_failure_replays_from_its_file_with_the_same_report(tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as first:
        idemtest.verify(MONTHLY, monthly_partition_autocommit, failures_dir=tmp_path)
    found = re.search(r"; found by the systematic pass: [^\n]*\):", first.value.report)
    assert found and first.value.saved
    with pytest.raises(idemtest.IdempotencyViolation) as again:
        idemtest.replay(first.value.saved, MONTHLY, monthly_partition_autocommit)
    # the same report, but for the line that says how it was found
    assert again.value.report == first.value.report.replace(found.group(0), "):")
    assert again.value.saved == first.value.saved

    def fixed(run: idemtest.RunContext) -> None:
        run.conn.execute("BEGIN TRANSACTION")
        monthly_partition_autocommit(run)
        run.conn.execute("COMMIT")

    idemtest.replay(first.value.saved, MONTHLY, fixed)
    idemtest.verify(MONTHLY, fixed, failures_dir=tmp_path)


def test_a_load_that_writes_nothing_gets_a_warning(tmp_path: Path) -> None:
    def swallowing(run: idemtest.RunContext) -> None:
        try:
            run.conn.execute("INSERT INTO mart.sales SELECT * FROM src.sale")  # a typo, swallowed
        except Exception:
            pass

    with pytest.warns(idemtest.IdemtestWarning, match=r"every target \(mart\.sales\) is empty after a clean run"):
        idemtest.verify(MONTHLY, swallowing, failures_dir=tmp_path, examples=10)
