"""A check's time and a failure's size are bounded by its settings: the shrink
budget really ends shrinking, the reduction leaves one fault and the fewest rows,
`max_seconds` cuts a check short and says so, pytest-timeout ends a check with
one paragraph; a search reports every distinct finding, and a replay on another
engine than the one it was saved on says so."""

from __future__ import annotations

import dataclasses
import json
import re
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import idemtest
from idemtest import Source, Spec, Target, hourly
from idemtest.engine.minimize import count_faults, reduce, same_failure
from idemtest.engine.model import Dataset, Fault, Finding, Outcome, RunStep, Scenario, Version

ORDERS = Source(
    "src.orders",
    columns={"order_id": "BIGINT", "status": "VARCHAR", "amount": "DECIMAL(12,2)", "updated_at": "TIMESTAMP"},
    key="order_id",
    event_time="updated_at",
    max_rows=8,
)
SETUP = """
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, status VARCHAR, amount DECIMAL(12,2), updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT, status VARCHAR, amount DECIMAL(12,2), updated_at TIMESTAMP);
CREATE TABLE analytics.counts(id INTEGER PRIMARY KEY, n BIGINT);
CREATE TABLE analytics.keyed(order_id BIGINT PRIMARY KEY, status VARCHAR);
INSERT INTO analytics.counts VALUES (1, 0);
"""


def spec(**kw: Any) -> Spec:
    base: dict[str, Any] = dict(
        setup=SETUP, sources=[ORDERS], targets=[Target("analytics.orders", key="order_id")],
        schedule=hourly("2026-06-01", periods=3), concurrency="none",
    )
    base.update(kw)
    return Spec(**base)


def append(run: Any) -> None:
    # buggy: a bare INSERT of the window; a retry or a duplicate run appends again
    run.conn.execute("INSERT INTO analytics.orders SELECT * FROM src.orders WHERE updated_at >= ? AND updated_at < ?", [run.window.start, run.window.end])


def slow_append(run: Any) -> None:
    time.sleep(0.03)  # a load that costs something: every shrink candidate adds up
    append(run)


def upsert(run: Any) -> None:
    run.conn.execute("BEGIN")
    run.conn.execute("DELETE FROM analytics.orders WHERE order_id IN (SELECT order_id FROM src.orders)")
    run.conn.execute("INSERT INTO analytics.orders SELECT * FROM src.orders")
    run.conn.execute("COMMIT")


# --- the reduction (engine/minimize.py), on a judge with a known answer ----------------

T0 = datetime(2026, 6, 1)


def _scenario(n_rows: int, faults: int) -> Scenario:
    rows = [Version({"order_id": i, "updated_at": T0}, T0) for i in range(n_rows)]
    steps: list[Any] = [RunStep(0, T0, tuple(Fault(k + 1) for k in range(faults))), RunStep(0, T0, (), "duplicate"), RunStep(1, T0)]
    return Scenario(Dataset({"src.orders": rows}), steps)


FINDING = Finding("P1", "x")


@pytest.mark.parametrize(
    ("rows", "faults", "needs", "want_rows", "want_faults"),
    [
        (10, 3, {"row 7"}, 1, 0),  # one row matters, no fault does
        (10, 3, {"row 2", "row 5"}, 2, 0),
        (6, 2, {"row 0", "a fault"}, 1, 1),  # one crash where two were planned
        (4, 0, {"duplicate"}, 0, 1),  # the duplicate run is the fault; every row goes
        (3, 1, set(), 0, 0),
    ],
)
def test_reduce_keeps_exactly_what_the_failure_needs(rows: int, faults: int, needs: set[str], want_rows: int, want_faults: int) -> None:
    def judge(sc: Scenario) -> tuple[Finding, Outcome] | None:
        ids = {f"row {v.values['order_id']}" for v in sc.data.sources["src.orders"]}
        have = set(ids)
        if any(isinstance(s, RunStep) and s.faults for s in sc.steps):
            have.add("a fault")
        if any(isinstance(s, RunStep) and s.tag == "duplicate" for s in sc.steps):
            have.add("duplicate")
        return (FINDING, Outcome(None, [], {})) if needs <= have else None

    red = reduce(_scenario(rows, faults), FINDING, Outcome(None, [], {}), judge, deadline=time.perf_counter() + 30)
    assert red.scenario.data.row_count() == want_rows
    assert count_faults(red.scenario.steps) == want_faults
    assert judge(red.scenario) is not None and not red.timed_out
    # every window still runs: only extra runs are ever removed
    assert {s.window for s in red.scenario.steps} == {0, 1}


