"""Plays schedules against a sandbox: the clean run (the oracle), a scenario's
steps with retries as an orchestrator makes them, and concurrent steps under the
interleaving scheduler. P2/P3 are judged after every attempt, P4 after a run."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._errors import (
    ForeignDatabaseError,
    InjectedCrash,
    LoadError,
    OpenTransactionError,
    ScenarioFailed,
    SpecError,
    TargetUnreadable,
    UninstrumentedError,
)
from .._extras import missing_extra
from ..context import RunContext, State
from ..instrument import Controller, activate, begin_run, end_run
from .clock import frozen_at
from .interleave import Interleaver
from .model import (
    Attempt,
    Dataset,
    Fault,
    Finding,
    Outcome,
    ParallelStep,
    RunStep,
    Scenario,
    Snapshot,
    Stats,
)
from .properties import VisibilitySampler, all_attempts_failed, judge_attempt

if TYPE_CHECKING:
    from ..sandbox.base import Sandbox
    from ..spec import Spec, Target, Window


CRASH_GRACE = 0.05  # seconds the load's thread gets to unwind after the crash before it is abandoned


def stop_worker(ctl: Controller, worker: threading.Thread) -> None:
    """Ctrl-C reached the main thread while the load runs in `worker`: cut its statements
    off and let it end before the sandbox is dropped, or it would go on writing (and
    leave a file) in a sandbox that is being removed."""
    if worker.is_alive():
        ctl.interrupt_all()
        worker.join(2.0)


class Env:
    """One sandbox plus the source-data timeline that feeds it."""

    def __init__(self, spec: Spec, sandbox: Sandbox, data: Dataset, load: Callable[[RunContext], Any]) -> None:
        self.spec = spec
        self.sandbox = sandbox
        self.data = data
        self.load = load
        self.windows: dict[int, Window] = {w.index: w for w in spec.all_windows}
        self._synced: dict[str, int] = {}
        self.timeout = spec.timeout.total_seconds()
        self.keyed = [t for t in spec.targets if t.keys]
        sandbox.note_targets(spec.targets)
        # the clean run (the oracle): its RunContexts say so (RunContext.clean), and a
        # transaction it leaves open is an error (after_load)
        self.clean = False

    def sync(self, t: datetime | None) -> None:
        """Make every source read as it does at simulated time t (None: all arrived)."""
        if self.sandbox.landing is None and any(t.file is not None for t in self.spec.targets):
            from ..sandbox.landing import landing_dir

            landing_dir(self.sandbox)  # run.landing exists for a load that only writes files
        for s in self.spec.sources:
            arrived = self.data.arrived(s.table, t)
            if self._synced.get(s.table) == arrived:
                continue
            if s.landing is not None:
                from ..sandbox.landing import write_landing

                write_landing(self.sandbox, s, self.data, t, self.spec.all_windows)
            else:
                self.sandbox.load_source(s, self.data.visible(s, t))
            self._synced[s.table] = arrived

    def sampler(self) -> VisibilitySampler | None:
        """A P4 reader for this run, when any target opted in."""
        if not any(t.atomic for t in self.spec.targets):
            return None
        return VisibilitySampler(self.spec.targets, self.sandbox.snapshot)

    def read(self, target: Target) -> Snapshot:
        try:
            return self.sandbox.snapshot(target)
        except Exception as e:
            # the load dropped or broke its own target: say which, not a driver traceback
            raise TargetUnreadable(target.label, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from None

    def snapshot_all(self) -> dict[str, Snapshot]:
        return {t.label: self.read(t) for t in self.spec.targets}

    def snapshot_keyed(self) -> dict[str, Snapshot]:
        return {t.label: self.read(t) for t in self.keyed}

    # --- one attempt -----------------------------------------------------
    def new_attempt(self, step_no: int, run: RunStep, attempt: int, now: datetime, fault: Fault | None, gate: Any = None) -> tuple[Attempt, Controller, RunContext]:
        label = f"window {run.window} attempt {attempt}"
        ctl = Controller(label, fault, gate)
        ctl.allow_foreign = self.spec.allow_foreign
        conn = self.sandbox.connect(ctl, kind=None)
        begin_run(ctl)
        window = self.windows[run.window]
        ctx = RunContext(conn, now, window, attempt, State(conn, self.sandbox.param), self.spec, self.sandbox, ctl, label, clean=self.clean)
        rec = Attempt(step_no, run.window, attempt, now, run.tag, fault)
        return rec, ctl, ctx

    def work(self, rec: Attempt, ctl: Controller, ctx: RunContext) -> None:
        """Body of the worker thread: the user's load, under the run's controller.

        What it learns goes into `rec` unless the harness abandoned the thread
        (the process died at the crash point and user code did not unwind)."""
        ctl.home = threading.get_ident()
        out = Attempt(rec.step, rec.window, rec.attempt, rec.now, rec.tag, rec.fault)
        with activate(ctl):
            t0 = time.perf_counter()
            try:
                self.load(ctx)
                after_load(ctl, transactions=self.clean)
            except InjectedCrash as c:
                out.outcome = "crash"
                out.at = c.boundary
                out.when = c.when
            except BaseException as e:
                if ctl.crashed is not None:
                    # user code caught the crash and raised something else: the process is still dead
                    out.outcome, out.at, out.when = "crash", ctl.crashed.boundary, ctl.crashed.when
                else:
                    # a refused foreign connect explains the run, whatever the load raised after catching it
                    e = ctl.misuse or e
                    out.outcome = "error"
                    out.error = f"{type(e).__name__}: {str(e).strip()}"
                    out.tb = user_traceback(e)
                    out.exception = e
            finally:
                if out.outcome == "ok" and ctl.crashed is not None:
                    # the crash fired (maybe on a worker thread) and user code swallowed it: the process is dead all the same
                    out.outcome, out.at, out.when = "crash", ctl.crashed.boundary, ctl.crashed.when
                with ctl._lock:
                    if not ctl.abandoned:
                        rec.outcome, rec.at, rec.when = out.outcome, out.at, out.when
                        rec.error, rec.tb, rec.exception = out.error, out.tb, out.exception
                        rec.user_seconds = time.perf_counter() - t0
                ctl.ended.set()

    def settle(self, rec: Attempt, ctl: Controller, worker: threading.Thread, started: float) -> None:
        """After the crash point the process is dead: give the load's thread a moment to
        unwind (for its record), then stop waiting, whatever its `finally` blocks do."""
        if ctl.crashed is None:
            return
        worker.join(CRASH_GRACE)
        if not worker.is_alive():
            return  # it unwound: nothing of the attempt is running, closing its connections is enough
        ctl.interrupt_all()  # statements other threads of the dead process still run are cut off
        with ctl._lock:
            if not ctl.abandoned:
                ctl.abandoned = True
                rec.outcome, rec.at, rec.when = "crash", ctl.crashed.boundary, ctl.crashed.when
                rec.user_seconds = time.perf_counter() - started

    def finish(self, rec: Attempt, ctl: Controller) -> None:
        ctl.close_all()  # the process ends: its connections drop, open transactions are lost
        end_run(ctl)
        rec.boundaries = ctl.count
        rec.trace = ctl.trace

    @staticmethod
    def raise_unseen(ctl: Controller) -> None:
        if ctl.unseen:
            raise unseen_error(ctl.label, ctl.unseen)

    def check_unseen(self, label: str) -> None:
        """What the database itself tells about connections idemtest did not open."""
        paths = self.sandbox.unseen()
        if paths:
            raise unseen_error(label, paths)

    def execute(self, step_no: int, run: RunStep, attempt: int, now: datetime, fault: Fault | None, sampler: VisibilitySampler | None = None) -> Attempt:
        if self.spec.crash == "kill":
            from .isolate import run_in_child

            with frozen_at(now):  # the forked child inherits the simulated clock
                return run_in_child(self, step_no, run, attempt, now, fault, sampler)
        rec, ctl, ctx = self.new_attempt(step_no, run, attempt, now, fault, gate=sampler.observe if sampler else None)
        try:
            with frozen_at(now):
                worker = threading.Thread(target=self.work, args=(rec, ctl, ctx), daemon=True, name=f"idemtest {ctl.label}")
                started = time.perf_counter()
                worker.start()
                returned = ctl.ended.wait(self.timeout)  # the load returned, or the process died at the crash point
                self.settle(rec, ctl, worker, started)
                if returned and ctl.crashed is None:
                    worker.join(self.timeout)  # `ended` is set just before the thread exits: let it exit
                elif not returned and worker.is_alive() and not ctl.abandoned:
                    ctl.interrupt_all()
                    worker.join(2.0)
                    with ctl._lock:
                        ctl.abandoned = True
                        rec.outcome = "hung"
                        rec.error = f"did not finish within timeout={self.timeout:g}s"
        except KeyboardInterrupt:
            stop_worker(ctl, worker)
            raise
        finally:
            self.finish(rec, ctl)
        self.raise_unseen(ctl)
        return rec


def unseen_error(label: str, paths: list[str]) -> UninstrumentedError:
    return UninstrumentedError(
        f"statements reached the sandbox during {label} on a path idemtest did not instrument, so they were "
        "never crashed and a pass would not mean anything:\n  - " + "\n  - ".join(paths[:5])
        + "\nconnect inside the load through run.conn, run.connect(), run.engine(), duckdb.connect(run.path), "
        "psycopg.connect(run.dsn) / psycopg2.connect(run.dsn) or create_engine(run.url) (threads and pools the load "
        "starts are followed); see README 'Threads, pools and connections'"
    )


def after_load(ctl: Controller, transactions: bool) -> None:
    """What a load that returned may still have done wrong, as errors of its run: a
    foreign connection it caught the refusal of; in the clean run, a transaction it
    left open (the process exit rolls it back, so the oracle would hold nothing and
    every scenario would match it). Under faults an open transaction is judged as in
    production, by what it loses against the clean run."""
    if ctl.crashed is not None or ctl.aborted:
        return  # a crash leaves transactions open on purpose
    if ctl.misuse is not None:
        raise ctl.misuse
    if not transactions:
        return
    where = ctl.open_transaction()
    if where is not None:
        raise OpenTransactionError(
            f"the load left {where}; commit it (or use `with conn:` / autocommit): when the process ends, "
            "an open transaction is rolled back and nothing it wrote lands, so the check would pass a load that loads nothing"
        )


def user_traceback(e: BaseException, limit: int = 12) -> str:
    """The traceback without idemtest's own frames."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/idemtest/" not in f.filename.replace("\\", "/") or "/examples/" in f.filename]
    lines = traceback.format_list(frames[-limit:])
    return "".join(lines) + f"{type(e).__name__}: {e}"


