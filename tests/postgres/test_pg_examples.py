"""The PostgreSQL examples (examples/postgres/) on the real server, through `idemtest.verify`.

Correct loads pass under every perturbation (concurrency included) and really
inject crashes; each buggy load is caught with the property and the row diff
that its bug produces; a saved failure replays on PostgreSQL.

Cost: every generated example needs two PostgreSQL sandboxes, and shrinking a
failure runs a clean run for every data candidate the shrinker tries, so the
buggy checks run on small data (`small()`): two rows are all any of these
bugs needs. Some also narrow `exercise` to the perturbation that finds
their bug, so the search is short and the test does not depend on luck; the
examples' own checks (examples/postgres/test_correct.py, test_buggy.py) keep
everything on. Specs and loads come from those checks (`test.idemtest`).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

import examples.postgres.test_buggy as buggy
import examples.postgres.test_correct as correct
import idemtest
from examples.postgres.pipelines import employees_airflow
from idemtest import Spec

pytestmark = pytest.mark.postgres

EXAMPLES = 20
# the correct loads' single-fault pass, thinned evenly over its families (see test_correct_example_passes)
SYSTEMATIC_MAX = 24
# a buggy check stops at its first failure: a high bound costs nothing when the bug is found early
BUG_EXAMPLES = 100


# columns none of the bugs depends on, held fixed: fewer choices for Hypothesis to shrink
FIXED = {
    "customer_email": st.just("ann@example.com"),
    "status": st.just("paid"),
    "event_type": st.just("checkout"),
    "amount": st.just(Decimal("10.00")),
    "company_name": st.just("Acme"),
    "employee_markme": st.just("Ann"),
    "description": st.just("engineer"),
    "leave_days": st.just(3),
}


def small(spec: Spec, rows: int, exercise: set[str] | None = None, **values: Any) -> Spec:
    """`spec` with at most `rows` source rows, the columns in FIXED (and `values`) held
    fixed, and optionally fewer perturbations."""
    sources = []
    for s in spec.sources:
        fixed = {c: v for c, v in {**FIXED, **values}.items() if c in s.columns}
        sources.append(dataclasses.replace(s, max_rows=rows, values={**s.values, **fixed}))
    changes: dict[str, Any] = {"sources": sources}
    if exercise is not None:
        changes["exercise"] = exercise
    return dataclasses.replace(spec, **changes)


def column(diff: Any, row: tuple[Any, ...], name: str) -> Any:
    return row[diff.columns.index(name)]


def spec_of(test: Any) -> Spec:
    return test.idemtest.spec


def load_of(test: Any) -> Any:
    return test.idemtest.load


def distinct_star(run: Any) -> None:
    # the tutorial's own `SELECT DISTINCT *` merge: no example check of its own, since
    # test_buggy.py shows the same PostgreSQL-only failure on the change log
    employees_airflow.merge_employees_distinct_star(run.dsn, run.landing)


# --- correct loads: pass, with crashes injected ------------------------------------
@pytest.mark.parametrize(
    ("test", "examples"),
    [
        pytest.param(correct.test_merge_with_event_time_watermark, EXAMPLES, id="merge-with-event-time-watermark"),
        pytest.param(correct.test_upsert_with_version_guard, EXAMPLES, id="on-conflict-with-version-guard"),
        pytest.param(correct.test_delete_insert_in_one_transaction, EXAMPLES, id="delete-insert-in-one-transaction"),
        pytest.param(correct.test_sql_now_capped_event_time_watermark, EXAMPLES, id="sql-now-capped-event-time-watermark"),
        # early runs see fewer landed files than the clean run, so some planned crashes fall
        # past the last statement: more examples for enough crashes that land
        pytest.param(correct.test_airflow_temp_table_upsert, 30, id="airflow-temp-table-upsert"),
    ],
)
def test_correct_example_passes(test: Any, examples: int, pg_dsn: str, tmp_path: Path) -> None:
    # a thinned single-fault pass (every family, fewer crash points) keeps the suite in minutes;
    # the full pass runs in `pytest --idempotency --idem-db ... examples/postgres`
    stats = idemtest.verify(spec_of(test), load_of(test), db=pg_dsn, examples=examples, failures_dir=tmp_path, systematic_max=SYSTEMATIC_MAX)
    # the systematic single-fault pass, then at least 10 generated scenarios
    assert stats.scenarios == stats.systematic + stats.generated >= examples and stats.generated >= 10
    assert stats.crashes > 0 and stats.retries > 0 and stats.crash_points_hit > 0
    assert stats.failures == 0 and not any(tmp_path.iterdir())


def test_running_total_passes_without_concurrency(pg_dsn: str, tmp_path: Path) -> None:
    # the read-modify-write load is fine under retries, crashes, duplicates and backfills:
    # only two runs at once break it (test_lost_update_is_found_only_by_an_interleaving)
    test = correct.test_running_total_without_concurrency
    stats = idemtest.verify(spec_of(test), load_of(test), db=pg_dsn, examples=EXAMPLES, failures_dir=tmp_path, systematic_max=SYSTEMATIC_MAX)
    assert stats.scenarios >= EXAMPLES and stats.crashes > 0 and stats.interleavings == 0


# --- buggy loads: caught with the right property and diff ------------------------------
def test_upsert_without_version_guard_lets_an_old_change_win(pg_dsn: str, tmp_path: Path) -> None:
    # one order, up to three changes; a backfill or a catch-up re-runs an older window
    test = buggy.test_upsert_without_version_guard
    spec = small(spec_of(test), 3, {"backfill", "out_of_order"}, order_id=st.just(1))
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec, load_of(test), db=pg_dsn, examples=BUG_EXAMPLES, failures_dir=tmp_path)
    e = info.value
    assert e.prop == "P1"
    (d,) = e.diffs
    assert d.target == "analytics.order_status" and d.changed and not d.missing and not d.extra
    assert {"changed_at", "change_id"} <= set(d.columns_differ)
    for expected, actual in d.changed:
        # the clean run keeps the newest change; the scenario ended with an older one
        assert column(d, actual, "changed_at") < column(d, expected, "changed_at")
    assert "backfill run" in e.report or "catch-up run" in e.report


@pytest.fixture(scope="module")
def do_nothing_failure(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> idemtest.IdempotencyViolation:
    """The ON CONFLICT DO NOTHING failure, found once for the check and the replay tests."""
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(DO_NOTHING_SPEC, load_of(buggy.test_on_conflict_do_nothing), db=pg_dsn, examples=BUG_EXAMPLES, failures_dir=tmp_path_factory.mktemp("failures"))
    return info.value


DO_NOTHING_SPEC = small(spec_of(buggy.test_on_conflict_do_nothing), 2)


def test_on_conflict_do_nothing_keeps_the_first_version(do_nothing_failure: idemtest.IdempotencyViolation) -> None:
    e = do_nothing_failure
    assert e.prop == "P1"
    (d,) = e.diffs
    assert d.target == "analytics.orders" and d.changed and not d.missing and not d.extra and not d.duplicate_keys
    assert "updated_at" in d.columns_differ
    for expected, actual in d.changed:
        assert column(d, actual, "updated_at") < column(d, expected, "updated_at")  # stuck on an older version
    assert e.saved is not None and Path(e.saved).is_file()


def test_saved_failure_replays_on_postgres(do_nothing_failure: idemtest.IdempotencyViolation, pg_dsn: str) -> None:
    saved = do_nothing_failure.saved
    assert saved is not None
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(DO_NOTHING_SPEC, load_of(buggy.test_on_conflict_do_nothing), replay=saved, db=pg_dsn)
    again = info.value
    assert again.prop == do_nothing_failure.prop
    assert again.saved == saved  # a replay does not save a new file
    (d,) = again.diffs
    (first,) = do_nothing_failure.diffs
    assert (d.target, d.columns, d.changed, d.columns_differ) == (first.target, first.columns, first.changed, first.columns_differ)


def test_autocommit_delete_insert_loses_rows_on_a_crash(pg_dsn: str, tmp_path: Path) -> None:
    test = buggy.test_delete_insert_autocommit
    spec = small(spec_of(test), 3, {"crash"})
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec, load_of(test), db=pg_dsn, examples=BUG_EXAMPLES, failures_dir=tmp_path)
    e = info.value
    assert e.prop == "P3"
    (d,) = e.diffs
    assert d.target == "analytics.hourly_revenue" and d.missing and d.keys == ("hour",)
    crashed = [a for a in e.attempts if a.outcome == "crash"]  # type: ignore[attr-defined]
    assert crashed
    # the crash fell between the autocommitted DELETE and the INSERT
    b, when = crashed[-1].at, crashed[-1].when
    assert ("DELETE" in b.text and when == "after") or ("INSERT" in b.text and when == "before")
    assert "lost (committed before the failed attempt, gone after it)" in e.report


def test_autocommit_delete_insert_shows_a_reader_an_empty_hour(pg_dsn: str, tmp_path: Path) -> None:
    test = buggy.test_delete_insert_autocommit_seen_by_a_reader
    spec = small(spec_of(test), 2)
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec, load_of(test), db=pg_dsn, examples=BUG_EXAMPLES, failures_dir=tmp_path)
    e = info.value
    assert e.prop == "P4"
    (d,) = e.diffs
    assert d.target == "analytics.hourly_revenue" and d.missing and not d.extra  # the reader saw the hour empty
    assert "half-written" in e.report and "INSERT INTO analytics.hourly_revenue" in e.report


def test_swallowed_exception_hides_a_load_that_stopped_working(pg_dsn: str, tmp_path: Path) -> None:
    # a crash leaves staging.employees_temp behind; every later CREATE TABLE fails and is swallowed
    test = buggy.test_airflow_tutorial_swallowed_errors
    spec = small(spec_of(test), 2)
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec, load_of(test), db=pg_dsn, examples=BUG_EXAMPLES, failures_dir=tmp_path)
    e = info.value
    assert e.prop == "P1"
    (d,) = e.diffs
    # rows (or their newer versions) never arrive: missing, or stuck at an older version
    assert d.target == "analytics.employees" and (d.missing or d.changed) and not d.extra
    attempts = e.attempts  # type: ignore[attr-defined]
    crashed = [a for a in attempts if a.outcome == "crash"]
    assert crashed
    # the retry "succeeded": the error was swallowed, so the orchestrator saw nothing wrong
    retry = [a for a in attempts if a.step == crashed[0].step and a.attempt == crashed[0].attempt + 1]
    assert retry and retry[0].outcome == "ok"
    assert all(a.outcome in ("ok", "crash") for a in attempts)


def test_lost_update_is_found_only_by_an_interleaving(pg_dsn: str, tmp_path: Path) -> None:
    test = buggy.test_running_total_read_modify_write
    spec = small(spec_of(test), 2)
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec, load_of(test), db=pg_dsn, examples=80, failures_dir=tmp_path)
    e = info.value
    assert e.prop == "P1"
    (d,) = e.diffs  # the per-window rows are right; only the running total is off
    assert d.target == "analytics.revenue_summary" and d.changed and d.columns_differ == ["total_revenue"]
    (expected, actual) = d.changed[0]
    # a lost update: the total misses one window's revenue
    assert column(d, actual, "total_revenue") < column(d, expected, "total_revenue")
    assert "at once:" in e.report and "interleaving (statement by statement):" in e.report
    assert "UPDATE analytics.revenue_summary" in e.report.split("interleaving (statement by statement):")[1]


def test_sql_now_watermark_misses_late_orders_under_the_sql_clock(pg_dsn: str, tmp_path: Path) -> None:
    # the examples' own spec at the default scenarios: the nominal plan of the systematic pass
    test = buggy.test_sql_now_watermark
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec_of(test), load_of(test), db=pg_dsn, failures_dir=tmp_path)
    e = info.value
    assert e.prop == "P1" and "found by the systematic pass" in e.report
    (d,) = e.diffs
    assert d.target == "analytics.orders" and (d.missing or d.changed) and not d.extra
    lost = d.missing + [expected for expected, _ in d.changed]
    # what was lost landed after the run whose hour `now() - interval '1 hour'` covered: the SQL read the run's time
    late = {(v.values["order_id"], v.values["updated_at"]) for v in e.scenario.data.sources["src.orders"] if v.arrival > v.values["updated_at"]}
    assert any((column(d, r, "order_id"), column(d, r, "updated_at")) in late for r in lost), e.report


def test_a_duckdb_failure_replayed_on_postgres_says_so(pg_dsn: str, tmp_path: Path) -> None:
    """The examples' SQL now() bug is plain SQL both engines run: saved on DuckDB,
    replayed on PostgreSQL by request, the report and a warning name both engines."""
    import examples.duckdb.test_buggy as duck

    test = duck.test_sql_now_watermark
    spec = dataclasses.replace(spec_of(test), dialect=None, setup=str(Path(__file__).resolve().parents[2] / "examples" / "postgres" / "schema.sql"))

    def load(run: Any) -> None:
        with run.conn.transaction() if hasattr(run.conn, "transaction") else _nothing():
            run.conn.execute(
                "INSERT INTO analytics.orders SELECT * FROM src.orders WHERE updated_at > now() - interval '1 hour' "
                "ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, amount = excluded.amount, updated_at = excluded.updated_at "
                "WHERE analytics.orders.updated_at < excluded.updated_at"
            )

    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec, load, failures_dir=tmp_path, systematic_max=5)
    saved = info.value.saved
    with pytest.warns(idemtest.IdemtestWarning, match=r"saved on DuckDB and is replayed on PostgreSQL"):
        try:
            idemtest.verify(spec, load, replay=saved, db=pg_dsn)
        except idemtest.IdempotencyViolation as again:
            assert "saved on DuckDB and is replayed on PostgreSQL" in again.report


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


# --- PostgreSQL is stricter than DuckDB: the load fails without any fault ------------------
@pytest.mark.parametrize(
    ("spec", "load"),
    [
        pytest.param(spec_of(buggy.test_upsert_from_change_log_without_dedup), load_of(buggy.test_upsert_from_change_log_without_dedup), id="upsert-from-change-log-without-distinct-on"),
        pytest.param(spec_of(correct.test_airflow_temp_table_upsert), distinct_star, id="airflow-tutorial-select-distinct-star"),
    ],
)
def test_upsert_of_a_repeated_key_is_a_cardinality_violation(spec: Spec, load: Any, pg_dsn: str, tmp_path: Path) -> None:
    # DuckDB resolves a source that repeats a key silently; PostgreSQL refuses the statement
    with pytest.raises(idemtest.LoadError) as info:
        idemtest.verify(spec, load, db=pg_dsn, examples=EXAMPLES, failures_dir=tmp_path)
    text = str(info.value)
    assert "the load fails even without faults" in text
    assert "CardinalityViolation: ON CONFLICT DO UPDATE command cannot affect row a second time" in text
    assert "declare Spec(dialect=" not in text  # the spec already says postgres: no dialect hint


# --- housekeeping ------------------------------------------------------------------------
def test_no_sandbox_database_left_behind(admin: Any) -> None:
    """Runs last in this module: every verify() above dropped what it created."""
    from idemtest.sandbox.postgres import name_prefix

    mine = name_prefix().replace("_", "\\_") + "%"
    rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [mine]).fetchall()
    assert rows == []
