"""Executes a scenario against a sandbox, checks P2/P3/P4 along the way, records a trace."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._errors import LoadError
from .clock import frozen_at
from .context import RunContext, State
from .data import Dataset
from .diff import TableDiff, duplicate_keys, lost_rows
from .instrument import Boundary, Controller, Fault, InjectedCrash, activate

if TYPE_CHECKING:
    from .sandbox.base import Sandbox
    from .scenario import RunStep, Scenario
    from .spec import Spec, Window

Snapshot = tuple[list[str], list[tuple[Any, ...]]]


@dataclass
class Stats:
    """What was exercised; the pytest terminal summary prints it."""

    scenarios: int = 0
    runs: int = 0
    crashes: int = 0
    retries: int = 0
    duplicates: int = 0
    backfills: int = 0
    catch_up: int = 0
    late_rows: int = 0
    interleavings: int = 0
    blocked: int = 0
    failures: int = 0
    user_seconds: float = 0.0
    total_seconds: float = 0.0


@dataclass
class Attempt:
    """One execution of the load: what it was asked to do and how it ended."""

    step: int
    window: int
    attempt: int
    now: datetime
    tag: str
    fault: Fault | None
    outcome: str = "ok"  # ok | crash | error | hung
    at: Boundary | None = None
    when: str = ""
    error: str = ""
    tb: str = ""
    boundaries: int = 0
    trace: list[Boundary] = field(default_factory=list)
    user_seconds: float = 0.0
    parallel: bool = False
    blocked: list[Boundary] = field(default_factory=list)  # statements that waited on a database lock

    def describe(self) -> str:
        head = f"attempt {self.attempt} at {self.now.isoformat(sep=' ')}"
        if self.outcome == "crash" and self.at is not None:
            return f"{head}: CRASHED {self.when} statement {self.at.index} — {self.at.describe()}"
        if self.outcome == "crash":
            return f"{head}: CRASHED ({self.when})"
        if self.outcome == "error":
            return f"{head}: FAILED with {self.error}"
        if self.outcome == "hung":
            return f"{head}: HUNG ({self.error})"
        planned = f" (planned {self.fault}, not reached: the run has {self.boundaries} statements)" if self.fault else ""
        return f"{head}: ok, {self.boundaries} statements{planned}"


@dataclass
class Finding:
    """A broken property, with the evidence."""

    prop: str  # P1 | P2 | P3 | P4
    headline: str
    diffs: list[TableDiff] = field(default_factory=list)
    step: int | None = None
    detail: str = ""


@dataclass
class Outcome:
    finding: Finding | None
    attempts: list[Attempt]
    final: dict[str, Snapshot]
    boundaries: dict[int, int] = field(default_factory=dict)
    user_seconds: float = 0.0


class ScenarioFailed(Exception):
    """Internal: a property broke mid-scenario; stops the remaining steps."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.headline)
        self.finding = finding


