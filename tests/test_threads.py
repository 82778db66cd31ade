"""A run is a process: every thread it starts is instrumented (statements traced,
crashable), a crash on any thread ends the whole attempt at once, and statements
idemtest cannot attribute to a run fail the check instead of passing unseen."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import idemtest
from idemtest import Spec, Target, hourly
from idemtest.engine.execute import Env
from idemtest.engine.generate import crash_point
from idemtest.engine.model import Dataset, RunStep
from idemtest.engine.systematic import thread_group
from idemtest.instrument import (
    Controller,
    Fault,
    InjectedCrash,
    activate,
    begin_run,
    current,
    end_run,
)
from idemtest.sandbox.duckdb import DuckDBBackend

SETUP = "CREATE SCHEMA analytics; CREATE TABLE analytics.t (id BIGINT, v VARCHAR)"
SPEC = Spec(setup=SETUP, sources=[], targets=[Target("analytics.t", key="id")], schedule=hourly("2026-06-01", periods=2), timeout="20s")
NOW = datetime(2026, 6, 1, 1)


@pytest.fixture
def sandbox() -> Iterator[Any]:
    backend = DuckDBBackend()
    sb = backend.create()
    sb.prepare(SPEC)
    yield sb
    sb.close()
    backend.close()


def ids(sb: Any) -> list[int]:
    return [r[0] for r in sb.query("SELECT id FROM analytics.t ORDER BY id")[1]]


def attempt(sb: Any, load: Any, fault: Fault | None = None) -> Any:
    return Env(SPEC, sb, Dataset(), load).execute(1, RunStep(0, NOW), 1, NOW, fault)


def write_on_pool(run: Any) -> None:
    """Three jobs on a pool, each on its own connection to run.path, one row each."""

    def job(i: int) -> None:
        con = duckdb.connect(run.path)
        con.execute("INSERT INTO analytics.t VALUES (?, 'pool')", [i])

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(job, [1, 2, 3]))
    run.conn.execute("INSERT INTO analytics.t VALUES (9, 'marker')")


def test_pool_and_thread_statements_are_traced(sandbox: Any) -> None:
    def load(run: Any) -> None:
        write_on_pool(run)
        t = threading.Thread(target=lambda: duckdb.connect(run.path).execute("INSERT INTO analytics.t VALUES (5, 'thread')"), name="side")
        t.start()
        t.join()

    rec = attempt(sandbox, load)
    assert rec.outcome == "ok", rec.error
    inserts = [b for b in rec.trace if b.kind == "execute"]
    assert len(inserts) == 5  # 3 pool jobs, the marker, the side thread: none unseen
    assert {thread_group(b.thread) for b in inserts} >= {"the run's thread", "side"}
    assert any(b.thread.startswith("ThreadPoolExecutor") for b in inserts)
    assert ids(sandbox) == [1, 2, 3, 5, 9]


def test_a_crash_on_a_worker_thread_ends_the_attempt(sandbox: Any) -> None:
    clean = attempt(sandbox, write_on_pool)
    sandbox.execute("DELETE FROM analytics.t")
    # the first pool INSERT in the clean trace: a crash point on a worker thread
    k = next(b.index for b in clean.trace if b.kind == "execute" and b.thread)
    rec = attempt(sandbox, write_on_pool, Fault(k, "before"))
    assert rec.outcome == "crash" and rec.at is not None and rec.at.thread.startswith("ThreadPoolExecutor")
    assert 9 not in ids(sandbox)  # the marker never ran: the process died first


def test_a_wrapper_that_waits_forever_after_the_crash_is_reported_crashed_at_once(sandbox: Any) -> None:
    """dlt's job wrapper: catch the job's failure in `finally`, raise AssertionError,
    then wait for the job's final state, which a killed job never writes."""
    after: list[BaseException] = []

    def load(run: Any) -> None:
        never = threading.Event()
        try:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(lambda: duckdb.connect(run.path).execute("INSERT INTO analytics.t VALUES (1, 'job')")).result()
        except BaseException as e:
            raise AssertionError(f"job failed: {e!r}") from e
        finally:
            try:
                run.conn.execute("INSERT INTO analytics.t VALUES (2, 'after death')")
            except BaseException as e:
                after.append(e)
            never.wait()

    t0 = time.perf_counter()
    rec = attempt(sandbox, load, Fault(2, "after"))  # 1: connect, 2: the job's INSERT
    took = time.perf_counter() - t0
    assert rec.outcome == "crash", (rec.outcome, rec.error)
    assert took < 3, f"the harness waited {took:.1f}s for a dead process"
    assert len(after) == 1 and isinstance(after[0], InjectedCrash)  # the dead process runs nothing more
    assert ids(sandbox) == [1]  # the job committed (autocommit) before the kill; nothing after it