def test_a_catch_up_block_the_failure_does_not_need_goes_back_on_schedule() -> None:
    """The seen CI case: nominal 0, catch-up 2 then 1 (the scheduler paused), backfill 0;
    only the backfill duplicates, so the catch-up runs are put back on time (3 → 1 fault)."""
    h = [datetime(2026, 6, 1, k) for k in range(4)]
    steps: list[Any] = [RunStep(0, h[1]), RunStep(2, h[3], (), "catch-up"), RunStep(1, h[3], (), "catch-up"), RunStep(0, h[3], (), "backfill")]
    sc = Scenario(Dataset({"src.orders": []}), steps)

    def judge(cand: Scenario) -> tuple[Finding, Outcome] | None:
        at = [s.at for s in cand.steps]
        assert at == sorted(at), "the clock went backwards"
        return (FINDING, Outcome(None, [], {})) if any(s.tag == "backfill" for s in cand.steps) else None

    nominal = {0: h[1], 1: h[2], 2: h[3]}
    red = reduce(sc, FINDING, Outcome(None, [], {}), judge, deadline=time.perf_counter() + 30, nominal=nominal)
    assert red.scenario.steps == [RunStep(0, h[1]), RunStep(1, h[2]), RunStep(2, h[3]), RunStep(0, h[3], (), "backfill")]
    assert count_faults(red.scenario.steps) == 1 and "3 → 1 faults" in red.note()
    # when the failure needs the late order, the block stays as it was
    late = reduce(sc, FINDING, Outcome(None, [], {}), lambda c: judge(c) if c.steps[1].tag == "catch-up" else None,
                  deadline=time.perf_counter() + 30, nominal=nominal)
    assert late.scenario.steps == steps


def test_reduce_stops_at_its_deadline_with_the_smallest_failure_so_far() -> None:
    calls = []

    def judge(sc: Scenario) -> tuple[Finding, Outcome] | None:
        calls.append(1)
        time.sleep(0.1)
        needed = any(v.values["order_id"] == 37 for v in sc.data.sources["src.orders"])
        return (FINDING, Outcome(None, [], {})) if needed else None

    t0 = time.perf_counter()
    red = reduce(_scenario(50, 0), FINDING, Outcome(None, [], {}), judge, deadline=time.perf_counter() + 0.5)
    assert time.perf_counter() - t0 < 1.0 and red.timed_out
    # the duplicate run went first, then rows in halves, until the time ran out
    assert red.removed > 0 and count_faults(red.scenario.steps) == 0 and 0 < red.scenario.data.row_count() < 50
    assert judge(red.scenario) is not None  # what is reported still fails
    assert "stopped at its time limit" in red.note()


def test_same_failure_means_the_same_property_on_a_shared_target() -> None:
    from idemtest.engine.diff import TableDiff

    def f(prop: str, *targets: str) -> Finding:
        return Finding(prop, "h", [TableDiff(target=t, keys=(), columns=[]) for t in targets])

    assert same_failure(f("P1", "a"), f("P1", "a", "b"))
    assert not same_failure(f("P1", "a"), f("P2", "a"))
    assert not same_failure(f("P1", "a"), f("P1", "b"))
    assert not same_failure(f("P1", "a"), None)


# --- end to end ---------------------------------------------------------------------------


def test_a_systematic_failure_is_reduced_to_one_fault_and_one_row(tmp_path: Path) -> None:
    # orders never updated: only a re-run (a fault) can duplicate one
    s = spec(sources=[dataclasses.replace(ORDERS, updates=False)])
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(s, append, failures_dir=tmp_path)
    e = info.value
    assert e.scenario.data.row_count() == 1 and count_faults(e.scenario.steps) == 1, e.report
    assert re.search(r"found by the systematic pass: .*; reduced \(\d+ → 1 source rows\) in \d+ re-runs", e.report), e.report
    saved = json.loads(Path(e.saved).read_text())
    assert sum(len(v) for v in saved["scenario"]["data"].values()) == 1  # the file replays the reduced failure
    with pytest.raises(idemtest.IdempotencyViolation):
        idemtest.replay(e.saved, s, append)