def run_scenario(spec: Spec, sandbox: Sandbox, load: Callable[[RunContext], Any], scenario: Scenario, stats: Stats | None = None) -> Outcome:
    """Play the scenario's steps; stop at the first broken property."""
    env = Env(spec, sandbox, scenario.data, load)
    attempts: list[Attempt] = []
    clock = spec.schedule.start
    last = env.snapshot_keyed() if env.keyed else {}
    finding: Finding | None = None
    step_no = 0
    try:
        for step_no, step in enumerate(scenario.steps, 1):
            clock = max(clock, step.at)
            if isinstance(step, ParallelStep):
                clock, last = run_parallel(env, step_no, step, clock, attempts, last, stats)
            else:
                clock, last = run_with_retries(env, step_no, step, clock, attempts, last, stats)
    except ScenarioFailed as f:
        finding = f.finding
    except TargetUnreadable as u:
        last_attempt = attempts[-1] if attempts else None
        failed = last_attempt is not None and last_attempt.outcome != "ok"
        finding = Finding(
            "P3" if failed else "P1",
            f"target {u.target} cannot be read after step {step_no}"
            + (f" (its attempt {last_attempt.attempt} failed: a reader finds no table until the retry)" if failed and last_attempt else "")
            + f": {u.error}",
            step=step_no,
        )
    env.check_unseen("the scenario")
    if finding is None:
        try:
            final = env.snapshot_all()
        except TargetUnreadable as u:
            finding, final = Finding("P1", f"target {u.target} cannot be read after the scenario: {u.error}", step=None), {}
    else:
        final = {}
    return Outcome(finding, attempts, final, user_seconds=sum(a.user_seconds for a in attempts))


