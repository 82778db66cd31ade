"""crash='kill' on a DuckDB file sandbox: each attempt runs in a forked child that
is ended with os._exit at its crash point (engine/isolate.py). What differs from
the in-process mode is what a real kill does: no `finally` runs, a job wrapper
that waits in its `finally` cannot hang the attempt, a load that ends its own
process is an error of that attempt, not the end of pytest."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import idemtest
from idemtest import Source, Spec, Target, hourly
from idemtest.engine.execute import Env
from idemtest.engine.model import Dataset, Fault, RunStep
from idemtest.sandbox.duckdb import DuckDBBackend

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="crash='kill' is POSIX only")

SETUP = "CREATE TABLE t (id BIGINT, v VARCHAR, loaded_at TIMESTAMP); CREATE TABLE events (id BIGINT, ts TIMESTAMP, v INTEGER); CREATE TABLE out (id BIGINT, ts TIMESTAMP, v INTEGER)"
AT = datetime(2026, 1, 1, 1)


def one_window(crash: str, timeout: float = 30) -> Spec:
    return Spec(sources=[], targets=[Target("t", key="id")], schedule=hourly("2026-01-01", 1), setup=SETUP, crash=crash, timeout=timeout)  # type: ignore[arg-type]


@pytest.fixture
def backend() -> Iterator[DuckDBBackend]:
    be = DuckDBBackend(files=True)
    yield be
    be.close()


def attempt(backend: DuckDBBackend, spec: Spec, load: Any, fault: Fault | None) -> tuple[Any, list[tuple[Any, ...]]]:
    """One attempt of `load` (window 0, at AT) and the rows of t after it."""
    sb = backend.create()
    try:
        sb.prepare(spec)
        rec = Env(spec, sb, Dataset({}), load).execute(1, RunStep(0, AT, (fault,) if fault else ()), 1, AT, fault)
        return rec, sb.query("SELECT id, v FROM t ORDER BY id")[1]
    finally:
        sb.close()


def test_a_kill_runs_no_finally_where_raise_does(backend: DuckDBBackend, tmp_path: Path) -> None:
    marker = tmp_path / "cleanup.log"

    def load(run: Any) -> None:
        c = run.conn
        c.execute("INSERT INTO t VALUES (1, 'committed', NULL)")  # autocommitted
        try:
            c.execute("BEGIN")
            c.execute("INSERT INTO t VALUES (2, 'open', NULL)")
            c.execute("COMMIT")
        finally:
            with marker.open("a") as f:  # the "clean-up" a library does on the way out
                f.write(f"finally ran, attempt {run.attempt}\n")

    fault = Fault(3, "after")  # after the INSERT of the open transaction
    rec, rows = attempt(backend, one_window("raise"), load, fault)
    assert rec.outcome == "crash" and rec.at.index == 3
    assert marker.read_text() == "finally ran, attempt 1\n"  # an exception unwinds through it
    assert rows == [(1, "committed")]
    marker.unlink()

    rec, rows = attempt(backend, one_window("kill"), load, fault)
    assert rec.outcome == "crash" and rec.when == "after" and rec.at.index == 3
    assert "INSERT INTO t VALUES (2" in rec.at.text and [b.index for b in rec.trace] == [1, 2, 3]
    assert not marker.exists()  # a killed process runs no finally
    assert rows == [(1, "committed")]  # committed work stays, the open transaction rolled back


def test_a_job_wrapper_waiting_in_finally_is_crashed_not_hung_in_both_modes(backend: DuckDBBackend) -> None:
    """dlt-style: the wrapper turns the crash into a wait for a job that never ends; in
    process the attempt ends at the crash (the thread is abandoned), in a child it is killed."""
    import threading

    def load(run: Any) -> None:
        done = threading.Event()
        try:
            run.conn.execute("INSERT INTO t VALUES (1, 'a', NULL)")
        finally:
            done.wait()  # the job is never marked done: waits forever

    rec, rows = attempt(backend, one_window("raise", timeout=1), load, Fault(1, "after"))
    assert rec.outcome == "crash" and rec.at.index == 1
    assert rows == [(1, "a")]
    rec, rows = attempt(backend, one_window("kill", timeout=1), load, Fault(1, "after"))
    assert rec.outcome == "crash" and rec.at.index == 1
    assert rows == [(1, "a")]


def test_a_load_that_ends_its_process_or_segfaults_is_an_error_of_its_attempt(backend: DuckDBBackend) -> None:
    def exits(run: Any) -> None:
        run.conn.execute("INSERT INTO t VALUES (1, 'a', NULL)")
        os._exit(3)

    rec, rows = attempt(backend, one_window("kill"), exits, None)
    assert rec.outcome == "error"
    assert rec.error.startswith("the load's process exited with code 3 at boundary 1 (execute: INSERT INTO t VALUES (1")
    assert rows == [(1, "a")]

    def segfaults(run: Any) -> None:
        import ctypes
        import faulthandler

        faulthandler.disable()  # pytest's handler would print the child's stack
        ctypes.string_at(0)

    rec, _ = attempt(backend, one_window("kill"), segfaults, None)
    assert rec.outcome == "error" and "killed by signal SIGSEGV before its first statement" in rec.error


def test_a_hung_child_is_killed_at_the_timeout(backend: DuckDBBackend) -> None:
    import time

    def sleeps(run: Any) -> None:
        run.conn.execute("INSERT INTO t VALUES (1, 'a', NULL)")
        time.sleep(60)

    t0 = time.monotonic()
    rec, rows = attempt(backend, one_window("kill", timeout=1), sleeps, None)
    assert rec.outcome == "hung" and "timeout=1s" in rec.error
    assert time.monotonic() - t0 < 10
    assert [b.index for b in rec.trace] == [1] and rows == [(1, "a")]


def test_every_connection_path_and_the_simulated_clock_work_in_the_child(backend: DuckDBBackend) -> None:
    import duckdb
    import sqlalchemy as sa

    pids: list[int] = []

    def load(run: Any) -> None:
        pids.append(os.getpid())  # in the child: the parent's list never sees it
        run.conn.execute("INSERT INTO t VALUES (1, 'conn', now())")
        run.connect().execute("INSERT INTO t VALUES (2, 'connect', ?)", [datetime.now()])
        duckdb.connect(run.path).execute("INSERT INTO t VALUES (3, 'path', current_timestamp)")
        engine = sa.create_engine(run.url)
        with engine.begin() as c:
            c.execute(sa.text("INSERT INTO t VALUES (4, 'url', now())"))
        engine.dispose()
        run.state.set("watermark", run.now.isoformat())
        assert run.state.get("watermark") == run.now.isoformat()

    spec = one_window("kill")
    sb = backend.create()
    try:
        sb.prepare(spec)
        rec = Env(spec, sb, Dataset({}), load).execute(1, RunStep(0, AT), 1, AT, None)
        assert rec.outcome == "ok", rec.error + rec.tb
        _, rows = sb.query("SELECT id, v, loaded_at FROM t ORDER BY id")
    finally:
        sb.close()
    assert pids == []
    assert [r[:2] for r in rows] == [(1, "conn"), (2, "connect"), (3, "path"), (4, "url")]
    # Python's clock and SQL's read the run's time in the child too
    # the clock ticks from the run's time: every stamp, Python's or SQL's, lies just after it, in order
    stamps = [r[2].replace(tzinfo=None) for r in rows]
    assert all(AT <= t < AT + timedelta(seconds=30) for t in stamps), stamps
    assert stamps == sorted(stamps)
    kinds = [b.kind for b in rec.trace]
    assert kinds.count("connect") >= 3 and rec.boundaries == len(rec.trace)


def test_the_crash_mode_is_checked() -> None:
    with pytest.raises(idemtest.SpecError, match=r"crash='kil' is not a crash mode; use crash='raise' .* or crash='kill'"):
        one_window("kil")
    with pytest.raises(idemtest.SpecError, match=r"crash=None is not a crash mode"):
        one_window(None)  # type: ignore[arg-type]
    with pytest.raises(idemtest.SpecError, match=r"crash='kill' does not support concurrent runs yet .* use crash='raise' for concurrency"):
        Spec(sources=[], targets=[Target("t")], schedule=hourly("2026-01-01", 2), crash="kill", concurrency="same-partition")
    with pytest.raises(idemtest.SpecError, match=r"crash='kill' does not support concurrent runs yet"):
        Spec(sources=[], targets=[Target("t")], schedule=hourly("2026-01-01", 2), crash="kill", exercise=["crash", "concurrent"])
    # at the defaults, kill mode leaves concurrent pairs out rather than refusing the spec
    spec = Spec(sources=[], targets=[Target("t")], schedule=hourly("2026-01-01", 2), crash="kill")
    assert "concurrent" not in spec.exercise and spec.with_crash("kill") is spec
    with pytest.raises(idemtest.SpecError, match="crash='kill' does not support concurrent runs"):
        Spec(sources=[], targets=[Target("t")], schedule=hourly("2026-01-01", 2), concurrency="same-partition").with_crash("kill")


# --- whole checks --------------------------------------------------------------------

EVENTS = Source("events", columns={"id": "BIGINT", "ts": "TIMESTAMP", "v": "INTEGER"}, key="id", event_time="ts", updates=False, max_rows=4)
PIDS: list[int] = []


def check_spec(crash: str, windows: int = 2) -> Spec:
    # crashes and retries only: what kill mode changes (and few attempts, each a process)
    return Spec(sources=[EVENTS], targets=[Target("out", key="id")], schedule=hourly("2026-01-01", windows), setup=SETUP, crash=crash, exercise=["crash", "duplicate"])  # type: ignore[arg-type]


def replace_window(run: Any) -> None:
    """Correct: the window's delete and insert commit together."""
    PIDS.append(os.getpid())
    c = run.conn
    c.execute("BEGIN")
    c.execute("DELETE FROM out WHERE ts >= ? AND ts < ?", [run.window.start, run.window.end])
    c.execute("INSERT INTO out SELECT * FROM events WHERE ts >= ? AND ts < ?", [run.window.start, run.window.end])
    c.execute("COMMIT")