class Env:
    """One sandbox plus the source-data timeline that feeds it."""

    def __init__(self, spec: Spec, sandbox: Sandbox, data: Dataset, load: Callable[[RunContext], Any]) -> None:
        self.spec = spec
        self.sandbox = sandbox
        self.data = data
        self.load = load
        self.windows: dict[int, Window] = {w.index: w for w in spec.all_windows}
        self._synced: dict[str, int] = {}
        self.timeout = spec.timeout_seconds
        self.keyed = [t for t in spec.targets if t.keys]

    def sync(self, t: datetime | None) -> None:
        """Make every source read as it does at simulated time t (None: all arrived)."""
        for s in self.spec.sources:
            arrived = sum(1 for v in self.data.sources.get(s.table, []) if t is None or v.arrival <= t)
            if self._synced.get(s.table) == arrived:
                continue
            rows = self.data.visible(s, t)
            if s.landing is not None:
                from .landing import write_landing

                write_landing(self.sandbox, s, self.data, t)
            else:
                self.sandbox.load_source(s, rows)
            self._synced[s.table] = arrived

    def sampler(self) -> Any:
        """A P4 reader for this run, when any target opted in."""
        if not any(t.atomic for t in self.spec.targets):
            return None
        from .visibility import VisibilitySampler

        return VisibilitySampler(self)

    def snapshot_all(self) -> dict[str, Snapshot]:
        return {t.label: self.sandbox.snapshot(t) for t in self.spec.targets}

    def snapshot_keyed(self) -> dict[str, Snapshot]:
        return {t.label: self.sandbox.snapshot(t) for t in self.keyed}

    # --- one attempt -----------------------------------------------------
    def new_attempt(self, step_no: int, run: RunStep, attempt: int, now: datetime, fault: Fault | None, gate: Any = None) -> tuple[Attempt, Controller, RunContext]:
        label = f"window {run.window} attempt {attempt}"
        ctl = Controller(label, fault, gate)
        conn = self.sandbox.connect(ctl, kind=None)
        window = self.windows[run.window]
        ctx = RunContext(conn, now, window, attempt, State(conn, self.sandbox.param), self.spec, self.sandbox, ctl, label)
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
            finally:
                rec.user_seconds = time.perf_counter() - t0

    def finish(self, rec: Attempt, ctl: Controller) -> None:
        ctl.close_all()  # the process ends: its connections drop, open transactions are lost
        rec.boundaries = ctl.count
        rec.trace = ctl.trace

    def execute(self, step_no: int, run: RunStep, attempt: int, now: datetime, fault: Fault | None, sampler: Any = None) -> Attempt:
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
    from .scenario import ParallelStep

    env = Env(spec, sandbox, scenario.data, load)
    attempts: list[Attempt] = []
    clock = spec.schedule.start
    last = env.snapshot_keyed() if env.keyed else {}
    finding: Finding | None = None
    try:
        for step_no, step in enumerate(scenario.steps, 1):
            clock = max(clock, step.at)
            if isinstance(step, ParallelStep):
                from .scheduler import run_parallel

                clock, last = run_parallel(env, step_no, step, clock, attempts, last, stats)
            else:
                clock, last = run_with_retries(env, step_no, step, clock, attempts, last, stats)
    except ScenarioFailed as f:
        finding = f.finding
    final = env.snapshot_all() if finding is None else {}
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
            now = now + spec.retry_delta
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
    raise ScenarioFailed(
        Finding(
            "P1",
            f"the run of window {run.window} failed on all {max_attempts} attempts, so the outcome cannot match a clean run "
            f"(last: {attempts[-1].error or attempts[-1].outcome})",
            step=step_no,
            detail=attempts[-1].tb,
        )
    )


def check_visibility(sampler: Any, rec: Attempt) -> None:
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
    for t in env.keyed:
        dup = duplicate_keys(t.label, t.keys, after[t.label])
        if dup.duplicate_keys:
            raise ScenarioFailed(Finding("P2", f"duplicate keys in {t.label} after step {rec.step} ({rec.tag} run of window {rec.window}, attempt {rec.attempt})", [dup], rec.step))
        if rec.outcome != "ok" and t.label in before:
            lost = lost_rows(t.label, t.keys, before[t.label], after[t.label])
            if lost.missing:
                raise ScenarioFailed(
                    Finding(
                        "P3",
                        f"rows of {t.label} committed before step {rec.step} are gone after its attempt {rec.attempt} failed "
                        "(a reader sees a gap until the retry)",
                        [lost],
                        rec.step,
                    )
                )
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
    from .scenario import RunStep

    env = Env(spec, sandbox, data, load)
    attempts: list[Attempt] = []
    if spec.oracle == "all-arrived":
        env.sync(None)
    for i, w in enumerate(spec.all_windows, 1):
        if spec.oracle == "same-arrivals":
            env.sync(w.end)
        rec = env.execute(i, RunStep(w.index, w.end), 1, w.end, None)
        attempts.append(rec)
        if rec.outcome != "ok":
            reason = rec.error if rec.outcome in ("error", "hung") else "an injected crash escaped"
            raise LoadError(
                f"the load fails even without faults: the clean run of window {w.index} {w} (now={w.end.isoformat(sep=' ')}) "
                f"{'hung' if rec.outcome == 'hung' else 'raised'} {reason}\n"
                + (f"\n{rec.tb}\n" if rec.tb else "")
                + "\nfix the load (or the spec) so that one ordinary run succeeds; idemtest only judges faults once a clean run works"
                + dialect_hint(spec, sandbox, rec.error)
                + ("; raise Spec(timeout=...) if the load is just slow" if rec.outcome == "hung" else "")
            )
    return Outcome(None, attempts, env.snapshot_all(), {a.window: a.boundaries for a in attempts}, sum(a.user_seconds for a in attempts))