def test_shrinking_ends_at_its_budget_and_the_result_is_small(tmp_path: Path) -> None:
    """The random search alone (no systematic pass) on a load that costs time: Hypothesis
    is stopped at half the shrink budget, the reduction has the rest."""
    budget = 6.0
    stats = idemtest.Stats()
    t0 = time.perf_counter()
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec(), slow_append, failures_dir=tmp_path, systematic=False, examples=200, seed=3, shrink_seconds=budget, stats=stats)
    wall = time.perf_counter() - t0
    e = info.value
    m = re.search(r"found at generated scenario (\d+)", e.report)
    assert m, e.report
    # generation to the first failure, then shrinking + reduction within the budget (plus one scenario's overrun)
    per_scenario = wall / max(1, stats.scenarios + stats.reduced)
    assert wall - budget <= per_scenario * (int(m.group(1)) + 40) + 2.0, (wall, e.report.splitlines()[3])
    if "stopped at its time limit" not in e.report:  # a loaded machine may not finish the reduction in time
        assert count_faults(e.scenario.steps) == 1 and e.scenario.data.row_count() <= 2, e.report


def test_max_seconds_cuts_a_check_short_and_says_so(tmp_path: Path) -> None:
    stats = idemtest.Stats()
    t0 = time.perf_counter()
    with pytest.warns(idemtest.IdemtestWarning, match=r"was cut short — .*max_seconds=1.*not a full pass"):
        idemtest.verify(spec(), upsert, failures_dir=tmp_path, examples=10_000, max_seconds=1, stats=stats)
    assert time.perf_counter() - t0 < 8
    (line,) = stats.cut_short
    assert "max_seconds=1" in line
    assert "CUT SHORT" in stats.coverage[-1]


def test_a_check_within_its_budget_is_not_cut_short(tmp_path: Path) -> None:
    stats = idemtest.Stats()
    with warnings.catch_warnings():
        warnings.simplefilter("error", idemtest.IdemtestWarning)
        idemtest.verify(spec(), upsert, failures_dir=tmp_path, examples=20, max_seconds=600, systematic_max=20, stats=stats)
    assert stats.cut_short == [] and "CUT SHORT" not in stats.coverage[-1]


@pytest.mark.parametrize("bad", [0, -1, "10", True])
def test_max_seconds_must_be_a_positive_number(bad: Any, tmp_path: Path) -> None:
    with pytest.raises(idemtest.SpecError, match=r"max_seconds=.* must be a number of seconds > 0"):
        idemtest.verify(spec(), upsert, failures_dir=tmp_path, max_seconds=bad)
    with pytest.raises(idemtest.SpecError, match=r"max_seconds=.* must be a number of seconds > 0"):
        idemtest.check(spec(), max_seconds=bad)


def two_bugs(run: Any) -> None:
    """Two bugs in one load: a counter that a duplicate run doubles (P1 on analytics.counts),
    and a delete + insert committed separately, which a crash between leaves empty (P3 on analytics.keyed)."""
    run.conn.execute("UPDATE analytics.counts SET n = n + (SELECT count(*) FROM src.orders WHERE updated_at >= ? AND updated_at < ?) WHERE id = 1", [run.window.start, run.window.end])
    run.conn.execute("DELETE FROM analytics.keyed")
    run.conn.execute("INSERT INTO analytics.keyed SELECT order_id, status FROM src.orders")