def replace_window_in_two_transactions(run: Any) -> None:
    """Buggy: a crash between the two commits leaves the window empty until the retry."""
    PIDS.append(os.getpid())
    c = run.conn
    c.execute("BEGIN")
    c.execute("DELETE FROM out WHERE ts >= ? AND ts < ?", [run.window.start, run.window.end])
    c.execute("COMMIT")
    c.execute("BEGIN")
    c.execute("INSERT INTO out SELECT * FROM events WHERE ts >= ? AND ts < ?", [run.window.start, run.window.end])
    c.execute("COMMIT")


def test_a_correct_transactional_load_passes_in_kill_mode() -> None:
    PIDS.clear()
    stats = idemtest.verify(check_spec("kill", windows=1), replace_window, examples=1, systematic_max=8, seed=1)
    assert stats.crashes > 0 and stats.runs > stats.crashes
    assert PIDS == []  # every attempt ran in a child


def test_delete_then_insert_in_two_transactions_is_caught_and_replays_exactly_in_kill_mode(tmp_path: Path) -> None:
    PIDS.clear()
    with pytest.raises(idemtest.IdempotencyViolation) as found:
        idemtest.verify(check_spec("kill", windows=1), replace_window_in_two_transactions, examples=1, failures_dir=tmp_path, seed=1)
    first = found.value
    assert first.prop == "P3" and "crash='kill'" in first.report
    saved = json.loads(Path(first.saved).read_text())
    assert saved["crash"] == "kill"
    assert PIDS == []
    # replayed with a raise-mode spec: the file's mode wins, and the attempts are the same
    with pytest.raises(idemtest.IdempotencyViolation) as again:
        idemtest.replay(first.saved, check_spec("raise", windows=1), replace_window_in_two_transactions)
    assert PIDS == []  # replayed in child processes too
    assert again.value.finding.headline == first.finding.headline
    assert [a.describe() for a in again.value.attempts] == [a.describe() for a in first.attempts]