def run_with_retries(
    env: Env, step_no: int, run: RunStep, clock: datetime, attempts: list[Attempt], last: dict[str, Snapshot], stats: Stats | None, first_attempt: int = 1
) -> tuple[datetime, dict[str, Snapshot]]:
    """One scheduled run, retried after crashes and errors as an orchestrator would."""
    spec = env.spec
    max_attempts = max(spec.retries + 1, len(run.faults) + 1)
    now = clock
    for attempt in range(first_attempt, max_attempts + 1):
        if attempt > 1:
            now = now + spec.retry_delay
            if stats:
                stats.retries += 1
        fault = run.faults[attempt - 1] if attempt - 1 < len(run.faults) else None
        env.sync(now)
        sampler = env.sampler()
        rec = env.execute(step_no, run, attempt, now, fault, sampler)
        attempts.append(rec)
        if stats:
            stats.runs += 1
            stats.crashes += rec.outcome == "crash"
        last = check_after_attempt(env, rec, last)
        if rec.outcome == "ok":
            check_visibility(sampler, rec)
            return now, last
    raise ScenarioFailed(all_attempts_failed(run.window, step_no, [a for a in attempts if a.step == step_no and a.window == run.window]))


def check_visibility(sampler: VisibilitySampler | None, rec: Attempt) -> None:
    if sampler is None:
        return
    finding = sampler.check()
    if finding is not None:
        finding.step = rec.step
        raise ScenarioFailed(finding)