def test_every_distinct_finding_is_reported_with_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from idemtest import _defaults

    # what is reported, not how fast: the default 1 s after the first finding is too
    # short on a loaded CI machine to reach the second bug's scenario
    monkeypatch.setattr(_defaults, "MORE_FINDINGS_SECONDS", 15.0)
    s = spec(targets=[Target("analytics.counts", key="id"), Target("analytics.keyed", key="order_id")])
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(s, two_bugs, failures_dir=tmp_path)
    e = info.value
    report = e.report
    assert "Also broken during this search" in report, report
    others = [line for line in report.splitlines() if line.startswith("  - ")]
    assert others, report
    first = (e.prop, tuple(sorted({d.target for d in e.diffs})))
    seen = {first}
    for line in others:
        m = re.match(r"  - (P\d) on ([\w., ]+): .* — saved: (\S+)$", line)
        assert m, line
        key = (m.group(1), tuple(m.group(2).split(", ")))
        assert key not in seen, f"a finding reported twice: {line}"
        seen.add(key)
        assert (Path(m.group(3)) if Path(m.group(3)).is_absolute() else Path.cwd() / m.group(3)).is_file()
    assert {t for _, ts in seen for t in ts} == {"analytics.counts", "analytics.keyed"}


def test_a_replay_on_another_engine_says_so(tmp_path: Path) -> None:
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(spec(), append, failures_dir=tmp_path)
    saved = Path(info.value.saved)
    payload = json.loads(saved.read_text())
    payload["db"] = "postgres"  # as if it had failed on PostgreSQL
    moved = tmp_path / "from_pg.json"
    moved.write_text(json.dumps(payload))
    note = r"was saved on PostgreSQL and is replayed on DuckDB .*a pass here does not mean the failure is fixed"
    with pytest.warns(idemtest.IdemtestWarning, match=note), pytest.raises(idemtest.IdempotencyViolation) as again:
        idemtest.verify(spec(), append, replay=str(moved), db="duckdb")
    assert "saved on PostgreSQL and is replayed on DuckDB" in again.value.report
    # the same engine: no note
    with warnings.catch_warnings():
        warnings.simplefilter("error", idemtest.IdemtestWarning)
        with pytest.raises(idemtest.IdempotencyViolation):
            idemtest.verify(spec(), append, replay=str(saved), db="duckdb")


# --- through pytest -------------------------------------------------------------------------

SLOW_CHECK = """
import time
import idemtest
from pipelines import spec, upsert

@idemtest.check(spec)
def test_slow(run):
    time.sleep(0.05)
    upsert(run)
"""


def test_idem_max_seconds_cuts_short_in_the_summary(project: pytest.Pytester) -> None:
    project.makepyfile(test_slow=SLOW_CHECK)
    result = project.runpytest("--idempotency", "--idem-examples", "5000", "--idem-max-seconds", "2", "-W", "default")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert re.search(r"CUT SHORT \(not a full pass\) test_slow.py::test_slow: its time budget \(max_seconds=2\) ran out", out), out


def test_idem_max_seconds_in_the_ini_and_a_bad_value(project: pytest.Pytester) -> None:
    project.makepyfile(test_slow=SLOW_CHECK)
    project.makeini("[pytest]\nidem_max_seconds = 2\n")
    result = project.runpytest("--idempotency", "--idem-examples", "5000")
    result.assert_outcomes(passed=1)
    assert "CUT SHORT (not a full pass)" in result.stdout.str()
    bad = project.runpytest("--idempotency", "--idem-max-seconds", "soon")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--idem-max-seconds / idem_max_seconds='soon' is not a number of seconds" in bad.stderr.str()


ONE_WINDOW_CHECK = """
import dataclasses, time
import idemtest
from idemtest import hourly
from pipelines import spec, upsert

# one window: the systematic pass is over in a second, the timeout falls inside Hypothesis
one = dataclasses.replace(spec, schedule=hourly("2026-06-01", periods=1), max_lateness=0)

@idemtest.check(one)
def test_slow(run):
    time.sleep(0.05)
    upsert(run)
"""