def test_a_load_calling_os_exit_is_a_clear_error_and_pytest_goes_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_exits=textwrap.dedent(
            '''
            import os
            import idemtest
            from idemtest import Spec, Target, hourly

            spec = Spec(sources=[], targets=[Target("t")], schedule=hourly("2026-01-01", 1), setup="CREATE TABLE t (id BIGINT)", exercise=["crash"])

            @idemtest.check(spec)
            def test_exits(run):
                run.conn.execute("INSERT INTO t VALUES (1)")
                os._exit(3)

            @idemtest.check(spec)
            def test_fine(run):
                run.conn.execute("DELETE FROM t")
                run.conn.execute("INSERT INTO t VALUES (1)")
            '''
        )
    )
    result = pytester.runpytest("--idempotency", "--idem-crash", "kill", "--idem-examples", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*the load's process exited with code 3 at boundary 1 (execute: INSERT INTO t VALUES (1))*"])
    result.stdout.fnmatch_lines(["crash='kill': 2 check(s) ran each attempt in a child process killed at its crash point; concurrent runs are not played*"])


def test_a_bad_crash_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nidem_crash = kil\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest("--idempotency", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*idem_crash='kil': use 'raise'*or 'kill'*"])


def test_a_reader_samples_the_child_at_every_boundary_for_p4(backend: DuckDBBackend) -> None:
    """Atomic targets are sampled in the child (DuckDB's file lock admits one process)
    and judged in the parent: a delete and an insert committed apart are seen half-written."""
    spec = Spec(sources=[], targets=[Target("t", key="id", atomic=True, partition_by="v")], schedule=hourly("2026-01-01", 1), setup=SETUP, crash="kill")

    def load(run: Any) -> None:
        run.conn.execute("DELETE FROM t WHERE v = 'p'")
        run.conn.execute("INSERT INTO t VALUES (1, 'p', NULL), (2, 'p', NULL)")

    sb = backend.create()
    try:
        sb.prepare(spec)
        sb.execute("INSERT INTO t VALUES (1, 'p', NULL), (2, 'p', NULL)")
        env = Env(spec, sb, Dataset({}), load)
        sampler = env.sampler()
        assert sampler is not None
        rec = env.execute(1, RunStep(0, AT), 1, AT, None, sampler)
        assert rec.outcome == "ok" and len(sampler.samples) == 2
        finding = sampler.check()
    finally:
        sb.close()
    assert finding is not None and finding.prop == "P4" and "half-written" in finding.headline and "before statement 2" in finding.headline


def test_the_ini_crash_mode_overrides_the_spec(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nidem_crash = kill\n")
    pytester.makepyfile(
        test_mode=textwrap.dedent(
            '''
            import os
            import idemtest
            from idemtest import Spec, Target, hourly

            PYTEST = os.getpid()
            spec = Spec(sources=[], targets=[Target("t")], schedule=hourly("2026-01-01", 1), setup="CREATE TABLE t (id BIGINT)",
                        exercise=["crash"], crash="raise")

            @idemtest.check(spec)
            def test_runs_in_a_child(run):
                assert os.getpid() != PYTEST, "the attempt ran in pytest's own process"
                run.conn.execute("DELETE FROM t")
                run.conn.execute("INSERT INTO t VALUES (1)")
            '''
        )
    )
    pytester.runpytest("--idempotency", "--idem-examples", "1", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.runpytest("--idempotency", "--idem-crash", "raise", "-p", "no:cacheprovider").assert_outcomes(failed=1)


LOADS = Source("events", columns={"id": "BIGINT", "ts": "TIMESTAMP", "v": "INTEGER"}, key="id", event_time="ts", updates=False, append_only=True, max_rows=3)


def run_job(job: Any) -> None:
    """A library-style job wrapper (dlt's shape): on the way out it waits for the job
    to be marked done, which after a crash it never is."""
    import threading

    done = threading.Event()
    try:
        job()
        done.set()
    finally:
        if not done.is_set():
            done.wait()


def data_then_load_record(run: Any) -> None:
    """Buggy (dlt-hub/dlt#4052's shape): the rows commit, then the load record; a crash
    in between leaves data without its record, and the retry appends the rows again."""

    def job() -> None:
        c = run.conn
        if c.execute("SELECT count(*) FROM t WHERE v = ?", [run.partition]).fetchone()[0]:
            return  # this window's load is recorded: nothing to do
        c.execute("INSERT INTO out SELECT * FROM events WHERE ts >= ? AND ts < ?", [run.window.start, run.window.end])
        c.execute("INSERT INTO t VALUES (?, ?, NULL)", [run.window.index, run.partition])

    run_job(job)


def test_a_job_wrapper_check_reports_crashed_not_hung_in_kill_mode(tmp_path: Path) -> None:
    spec = Spec(sources=[LOADS], targets=[Target("out", key="id")], schedule=hourly("2026-01-01", 1), setup=SETUP, crash="kill", exercise=["crash"], timeout=5)
    with pytest.raises(idemtest.IdempotencyViolation) as found:
        idemtest.verify(spec, data_then_load_record, examples=1, failures_dir=tmp_path, seed=1)
    report = found.value.report
    assert "CRASHED after statement 2 — execute: INSERT INTO out" in report and "HUNG" not in report


def test_kill_mode_without_fork_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    with pytest.raises(idemtest.SpecError, match=r"crash='kill' runs each attempt in a forked child process, and this platform .* has no os.fork; .* use crash='raise'"):
        idemtest.verify(check_spec("kill", windows=1), replace_window, examples=1)
