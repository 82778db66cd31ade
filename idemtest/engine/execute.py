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

from .._errors import InjectedCrash, LoadError, ScenarioFailed, TargetUnreadable
from .._extras import missing_extra
from ..context import RunContext, State
from ..instrument import Controller, activate
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
        self.clean = False  # set by clean_run: its RunContexts say so (RunContext.clean)

    def sync(self, t: datetime | None) -> None:
        """Make every source read as it does at simulated time t (None: all arrived)."""
        for s in self.spec.sources:
            arrived = self.data.arrived(s.table, t)
            if self._synced.get(s.table) == arrived:
                continue
            if s.landing is not None:
                from ..sandbox.landing import write_landing

                write_landing(self.sandbox, s, self.data, t)
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
        conn = self.sandbox.connect(ctl, kind=None)
        window = self.windows[run.window]
        ctx = RunContext(conn, now, window, attempt, State(conn, self.sandbox.param), self.spec, self.sandbox, ctl, label, clean=self.clean)
        rec = Attempt(step_no, run.window, attempt, now, run.tag, fault)
        return rec, ctl, ctx

    def work(self, rec: Attempt, ctl: Controller, ctx: RunContext) -> None:
        """Body of the worker thread: the user's load, under the run's controller."""
        with activate(ctl):
            t0 = time.perf_counter()
            try:
                self.load(ctx)
            except InjectedCrash as c:
                rec.outcome = "crash"
                rec.at = c.boundary
                rec.when = c.when
            except BaseException as e:
                if ctl.crashed is not None:
                    # user code caught the crash and raised something else: the process is still dead
                    rec.outcome, rec.at, rec.when = "crash", ctl.crashed.boundary, ctl.crashed.when
                else:
                    rec.outcome = "error"
                    rec.error = f"{type(e).__name__}: {str(e).strip()}"
                    rec.tb = user_traceback(e)
                    rec.exception = e
            finally:
                rec.user_seconds = time.perf_counter() - t0

    def finish(self, rec: Attempt, ctl: Controller) -> None:
        ctl.close_all()  # the process ends: its connections drop, open transactions are lost
        rec.boundaries = ctl.count
        rec.trace = ctl.trace

    def execute(self, step_no: int, run: RunStep, attempt: int, now: datetime, fault: Fault | None, sampler: VisibilitySampler | None = None) -> Attempt:
        rec, ctl, ctx = self.new_attempt(step_no, run, attempt, now, fault, gate=sampler.observe if sampler else None)
        with frozen_at(now):
            worker = threading.Thread(target=self.work, args=(rec, ctl, ctx), daemon=True, name=f"idemtest {ctl.label}")
            worker.start()
            worker.join(self.timeout)
            if worker.is_alive():
                ctl.interrupt_all()
                worker.join(2.0)
                rec.outcome = "hung"
                rec.error = f"did not finish within timeout={self.timeout:g}s"
        self.finish(rec, ctl)
        return rec


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
    finding = judge_attempt(env.keyed, rec, before, after)
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
        if spec.oracle == "same-arrivals":
            env.sync(w.end)
        rec = env.execute(i, RunStep(w.index, w.end), 1, w.end, None)
        attempts.append(rec)
        if rec.outcome != "ok":
            extra = missing_extra(rec.exception) if rec.exception is not None else None
            if extra is not None:
                raise extra  # a driver the load needs is not installed: name the pip command
            reason = rec.error if rec.outcome in ("error", "hung") else "an injected crash escaped"
            raise LoadError(
                f"the load fails even without faults: the clean run of window {w.index} {w} (now={w.end.isoformat(sep=' ')}) "
                f"{'hung' if rec.outcome == 'hung' else 'raised'} {reason}\n"
                + (f"\n{rec.tb}\n" if rec.tb else "")
                + "\nfix the load (or the spec) so that one ordinary run succeeds; idemtest only judges faults once a clean run works"
                + dialect_hint(spec, sandbox, rec.error)
                + ("; raise Spec(timeout=...) if the load is just slow" if rec.outcome == "hung" else "")
            )
    try:
        final = env.snapshot_all()
    except TargetUnreadable as u:
        raise LoadError(
            f"target {u.target} cannot be read after the clean run ({u.error}); the load must leave its targets in place — "
            "create them in Spec(setup=...), and if the load rebuilds one, do it with CREATE OR REPLACE or in one transaction"
        ) from None
    return Outcome(None, attempts, final, {a.window: a.boundaries for a in attempts}, sum(a.user_seconds for a in attempts))


def run_parallel(env: Env, step_no: int, step: ParallelStep, clock: datetime, attempts: list[Attempt], last: dict[str, Snapshot], stats: Stats | None) -> tuple[datetime, dict[str, Snapshot]]:
    """Run the step's runs at once, then retry the failed ones as the orchestrator would."""
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
        started.append((run, rec, ctl, ctx))

    def body(rec: Attempt, ctl: Controller, ctx: Any) -> None:
        try:
            env.work(rec, ctl, ctx)
        finally:
            inter.done(ctl)

    with frozen_at(now):
        threads = [threading.Thread(target=body, args=(rec, ctl, ctx), daemon=True, name=f"idemtest {ctl.label}") for _, rec, ctl, ctx in started]
        for t in threads:
            t.start()
        ok = inter.drive([c for _, _, c, _ in started], time.monotonic() + env.timeout)
        if not ok:
            for _, rec, ctl, _ in started:
                if ctl not in inter.finished:
                    ctl.interrupt_all()
                    rec.outcome, rec.error = "hung", f"did not finish within timeout={env.timeout:g}s while running concurrently"
            for t in threads:
                t.join(2.0)
    for _, rec, ctl, _ in started:
        env.finish(rec, ctl)
        attempts.append(rec)
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