def check_after_attempt(env: Env, rec: Attempt, before: dict[str, Snapshot]) -> dict[str, Snapshot]:
    """P2 after every attempt; P3 after a failed one."""
    if not env.keyed:
        return before
    after = env.snapshot_keyed()
    finding = judge_attempt(env.keyed, rec, before, after, gaps=not any(s.snapshot for s in env.spec.sources))
    if finding is not None:
        raise ScenarioFailed(finding)
    return after


def dialect_hint(spec: Spec, sandbox: Sandbox, error: str) -> str:
    """SQL written for one engine failing on another deserves a pointer to Spec(dialect=...)."""
    if spec.dialect is not None:
        return ""
    markers = ("Syntax", "Parser", "UndefinedFunction", "Catalog Error", "does not exist", "not supported")
    if any(m.lower() in error.lower() for m in markers):
        other = "duckdb" if sandbox.dialect == "postgres" else "postgres"
        return (
            f"\nthe sandbox is {sandbox.dialect}: if this SQL is written for {other}, declare Spec(dialect={other!r}) "
            f"so the check is skipped (with a reason) on other sandboxes, or run it with --idem-db for a {other} sandbox"
        )
    return ""


def clean_run(spec: Spec, sandbox: Sandbox, load: Callable[[RunContext], Any], data: Dataset) -> Outcome:
    """The oracle: every window once, in order, at its end time, no faults.

    all-arrived: every source row is present from the start; same-arrivals: the
    sources grow along the same arrival timeline as the scenario."""
    env = Env(spec, sandbox, data, load)
    env.clean = True
    attempts: list[Attempt] = []
    if spec.oracle == "all-arrived":
        env.sync(None)
    for i, w in enumerate(spec.all_windows, 1):
        at = spec.run_time(w)
        if spec.oracle == "same-arrivals":
            env.sync(at)
        rec = env.execute(i, RunStep(w.index, at), 1, at, None)
        attempts.append(rec)
        if rec.outcome != "ok":
            extra = missing_extra(rec.exception) if rec.exception is not None else None
            if extra is not None:
                raise extra  # a driver the load needs is not installed: name the pip command
            reason = rec.error if rec.outcome in ("error", "hung") else "an injected crash escaped"
            if isinstance(rec.exception, (ForeignDatabaseError, OpenTransactionError)):
                # a misuse the error itself explains: not wrapped in "the load fails" and a traceback
                raise type(rec.exception)(f"clean run of window {w.index} {w}: {rec.exception}") from None
            raise LoadError(
                f"the load fails even without faults: the clean run of window {w.index} {w} (now={at.isoformat(sep=' ')}) "
                f"{'hung' if rec.outcome == 'hung' else 'raised'} {reason}\n"
                + (f"\n{rec.tb}\n" if rec.tb else "")
                + "\nfix the load (or the spec) so that one ordinary run succeeds; idemtest only judges faults once a clean run works"
                + dialect_hint(spec, sandbox, rec.error)
                + ("; raise Spec(timeout=...) if the load is just slow" if rec.outcome == "hung" else "")
            )
    env.check_unseen("the clean run")
    try:
        final = env.snapshot_all()
    except TargetUnreadable as u:
        raise LoadError(
            f"target {u.target} cannot be read after the clean run ({u.error}); the load must leave its targets in place — "
            "create them in Spec(setup=...), and if the load rebuilds one, do it with CREATE OR REPLACE or in one transaction"
        ) from None
    for t in spec.targets:
        if t.query is None and t.file is None and sandbox.table_columns(t.table) is None:
            from .._errors import SpecError

            # absent after setup is fine for a table the load creates; absent after a whole clean run is a wrong name
            raise SpecError(
                f"target table {t.table!r} does not exist after setup, and the clean run did not create it either; "
                f"create it in Spec(setup=...) or fix Target({t.table!r})"
            )
    return Outcome(None, attempts, final, {a.window: a.boundaries for a in attempts}, sum(a.user_seconds for a in attempts), reference(env, final))