def test_the_abandoned_thread_cannot_disturb_the_next_attempt(sandbox: Any) -> None:
    go = threading.Event()
    late: list[BaseException] = []

    def load(run: Any) -> None:
        conn = run.conn
        try:
            conn.execute("INSERT INTO analytics.t VALUES (1, 'a')")
        finally:
            go.wait()
            try:
                duckdb.connect(run.path).execute("INSERT INTO analytics.t VALUES (66, 'ghost')")
            except BaseException as e:
                late.append(e)

    assert attempt(sandbox, load, Fault(1, "after")).outcome == "crash"
    rec = attempt(sandbox, lambda run: run.conn.execute("INSERT INTO analytics.t VALUES (2, 'b')"))
    go.set()  # the ghost of attempt 1 wakes up during/after attempt 2
    time.sleep(0.2)
    assert rec.outcome == "ok" and len(late) == 1 and isinstance(late[0], InjectedCrash)
    assert 66 not in ids(sandbox) and len(rec.trace) == 1


def test_a_pool_from_before_the_run_belongs_to_the_one_live_run(sandbox: Any) -> None:
    pool = ThreadPoolExecutor(2)
    pool.submit(lambda: None).result()  # its thread exists before any run

    def load(run: Any) -> None:
        # submitted from the run's thread: the task carries the run
        pool.submit(lambda: duckdb.connect(run.path).execute("INSERT INTO analytics.t VALUES (1, 'x')")).result()

    rec = attempt(sandbox, load)
    pool.shutdown()
    assert rec.outcome == "ok" and [b.kind for b in rec.trace] == ["connect", "execute"]


def test_a_thread_of_no_run_gets_the_one_live_run_and_is_refused_when_two_are_live(sandbox: Any) -> None:
    a, b = Controller("window 0 attempt 1"), Controller("window 1 attempt 1")
    seen: list[Any] = []

    def probe() -> None:
        try:
            seen.append(current())
        except idemtest.UninstrumentedError as e:
            seen.append(e)

    begin_run(a)
    t = threading.Thread(target=probe)
    t.start()
    t.join()
    begin_run(b)
    outsider = ThreadPoolExecutor(1)  # created and used from the test's thread: belongs to no run
    outsider.submit(probe).result()
    outsider.shutdown()
    end_run(a)
    end_run(b)
    assert seen[0] is a
    assert isinstance(seen[1], idemtest.UninstrumentedError) and "2 runs are live" in str(seen[1])
    assert a.unseen and b.unseen  # both checks fail on it


def test_a_connection_opened_outside_the_run_fails_the_check(sandbox: Any) -> None:
    outside = duckdb.connect(sandbox.path)  # no run is live: an uninstrumented connection

    def load(run: Any) -> None:
        outside.execute("INSERT INTO analytics.t VALUES (1, 'unseen')")

    with pytest.raises(idemtest.UninstrumentedError, match="opened outside the run") as info:
        attempt(sandbox, load)
    assert "INSERT INTO analytics.t" in str(info.value) and "README" in str(info.value)


def test_boundaries_from_many_threads_are_counted_once_each() -> None:
    ctl = Controller("t")

    def hammer() -> None:
        for _ in range(200):
            ctl.done(ctl.boundary("execute", "x"))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ctl.count == len(ctl.trace) == 1600
    assert sorted(b.index for b in ctl.trace) == list(range(1, 1601))


def test_threads_started_inside_activate_inherit_the_controller() -> None:
    ctl = Controller("t")
    ctl.finished = False
    got: list[Any] = []
    begin_run(ctl)
    try:
        with activate(ctl):
            t = threading.Thread(target=lambda: got.append(current()))
            t.start()
            t.join()
            with ThreadPoolExecutor(1) as pool:
                got.append(pool.submit(current).result())
    finally:
        end_run(ctl)
    assert got == [ctl, ctl]
    assert current() is None


@pytest.mark.parametrize(
    ("name", "group"),
    [("", "the run's thread"), ("ThreadPoolExecutor-7_2", "ThreadPoolExecutor worker 2"), ("side", "side"), ("Thread-3 (job)", "Thread-3 (job)")],
)
def test_thread_group(name: str, group: str) -> None:
    assert thread_group(name) == group


@settings(max_examples=300, database=None)
@given(st.data())
def test_crash_points_reach_past_the_clean_runs_count(data: Any) -> None:
    n = data.draw(st.integers(1, 20))
    at = data.draw(crash_point(n))
    assert 1 <= at <= 4 * n + 16


def test_crash_points_beyond_the_clean_count_are_drawn_and_shrink_to_one() -> None:
    from hypothesis import find

    assert find(crash_point(5), lambda k: k > 5) == 6  # reachable, and shrinks to the first beyond
    assert find(crash_point(5), lambda k: True) == 1


def test_the_data_then_record_bug_on_a_pool_is_caught_at_defaults(tmp_path: Any) -> None:
    """dlt-hub/dlt#4052 with the data written by pool workers: at default settings."""
    from examples.duckdb.pipelines import pooled
    from examples.duckdb.test_buggy import pooled_spec

    def load(run: Any) -> None:
        pooled.append_jobs_then_record(lambda: duckdb.connect(run.path), run.window.start, run.window.end)

    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(pooled_spec, load, failures_dir=tmp_path)
    assert info.value.prop in ("P1", "P2")
    crashed = [a for a in info.value.attempts if a.outcome == "crash"]
    assert crashed and all(a.at is not None for a in crashed), info.value.report