@pytest.mark.parametrize("phase", ["systematic", "generated"])
def test_pytest_timeout_ends_a_check_with_one_paragraph(project: pytest.Pytester, phase: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # this checkout's idemtest
    project.makepyfile(test_slow=SLOW_CHECK if phase == "systematic" else ONE_WINDOW_CHECK)
    timeout = "4" if phase == "systematic" else "12"
    # in a subprocess, as a user runs it: SIGALRM and an in-process pytester session do not mix
    result = project.runpytest_subprocess("--idempotency", "--idem-examples", "5000", "--timeout", timeout, "-p", "timeout")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert re.search(rf"the test runner's timeout ended this check \(Timeout \(?>{timeout}", out), out
    if phase == "generated":
        assert re.search(r"having played \d+ systematic \+ [1-9]\d* generated scenarios", out), out
    assert "This is not a pass" in out and "--idem-max-seconds" in out
    failure = out.split("_ test_slow _")[1].split("short test summary")[0].split("Captured stdout")[0]  # pytest-timeout's own stack dump is captured output
    assert "Flaky" not in failure and "hypothesis" not in failure.lower(), failure
    failure = failure.split("= idemtest =")[0]  # idemtest's own summary section follows the failure
    paragraph = [line for line in failure.splitlines() if line.strip() and not line.startswith(("=", "-", "+", "_"))]
    assert len(paragraph) <= 3, failure


BUGGY_CHECK = """
import idemtest
from pipelines import spec, append

@idemtest.check(spec)
def test_append(run):
    append(run)
"""


def _saved(project: pytest.Pytester) -> Path:
    project.makepyfile(test_append=BUGGY_CHECK)
    project.runpytest("--idempotency").assert_outcomes(failed=1)
    (path,) = (project.path / ".idemtest" / "failures").glob("*.json")
    return path


def test_a_replay_runs_on_the_engine_it_was_saved_on(project: pytest.Pytester) -> None:
    saved = _saved(project)
    # the ini points at a PostgreSQL server; the failure was saved on DuckDB: it replays there
    project.makeini("[pytest]\nidem_db = postgresql://postgres@127.0.0.1:1/nowhere\n")
    result = project.runpytest("--idempotency", "--idem-replay", str(saved))
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "P2 declared keys stay unique — VIOLATED" in out
    assert f"replayed on duckdb, where {saved} was saved (the configured sandbox is postgres; --idem-db overrides)" in out


def test_a_replay_saved_on_postgres_asks_for_the_server(project: pytest.Pytester) -> None:
    saved = _saved(project)
    payload = json.loads(saved.read_text())
    payload["db"] = "postgres"
    saved.write_text(json.dumps(payload))
    result = project.runpytest("--idempotency", "--idem-replay", str(saved))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "was saved on PostgreSQL and the configured sandbox is duckdb; give the server: --idem-db postgresql://" in result.stderr.str()


def test_the_coverage_line_names_what_each_window_got(tmp_path: Path) -> None:
    stats = idemtest.Stats()
    idemtest.verify(spec(max_lateness="1h"), upsert, failures_dir=tmp_path, examples=12, stats=stats)
    (line,) = stats.coverage
    m = re.search(r"crashed/played per window: (w0 before (\d+)/(\d+) after (\d+)/(\d+)), w1 ", line)
    assert m, line
    assert int(m.group(3)) > 0 and int(m.group(5)) > 0 and int(m.group(2)) <= int(m.group(3))
    assert re.search(r"duplicated w0,w1,w2", line) and re.search(r"backfilled w0", line) and re.search(r"late rows in w\d", line), line


def test_sources_that_never_reach_the_load_get_a_warning(tmp_path: Path) -> None:
    def wrong_year(run: Any) -> None:
        # the load filters on a year the declared windows never cover: nothing is ever loaded
        run.conn.execute("INSERT INTO analytics.orders SELECT * FROM src.orders WHERE updated_at < TIMESTAMP '2000-01-01'")

    with pytest.warns(idemtest.IdemtestWarning, match=r"every target \(analytics\.orders\) is empty after a clean run .* do its filters never match"):
        idemtest.verify(spec(), wrong_year, failures_dir=tmp_path, examples=10, systematic_max=10)


def test_a_decorator_max_seconds_and_the_command_line_overriding_it(project: pytest.Pytester) -> None:
    project.makepyfile(test_slow=SLOW_CHECK.replace("@idemtest.check(spec)", "@idemtest.check(spec, max_seconds=2)"))
    result = project.runpytest("--idempotency", "--idem-examples", "5000")
    result.assert_outcomes(passed=1)
    assert "CUT SHORT (not a full pass) test_slow.py::test_slow: its time budget (max_seconds=2)" in result.stdout.str()
    result = project.runpytest("--idempotency", "--idem-examples", "5000", "--idem-max-seconds", "1")
    assert "(max_seconds=1)" in result.stdout.str()
