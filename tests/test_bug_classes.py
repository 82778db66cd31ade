"""Every bug class of examples/duckdb/ is caught with the right property and evidence;
every correct example passes a long run; saved failures replay exactly.

These call `idemtest.verify` directly (no --idempotency needed), at the
default number of scenarios: each of these bugs is exposed by one fault, so
the systematic single-fault pass finds it on every run, whatever the seed
(bench/search_bench.py measures how soon).
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import idemtest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import examples.duckdb.test_buggy as buggy  # noqa: E402
from examples.duckdb.pipelines import customers, events, orders  # noqa: E402


def spec_and_load(test):
    return test.idemtest.spec, test.idemtest.load


_CAUGHT: dict[str, idemtest.IdempotencyViolation] = {}


def catch(test, tmp_path):
    """The violation idemtest finds for `test` at the default examples (searched
    once per session: the replay tests reuse the class tests' findings)."""
    name = test.__name__
    if name not in _CAUGHT:
        spec, load = spec_and_load(test)
        with pytest.raises(idemtest.IdempotencyViolation) as info:
            idemtest.verify(spec, load, failures_dir=tmp_path)
        _CAUGHT[name] = info.value
        assert "found by the systematic pass" in info.value.report, info.value.report
    exc = _CAUGHT[name]
    assert exc.saved and Path(exc.saved).is_file()
    return exc


def diff_of(exc, target):
    for d in exc.diffs:
        if d.target == target:
            return d
    raise AssertionError(f"no diff of {target} in:\n{exc.report}")


def crashed_line(exc):
    lines = [line for line in exc.report.splitlines() if "CRASHED" in line]
    assert lines, f"the catch needs a crash, but the report names none:\n{exc.report}"
    return lines


def col(d, row, name):
    return row[d.columns.index(name)]


# --- 1-9: sequential bug classes ------------------------------------------------------


@pytest.mark.parametrize("test", [buggy.test_append_under_retry, buggy.test_pandas_to_sql_append], ids=["sql", "pandas"])
def test_1_append_under_retry_duplicates_keys(test, tmp_path):
    exc = catch(test, tmp_path)
    assert exc.prop == "P2"
    d = diff_of(exc, "analytics.order_events")
    assert d.duplicate_keys and all(n >= 2 for _, n in d.duplicate_keys)
    # a re-run of a window that already committed: a duplicate run or a retry after the INSERT
    assert re.search(r"duplicate run|CRASHED after statement \d+ — execute: INSERT|CRASHED (after|before) statement \d+ — execute: (COMMIT|INSERT)", exc.report), exc.report


def test_2_delete_and_insert_committed_separately_leave_a_gap(tmp_path):
    exc = catch(buggy.test_delete_then_insert_autocommit, tmp_path)
    assert exc.prop == "P3"
    d = diff_of(exc, "analytics.order_events")
    assert d.missing, exc.report
    assert any(re.search(r"CRASHED (after statement \d+ — execute: DELETE FROM analytics.order_events|before statement \d+ — execute: INSERT INTO analytics.order_events)", line) for line in crashed_line(exc)), exc.report


def test_3_watermark_saved_before_the_load_loses_rows_after_a_crash(tmp_path):
    exc = catch(buggy.test_watermark_saved_before_load, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.orders")
    assert (d.missing or d.changed) and not d.extra and not d.duplicate_keys, exc.report
    if d.changed:  # a newer version never arrived: the target kept the old one
        assert "updated_at" in d.columns_differ
    # the crash fell between saving the watermark and the INSERT of the data
    assert any(re.search(r"CRASHED (after statement \d+ — execute: INSERT INTO _idemtest\.state|before statement \d+ — execute: INSERT INTO analytics\.orders)", line) for line in crashed_line(exc)), exc.report


def test_4_wall_clock_cutoff_misses_late_rows(tmp_path):
    exc = catch(buggy.test_wall_clock_cutoff, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.orders")
    assert (d.missing or d.changed) and not d.extra, exc.report
    lost = d.missing + [expected for expected, _ in d.changed]
    # the lost version was either late, or skipped by a delayed retry's shifted cutoff
    versions = exc.scenario.data.sources["src.orders"]
    late = {(v.values["order_id"], v.values["updated_at"]) for v in versions if v.arrival > v.values["updated_at"]}
    retried = "attempt 2" in exc.report
    assert retried or any((col(d, r, "order_id"), col(d, r, "updated_at")) in late for r in lost), exc.report


def test_5_strict_cursor_drops_rows_at_the_cursor_value(tmp_path):
    exc = catch(buggy.test_strict_cursor, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.customers")
    assert (d.missing or d.changed) and not d.extra, exc.report
    versions = exc.scenario.data.sources["src.customers"]
    for r in d.missing + [expected for expected, _ in d.changed]:
        key, day = col(d, r, "customer_id"), col(d, r, "updated_on")
        mine = next(v for v in versions if v.values["customer_id"] == key and v.values["updated_on"] == day)
        # it landed after its date began: by then the cursor could already sit on its value
        assert mine.arrival > datetime.combine(day, datetime.min.time())


def test_6_on_conflict_do_nothing_loses_updates(tmp_path):
    exc = catch(buggy.test_on_conflict_do_nothing, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.payments")
    assert d.changed and not d.missing and not d.extra, exc.report
    assert "updated_at" in d.columns_differ
    for expected, actual in d.changed:  # the target kept an older version
        assert col(d, actual, "updated_at") < col(d, expected, "updated_at")


def test_7_counter_accumulation_counts_a_window_twice(tmp_path):
    exc = catch(buggy.test_counter_accumulation, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.event_counts")
    assert d.changed and "events" in d.columns_differ and set(d.columns_differ) <= {"events", "revenue"}, exc.report
    for expected, actual in d.changed:
        assert col(d, actual, "events") > col(d, expected, "events")
    assert re.search(r"duplicate run|attempt 2|backfill run|catch-up run", exc.report)


def test_8_replace_table_clobbers_later_days_on_a_backfill(tmp_path):
    exc = catch(buggy.test_replace_table_clobbers_backfill, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.daily_totals")
    assert d.missing and not d.extra, exc.report
    # an earlier window ran after a later one
    assert re.search(r"duplicate run of window|backfill run of window|catch-up run of window", exc.report), exc.report


def test_9_partition_keyed_on_run_time_overwrites_another_hour(tmp_path):
    exc = catch(buggy.test_partition_keyed_on_run_time, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.hourly_revenue")
    assert d.changed or d.missing or d.extra, exc.report
    assert re.search(r"duplicate run of window|backfill run of window|catch-up run of window", exc.report), exc.report


# --- 14, 16-19: markers, lookbacks, merge keys, swallowed errors, the SQL clock ---------


def test_14_swallowed_exception_leaves_a_window_unloaded(tmp_path):
    exc = catch(buggy.test_swallowed_exception_leaves_a_gap, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.fct_order_events")
    assert d.missing and not d.extra and not d.changed, exc.report
    # the crash left staging.events_batch behind; the retry "succeeded" without loading
    assert any("CREATE TABLE staging.events_batch" in line for line in crashed_line(exc)), exc.report
    retry = [a for a in exc.attempts if a.attempt > 1]
    assert retry and all(a.outcome == "ok" for a in retry), exc.report


def test_16_completion_marker_before_data_skips_the_batch_on_retry(tmp_path):
    exc = catch(buggy.test_completion_marker_before_data, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.fct_order_events")
    assert d.missing and not d.extra, exc.report
    # the process died between the load-log row and the data
    assert any(re.search(r"CRASHED (after statement \d+ — execute: INSERT INTO etl\.load_log|before statement \d+ — execute: INSERT INTO analytics\.fct_order_events)", line) for line in crashed_line(exc)), exc.report


def test_17_lookback_shorter_than_lateness_never_loads_a_late_event(tmp_path):
    exc = catch(buggy.test_lookback_shorter_than_lateness, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.fct_order_events")
    assert d.missing and not d.extra, exc.report
    # every lost event landed later than the job's lookback after its own time
    versions = {v.values["event_id"]: v for v in exc.scenario.data.sources["src.events"]}
    for row in d.missing:
        v = versions[col(d, row, "event_id")]
        assert v.arrival - v.values["event_time"] > events.MICROBATCH_LOOKBACK, exc.report


def test_18_merge_on_the_version_key_inserts_updates_as_new_rows(tmp_path):
    exc = catch(buggy.test_merge_on_version_key, tmp_path)
    assert exc.prop == "P2"
    d = diff_of(exc, "analytics.orders_lake")
    assert d.duplicate_keys and all(n == 2 for _, n in d.duplicate_keys), exc.report
    assert "found by the systematic pass: single-fault scenario 1 of" in exc.report  # the nominal plan is enough


def test_19_sql_now_watermark_misses_late_rows_under_the_sql_clock(tmp_path):
    exc = catch(buggy.test_sql_now_watermark, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.orders")
    assert (d.missing or d.changed) and not d.extra, exc.report
    lost = d.missing + [expected for expected, _ in d.changed]
    versions = exc.scenario.data.sources["src.orders"]
    late = {(v.values["order_id"], v.values["updated_at"]) for v in versions if v.arrival > v.values["updated_at"]}
    assert any((col(d, r, "order_id"), col(d, r, "updated_at")) in late for r in lost), exc.report


def test_19_the_sql_now_twin_passes_and_the_buggy_sql_sees_the_run_time(tmp_path):
    """Without the SQL clock `now()` would be today's date: the buggy load would
    read nothing in every run (no failure at all). With it, the nominal run at
    the end of window 0 reads exactly the orders updated in its last hour."""
    import examples.duckdb.test_correct as correct

    twin = correct.test_sql_now_capped_event_time_watermark.idemtest
    stats = idemtest.verify(twin.spec, twin.load, failures_dir=tmp_path, systematic_max=40, examples=20)
    assert stats.failures == 0 and stats.crashes > 0

    seen = []

    def probe(run):
        (n,) = run.conn.execute("SELECT count(*) FROM src.orders WHERE updated_at > now() - INTERVAL 1 HOUR AND updated_at <= now()").fetchone()
        (m,) = run.conn.execute("SELECT count(*) FROM src.orders WHERE updated_at >= ? AND updated_at <= ?", [run.now - timedelta(hours=1), run.now]).fetchone()
        seen.append((n, m))
        orders.load_orders_sql_now(run.conn)

    with pytest.raises(idemtest.IdempotencyViolation):
        idemtest.verify(buggy.sql_now_spec, probe, failures_dir=tmp_path / "probe", examples=1, systematic_max=1)
    assert seen and any(n for n, _ in seen) and all(n <= m for n, m in seen)


# --- 10-12: concurrency-only bug classes ----------------------------------------------


def test_10_check_then_insert_duplicates_under_two_runs_at_once(tmp_path):
    exc = catch(buggy.test_check_then_insert, tmp_path)
    assert exc.prop == "P2"
    assert diff_of(exc, "analytics.order_events").duplicate_keys
    assert "at once:" in exc.report and "interleaving (statement by statement)" in exc.report


def test_11_read_modify_write_of_a_summary_row_loses_an_update(tmp_path):
    exc = catch(buggy.test_read_modify_write_summary, tmp_path)
    assert exc.prop == "P1"
    d = diff_of(exc, "analytics.revenue_summary")
    # the total (or the count of hours, when the lost hour's revenue is 0) is stale
    assert d.changed and set(d.columns_differ) <= {"total_revenue", "hours_loaded"}, exc.report
    assert not [x for x in exc.diffs if x.target == "analytics.hourly_revenue"], "the hours themselves are right"
    assert "at once:" in exc.report


def test_12_shared_staging_table_publishes_the_other_windows_rows(tmp_path):
    exc = catch(buggy.test_shared_staging_table, tmp_path)
    assert exc.prop in ("P1", "P2")
    d = diff_of(exc, "analytics.order_events")
    assert d.duplicate_keys or d.missing, exc.report
    assert "at once:" in exc.report and "staging.order_events" in exc.report


# --- the correct examples pass a long run ----------------------------------------------


# correct examples pass (no false alarm): tests/test_systematic.py, at the default examples


# --- saved failures replay exactly -------------------------------------------------------


def _signature(exc):
    return exc.prop, [(d.target, d.missing, d.extra, d.changed, d.duplicate_keys) for d in exc.diffs]


def test_replay_reproduces_the_failure_and_passes_once_fixed(tmp_path):
    spec, load = spec_and_load(buggy.test_strict_cursor)
    first = catch(buggy.test_strict_cursor, tmp_path)
    with pytest.raises(idemtest.IdempotencyViolation) as again:
        idemtest.replay(first.saved, spec, load)
    assert _signature(again.value) == _signature(first)
    assert again.value.saved == first.saved

    def fixed(run):
        customers.load_customers_since_cursor(run.conn, run.state, inclusive=True)

    idemtest.replay(first.saved, spec, fixed)  # the same scenario, clean


def test_replay_of_a_crash_names_the_same_statement(tmp_path):
    spec, load = spec_and_load(buggy.test_delete_then_insert_autocommit)
    first = catch(buggy.test_delete_then_insert_autocommit, tmp_path)
    with pytest.raises(idemtest.IdempotencyViolation) as again:
        idemtest.verify(spec, load, replay=first.saved, failures_dir=tmp_path)
    assert _signature(again.value) == _signature(first)
    assert crashed_line(again.value) == crashed_line(first)

    def fixed(run):  # the transactional version of the same delete + insert
        con = run.conn
        con.execute("BEGIN TRANSACTION")
        events.replace_event_partition_autocommit(con, run.window.start, run.window.end, lookback=spec.max_lateness)
        con.execute("COMMIT")

    idemtest.verify(spec, fixed, replay=first.saved, failures_dir=tmp_path)