def reference(env: Env, final: dict[str, Snapshot]) -> dict[str, Snapshot]:
    """P5's reference: each Target(expected=...) query on the sources once every
    row has arrived. Its columns must be the target's: one the target lacks would
    silently drop out of the comparison."""
    targets = [t for t in env.spec.targets if t.expected is not None]
    if not targets:
        return {}
    from .._errors import SpecError
    from ..sandbox.base import expected_sql

    env.sync(None)
    out: dict[str, Snapshot] = {}
    for t in targets:
        try:
            out[t.label] = env.sandbox.query(expected_sql(t, env.sandbox))
        except Exception as e:
            raise SpecError(f"Target({t.table!r}): the expected= query fails after the clean run: {type(e).__name__}: {' '.join(str(e).split())[:300]}; fix Target(expected=...)") from None
        have = final.get(t.label, ([], []))[0]
        unknown = [c for c in out[t.label][0] if c not in have]
        if have and unknown:
            ignored = [c for c in unknown if c in t.ignore]
            raise SpecError(
                f"Target({t.table!r}): the expected= query returns column(s) {unknown} that the target "
                + (f"ignores (ignore={list(t.ignore)})" if ignored else f"does not have (it has {have})")
                + "; select only the target's compared columns in the reference query"
            )
    return out


def run_parallel(env: Env, step_no: int, step: ParallelStep, clock: datetime, attempts: list[Attempt], last: dict[str, Snapshot], stats: Stats | None) -> tuple[datetime, dict[str, Snapshot]]:
    """Run the step's runs at once, then retry the failed ones as the orchestrator would."""
    if env.spec.crash == "kill":
        # Spec refuses concurrency with crash='kill'; only an edited saved scenario gets here
        raise SpecError(f"step {step_no} runs windows concurrently, and crash='kill' does not support concurrent runs yet; use crash='raise' for concurrency")
    now = max(clock, step.at)
    env.sync(now)
    inter = Interleaver(step.choices)
    sampler = env.sampler()
    if sampler is not None:
        inter.hooks.append(sampler.observe)
    started = []
    for run in step.runs:
        fault = run.faults[0] if run.faults else None
        rec, ctl, ctx = env.new_attempt(step_no, run, 1, now, fault, gate=inter.gate)
        rec.parallel = True
        ctl.on_crash.append(inter.done)  # a dead run takes no more turns, whatever its thread still does
        started.append((run, rec, ctl, ctx))

    def body(rec: Attempt, ctl: Controller, ctx: Any) -> None:
        try:
            env.work(rec, ctl, ctx)
        finally:
            inter.done(ctl)

    with frozen_at(now):
        threads = [threading.Thread(target=body, args=(rec, ctl, ctx), daemon=True, name=f"idemtest {ctl.label}") for _, rec, ctl, ctx in started]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        try:
            ok = inter.drive([c for _, _, c, _ in started], time.monotonic() + env.timeout)
        except KeyboardInterrupt:
            for t, (_, _, ctl, _) in zip(threads, started):
                stop_worker(ctl, t)
            raise
        for t, (_, rec, ctl, _) in zip(threads, started):
            env.settle(rec, ctl, t, t0)
        if not ok:
            for _, rec, ctl, _ in started:
                if ctl not in inter.finished:
                    ctl.interrupt_all()
                    with ctl._lock:
                        ctl.abandoned = True
                        rec.outcome, rec.error = "hung", f"did not finish within timeout={env.timeout:g}s while running concurrently"
            for t in threads:
                t.join(2.0)
    for _, rec, ctl, _ in started:
        env.finish(rec, ctl)
        attempts.append(rec)
    for _, _, ctl, _ in started:
        env.raise_unseen(ctl)
    if stats:
        stats.interleavings += 1
        stats.runs += len(started)
        stats.blocked += len(inter.blocked)
        stats.crashes += sum(rec.outcome == "crash" for _, rec, _, _ in started)
    for _, rec, _, _ in started:
        last = check_after_attempt(env, rec, last)
    if all(rec.outcome == "ok" for _, rec, _, _ in started):
        check_visibility(sampler, started[0][1])
    for label, b in inter.blocked:
        for _, rec, ctl, _ in started:
            if ctl.label == label:
                rec.blocked.append(b)
    clock = now
    for run, rec, _, _ in started:
        if rec.outcome != "ok":
            clock, last = run_with_retries(env, step_no, run, clock, attempts, last, stats, first_attempt=2)
    return clock, last
