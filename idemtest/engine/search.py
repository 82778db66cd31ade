"""The core check, independent of pytest: generate, run, judge, shrink, save, replay."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _defaults, _json
from .._errors import (
    AbortSearch,
    CheckTimedOut,
    ExampleFailed,
    IdempotencyViolation,
    IdemtestError,
    ReplayError,
    SpecError,
    StopSearch,
)
from .execute import clean_run, run_scenario
from .model import Dataset, Finding, Outcome, Scenario, Stats
from .properties import judge_determinism, judge_outcome, judge_reference

if TYPE_CHECKING:
    from ..context import RunContext
    from ..sandbox.base import Backend, Sandbox
    from ..spec import Spec
    from .systematic import PassResult


@dataclass
class Config:
    """How a check runs; the pytest plugin fills it from options and ini."""

    examples: int = _defaults.EXAMPLES
    db: str = _defaults.DB
    replay: str | None = None
    failures_dir: Path = _defaults.FAILURES_DIR
    test_id: str | None = None
    stats: Stats = field(default_factory=Stats)
    backend: Backend | None = None
    database: Any = "default"  # Hypothesis example database; None disables it
    shrink_seconds: float = _defaults.SHRINK_SECONDS
    base_dir: Path | None = None  # where a relative Spec(setup="x.sql") is looked for: the test module's folder
    systematic: bool = True  # the single-fault pass before the random search
    systematic_max: int | None = None  # its cap (a larger plan is thinned evenly); None: _defaults.SYSTEMATIC_MAX
    seed: int | None = None  # seeds the random search (as @hypothesis.seed does); None: Hypothesis decides
    crash: str | None = None  # --idem-crash: overrides Spec(crash=...); None: the spec decides
    max_seconds: float | None = None  # the check's time budget (`--idem-max-seconds`); None: unbounded

    def __repr__(self) -> str:
        # shown by `pytest -l` in tracebacks: the DSN's password must not be
        from ..sandbox import redact

        return f"Config(examples={self.examples}, db={redact(self.db)!r}, replay={self.replay!r}, test_id={self.test_id!r})"


def check_load_signature(load: Callable[..., Any]) -> None:
    if not callable(load):
        raise SpecError(f"the load must be a function taking the run context, got {load!r}")
    try:
        sig = inspect.signature(load)
    except (TypeError, ValueError):
        return
    required = [p for p in sig.parameters.values() if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_varargs = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
    positional = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(required) > 1 or (not positional and not takes_varargs):
        name = getattr(load, "__name__", repr(load))
        raise SpecError(
            f"load function {name}{sig} has the wrong signature: idemtest calls it with one argument, the run context; "
            f"write it as `def {name}(run): ...` and read run.conn, run.now, run.window, run.attempt, run.state"
        )


def _dialect_ok(spec: Spec, backend: Backend) -> None:
    if spec.dialect is not None and spec.dialect != backend.dialect:
        from ..sandbox import option_for

        raise SpecError(f"this spec declares dialect={spec.dialect!r} but the sandbox is {backend.describe()}; run it with {option_for(spec.dialect)}")


class Checker:
    """Runs one spec + load under generated or replayed scenarios."""

    def __init__(self, spec: Spec, load: Callable[[RunContext], Any], config: Config) -> None:
        check_load_signature(load)
        if spec.base_dir is None and config.base_dir is not None:
            spec = spec.located(config.base_dir)
        if config.crash is not None:
            spec = spec.with_crash(config.crash)
        self.spec = spec
        self.load = load
        self.config = config
        self.stats = config.stats
        self._own_backend = config.backend is None
        if config.backend is None:
            from ..sandbox import get_backend

            config.backend = get_backend(config.db)
        self.backend: Backend = config.backend
        _dialect_ok(spec, self.backend)
        self.windows = spec.all_windows
        self._file_backend: Backend | None = None  # crash="kill" on in-memory DuckDB: files instead
        self._validated = False
        self._determinism_checked = False
        self._clean_cache: dict[str, Outcome] = {}
        self.first_failure_at: int | None = None  # examples generated until the first failure
        self.found_by: str | None = None  # "systematic" | "generated" | "clean run": the phase that found the failure
        self.systematic: PassResult | None = None
        self.elapsed = 0.0
        self.deadline: float | None = None  # perf_counter() at which the check's time budget ends
        self.cut_short = ""  # why the search stopped before playing every scenario, if it did
        self._alarm: BaseException | None = None  # what a test runner's SIGALRM timeout raised during the check
        self.others: list[tuple[Finding, Scenario, Any]] = []  # further distinct findings (property x target)

    # --- sandboxes ---------------------------------------------------------
    def _sandbox(self) -> Sandbox:
        sb = self._backend_for_mode().create(self.spec)
        try:
            if sb.prepared_for is None:
                sb.prepare(self.spec, validate=not self._validated)
            # else: the backend's template build already ran prepare(): setup + validation
            self._validated = True
        except BaseException:
            self._drop(sb)
            raise
        return sb

    def _backend_for_mode(self) -> Backend:
        """crash='kill' runs attempts in child processes, which cannot share an
        in-memory DuckDB: such a check gets file sandboxes of its own."""
        if self.spec.crash != "kill":
            return self.backend
        from .isolate import require_fork

        require_fork()
        if self.backend.name != "duckdb":
            return self.backend
        if self._file_backend is None:
            from ..sandbox import get_backend

            self._file_backend = get_backend("duckdb-file")
        return self._file_backend

    def clean(self, data: Dataset) -> Outcome:
        sb = self._sandbox()
        try:
            out = clean_run(self.spec, sb, self.load, data)
            self.stats.user_seconds += out.user_seconds
            return out
        finally:
            self._drop(sb)

    def clean_cached(self, data: Dataset, key: str) -> Outcome:
        """The shrinker retries many schedules on the same data (`key`, from
        `data_key`): reuse its clean run."""
        hit = self._clean_cache.get(key)
        if hit is None:
            hit = self.clean(data)
            if len(self._clean_cache) >= 64:
                self._clean_cache.pop(next(iter(self._clean_cache)))
            self._clean_cache[key] = hit
        return hit

    def scenario(self, scenario: Scenario) -> Outcome:
        sb = self._sandbox()
        try:
            return run_scenario(self.spec, sb, self.load, scenario, self.stats)
        finally:
            self._drop(sb)

    @staticmethod
    def _drop(sb: Sandbox) -> None:
        from ..sandbox.base import raise_if_stopped
        from ..sandbox.landing import cleanup_landing

        try:
            sb.close()
        finally:
            cleanup_landing(sb)
        raise_if_stopped()  # a Ctrl-C the load or a driver swallowed ends the check here

    # --- judging -------------------------------------------------------------
    def judge(self, scenario: Scenario, clean: Outcome) -> tuple[Finding | None, Outcome]:
        out = self.scenario(scenario)
        st = self.stats
        st.scenarios += 1
        st.user_seconds += out.user_seconds
        st.late_rows += scenario.data.late_rows(self.spec)
        for s in scenario.runs():
            st.duplicates += s.tag == "duplicate"
            st.backfills += s.tag == "backfill"
            st.catch_up += s.tag == "catch-up"
        if out.finding is not None:
            return out.finding, out
        return judge_outcome(self.spec, clean, out) or judge_reference(self.spec, clean.expected, out.final), out

    def check_reference(self, data: Dataset, clean: Outcome) -> None:
        """P5 on the clean run itself: a load wrong even without faults (a watermark
        that double-loads in one pass) is reported against its reference, not as a diff
        between two wrong outcomes."""
        finding = judge_reference(self.spec, clean.expected, clean.final, where="after one clean run (every window once, in order, no fault)")
        if finding is None:
            return
        from .model import nominal_plan

        self.found_by = "clean run"
        self.stats.failures += 1
        scenario = Scenario(data, list(nominal_plan(self.windows, self.spec.run_delay)))
        self._raise(finding, scenario, clean.attempts, None, saved=self.config.replay, found="found by the clean run itself (the reference oracle)")

    def check_determinism(self, data: Dataset, first: Outcome) -> None:
        """P0: a second clean run on the same data must give the same tables."""
        error = judge_determinism(self.spec, first, self.clean(data))
        if error is not None:
            raise error

    # --- the two phases --------------------------------------------------------
    def run(self) -> None:
        """The systematic single-fault pass, then the random search with what is
        left of `examples` (at least GENERATED_FLOOR scenarios)."""
        if self.config.replay:
            return self.replay(self.config.replay)
        started = time.perf_counter()
        if self.config.max_seconds is not None:
            self.deadline = started + self.config.max_seconds
        before = (self.stats.systematic, self.stats.generated)
        if self.spec.crash == "kill":
            self.stats.kill_checks += 1
        restore = self._watch_alarm()
        try:
            if self.config.systematic:
                self.run_systematic()
                left = max(_defaults.GENERATED_FLOOR, self.config.examples - (self.stats.systematic - before[0]))
            else:
                left = self.config.examples
            if self.cut_short:
                return
            self.search(left)
        except BaseException as e:
            if self._by_runner_timeout(e):
                raise self._timed_out(e, started, before) from None
            raise
        finally:
            restore()
            self.elapsed = time.perf_counter() - started
            self.stats.total_seconds += self.elapsed
            label = str(self.config.test_id or getattr(self.load, "__qualname__", "check"))
            done = f"{self.stats.systematic - before[0]} systematic + {self.stats.generated - before[1]} generated"
            self.stats.coverage.append(coverage_line(label, done, self.systematic, self.cut_short))
            if self.cut_short:
                self.stats.cut_short.append(f"{label}: {self.cut_short}")
                self._warn_cut_short(label, done)

    def _watch_alarm(self) -> Callable[[], None]:
        """pytest-timeout (signal method) ends a test from a SIGALRM handler; a driver
        busy in C when it fires may turn it into its own error (DuckDB: "Query
        interrupted"). Wrap the handler to know that it fired. Returns the undo."""
        import signal
        import threading

        prev = getattr(signal, "SIGALRM", None) and signal.getsignal(signal.SIGALRM)
        if not callable(prev) or threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            try:
                prev(signum, frame)
            except BaseException as e:
                self._alarm = e  # pytest-timeout's "Timeout (>Ns) ...": named in the message
                raise
            self._alarm = self._alarm or TimeoutError("SIGALRM")

        signal.signal(signal.SIGALRM, handler)

        def restore() -> None:
            if signal.getsignal(signal.SIGALRM) is handler:
                signal.signal(signal.SIGALRM, prev)

        return restore

    def _by_runner_timeout(self, e: BaseException) -> bool:
        return _runner_timeout(e) or self._alarm is not None

    def _warn_cut_short(self, label: str, done: str) -> None:
        import warnings

        from .._errors import IdemtestWarning

        warnings.warn(
            IdemtestWarning(f"idemtest: {label} was cut short — {self.cut_short} after {done} scenarios; it is not a full pass. Raise --idem-max-seconds (or idem_max_seconds, @check(max_seconds=...)) for a complete one."),
            stacklevel=3,
        )

    def _timed_out(self, e: BaseException, started: float, before: tuple[int, int]) -> CheckTimedOut:
        cause = self._alarm or (e.cause if isinstance(e, StopSearch) and e.cause is not None else e)
        sys_n, gen_n = self.stats.systematic - before[0], self.stats.generated - before[1]
        found = "a failure had been found and was being shrunk" if self.first_failure_at is not None else "no failure had been found yet"
        return CheckTimedOut(
            f"idemtest: the test runner's timeout ended this check ({' '.join(str(cause).split())[:80]}) after {time.perf_counter() - started:.0f} s, "
            f"having played {sys_n} systematic + {gen_n} generated scenarios; {found}. This is not a pass. "
            "Bound the check itself with --idem-max-seconds N (ini idem_max_seconds, @idemtest.check(max_seconds=N)): it then stops cleanly "
            "and says it was cut short; or raise --timeout, or lower --idem-examples."
        )

    def run_systematic(self) -> None:
        """Phase 1: every single-fault scenario on the fixed data set (engine/systematic.py)."""
        from .systematic import run_pass, systematic_dataset

        data = systematic_dataset(self.spec)
        t0 = time.perf_counter()
        clean = self.clean_cached(data, _json_key(Scenario(data)))
        budget = max(_defaults.SYSTEMATIC_MIN_SECONDS, _defaults.SYSTEMATIC_CLEAN_RUNS * (time.perf_counter() - t0))
        if not self._determinism_checked:
            self.check_determinism(data, clean)
            self._determinism_checked = True
        self.check_reference(data, clean)
        if all(not rows for _, rows in clean.final.values()):
            self._warn_empty(data)

        def judge(scenario: Scenario) -> tuple[Finding | None, Outcome]:
            self.stats.systematic += 1
            return self.judge(scenario, clean)

        cap = self.config.systematic_max if self.config.systematic_max is not None else _defaults.SYSTEMATIC_MAX
        deadline = time.perf_counter() + budget
        if self.deadline is not None and self.deadline < deadline:
            deadline = self.deadline
        result = run_pass(self.spec, data, clean, judge, cap=cap, deadline=deadline, more_seconds=_defaults.MORE_FINDINGS_SECONDS)
        self.systematic = result
        if result.found is None and self.deadline is not None and time.perf_counter() >= self.deadline:
            self.cut_short = f"its time budget (max_seconds={self.config.max_seconds:g}) ran out in the systematic pass ({result.coverage.judged}/{result.coverage.planned} single-fault scenarios)"
        cov, st = result.coverage, self.stats
        st.crash_points += cov.tried + cov.rerun_tried
        st.crash_points_hit += cov.crashed + cov.rerun_crashed
        st.crash_points_retried += cov.retried + cov.rerun_retried
        st.windows_duplicated += len(cov.duplicated)
        st.windows_backfilled += len(cov.backfilled)
        st.windows_out_of_order += len(cov.swapped)
        st.fixed_interleavings += cov.interleavings
        found = result.found
        if found is not None:
            # one fault on fixed data is already minimal: reported as found, no shrinking
            self.found_by = "systematic"
            self.stats.failures += 1
            self.others = [(o.finding, o.scenario, o.outcome.attempts) for o in result.others]
            self._raise_reduced(found.finding, found.scenario, found.outcome, None, found=found.describe())

    def _warn_empty(self, data: Dataset) -> None:
        import warnings

        from .._errors import IdemtestWarning

        targets = ", ".join(t.label for t in self.spec.targets)
        rows = data.row_count()
        windows = len(self.spec.schedule.windows)
        warnings.warn(
            IdemtestWarning(
                f"idemtest: every target ({targets}) is empty after a clean run of {rows} source row(s) covering all {windows} declared window(s), "
                "so no lost, duplicated or stale row can show. Does the load swallow its own errors (an `except Exception: pass`), "
                "or do its filters never match the rows the sources declare (check event_time= and the schedule against the load's WHERE)?"
            ),
            stacklevel=2,
        )

    # --- the generated search ------------------------------------------------
    def search(self, count: int) -> None:
        """Phase 2: Hypothesis draws data and multi-fault schedules, and shrinks a failure.

        Shrinking is bounded for real: once half the shrink budget is spent, the next
        example raises StopSearch (a BaseException Hypothesis passes through) and the
        smallest failure seen so far goes on to the deterministic reduction
        (engine/minimize.py), which has the rest of the budget. The check's own time
        budget (`max_seconds`) and a test-runner timeout end the search the same way."""
        from hypothesis import HealthCheck, Verbosity, given, settings
        from hypothesis import strategies as st

        from .generate import dataset_strategy, schedule_strategy
        from .minimize import count_faults
        from .systematic import finding_key

        data_st = dataset_strategy(self.spec)
        best: dict[str, Any] = {}
        seen: dict[tuple[str, tuple[str, ...]], tuple[Finding, Scenario, Any]] = {}
        deterministic: set[str] = set()
        referenced: set[str] = set()  # data sets whose clean run was held against Target(expected=) (P5)
        examples = {"n": 0}
        hypothesis_share = self.config.shrink_seconds / 2

        stopping: list[StopSearch] = []

        def stop(reason: str, cause: BaseException | None = None) -> StopSearch:
            # remembered here: Hypothesis may wrap what ends its run (a stop before the
            # draws it saw last time is a FlakyStrategyDefinition to it), so search()
            # decides by this record, not by the exception that comes out
            stopping.append(StopSearch(reason, cause))
            return stopping[-1]

        def inner(d: Any) -> None:
            examples["n"] += 1
            now = time.perf_counter()
            if best and now - best["found"] > hypothesis_share:
                raise stop("shrink")
            if self.deadline is not None and now > self.deadline:
                raise stop("max-seconds")
            try:
                play(d)
            except (ExampleFailed, AbortSearch, StopSearch):
                raise
            except BaseException as e:
                if self._by_runner_timeout(e):
                    # pytest-timeout's Failed: Hypothesis would take it for a failure and replay it
                    raise stop("timeout", e) from None
                raise

        def play(d: Any) -> None:
            data = d.draw(data_st, label="source data")
            data_key = _json_key(Scenario(data))
            try:
                clean = self.clean_cached(data, data_key)
                if not self._determinism_checked:
                    self.check_determinism(data, clean)
                    self._determinism_checked = True
                if data_key not in referenced:
                    self.check_reference(data, clean)
                    referenced.add(data_key)
            except IdemtestError as e:
                raise AbortSearch(e) from None
            steps = d.draw(schedule_strategy(self.spec, self.windows, clean.boundaries), label="schedule")
            scenario = Scenario(data, steps)
            self.stats.generated += 1
            finding, out = self.judge(scenario, clean)
            if finding is None:
                return
            if finding.prop == "P1" and data_key not in deterministic:
                try:
                    self.check_determinism(data, clean)
                except IdemtestError as e:
                    raise AbortSearch(e) from None
                deterministic.add(data_key)  # shrink candidates reuse data: check each once
            if not best:
                self.first_failure_at = examples["n"]
                best["found"] = time.perf_counter()
            key = finding_key(finding)
            seen.setdefault(key, (finding, scenario, out.attempts))
            size = (count_faults(scenario.steps), data.row_count(), len(scenario.steps))
            if "size" not in best or (finding_key(best["finding"]) == key and size < best["size"]):
                best.update(finding=finding, scenario=scenario, outcome=out, size=size)
            raise ExampleFailed(finding.headline)

        test = given(st.data())(inner)
        test = settings(
            max_examples=count,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
            database=None if self.config.database is None else getattr(settings.default, "database", None),
        )(test)
        key = f"idemtest:{self.config.test_id or getattr(self.load, '__qualname__', '')}:{self.spec.fingerprint()}"
        test.hypothesis.inner_test._hypothesis_internal_add_digest = key.encode()  # type: ignore[attr-defined]
        if self.config.seed is not None:
            from hypothesis import seed

            test = seed(self.config.seed)(test)
        try:
            test()
        except AbortSearch as a:
            raise a.error from None
        except BaseException as e:
            if not stopping:
                if isinstance(e, ExampleFailed):
                    self._found_generated(best, seen, examples["n"])
                raise
            why = stopping[0]
            if why.reason == "timeout":
                raise why from None
            if best:
                self._found_generated(best, seen, examples["n"], note="Hypothesis's shrinking stopped at its budget")
            self.cut_short = f"its time budget (max_seconds={self.config.max_seconds:g}) ran out after {self.stats.generated} generated scenarios of {count}"

    def _found_generated(self, best: dict[str, Any], seen: dict[Any, Any], played: int, note: str = "") -> None:
        from .systematic import finding_key

        self.found_by = "generated"
        self.stats.failures += 1
        first = finding_key(best["finding"])
        self.others = [v for k, v in seen.items() if k != first]
        self._raise_reduced(best["finding"], best["scenario"], best["outcome"], (self.first_failure_at, played), started=best["found"], note=note)

    def _raise_reduced(
        self, finding: Finding, scenario: Scenario, outcome: Outcome, examples: tuple[int | None, int] | None,
        found: str | None = None, started: float | None = None, note: str = "",
    ) -> None:
        """Reduce the failure (engine/minimize.py) within what is left of the shrink
        budget (at least half of it), then report it."""
        from .minimize import reduce

        budget = self.config.shrink_seconds
        now = time.perf_counter()
        deadline = max((started if started is not None else now) + budget, now + budget / 2)
        if self.deadline is not None:
            deadline = min(deadline, max(self.deadline, now))

        def judge(cand: Scenario) -> tuple[Finding, Outcome] | None:
            try:
                clean = self.clean_cached(cand.data, _json_key(Scenario(cand.data)))
                got, out = self.judge(cand, clean)
            except IdemtestError:
                return None  # e.g. the clean run of fewer rows fails: not this failure
            finally:
                self.stats.reduced += 1
            return None if got is None else (got, out)

        from .model import nominal_plan

        on_time = {s.window: s.at for s in nominal_plan(self.windows, self.spec.run_delay)}
        red = reduce(scenario, finding, outcome, judge, deadline=deadline, nominal=on_time)
        if red.finding.prop == "P1" and red.scenario.data is not scenario.data:
            try:
                self.check_determinism(red.scenario.data, self.clean_cached(red.scenario.data, _json_key(Scenario(red.scenario.data))))
            except IdemtestError:
                red.scenario, red.finding, red.outcome, red.removed = scenario, finding, outcome, 0
        notes = "; ".join(n for n in (note, red.note()) if n)
        self._raise(red.finding, red.scenario, red.outcome.attempts, examples, found=found, note=notes)

    def replay(self, path: str) -> None:
        from .report import load_failure, warn_other_version

        payload = load_failure(path)
        warn_other_version(path, payload)
        if payload.get("spec") not in (None, self.spec.fingerprint()):
            raise ReplayError(
                f"{path} was saved for a different spec (fingerprint {payload.get('spec')}, this test's is {self.spec.fingerprint()}); "
                "the sources, targets or schedule changed since — replay it on the version of the test that saved it"
            )
        scenario = Scenario.from_json(payload["scenario"])
        crash = payload.get("crash", "raise")
        if crash not in ("raise", "kill"):
            raise ReplayError(f"{path}: crash={crash!r} is not a crash mode ('raise' or 'kill'); was the file edited?")
        # a failure replays in the crash mode it was found in, whatever --idem-crash says
        self.spec = self.spec.with_crash(crash)
        self._check_replayable(path, scenario)
        note = cross_backend_note(path, payload.get("db"), self.backend)
        if note:
            import warnings

            from .._errors import IdemtestWarning

            warnings.warn(IdemtestWarning(note), stacklevel=3)
        started = time.perf_counter()
        try:
            clean = self.clean(scenario.data)
        except IdemtestError:
            raise
        except Exception as e:
            # the load's own errors are LoadErrors: what fails here is loading the saved rows
            raise ReplayError(
                f"{path}: the saved source rows cannot be loaded into the sandbox ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
                "a value does not fit its column's type — was the file edited, or did a column type change since it was saved?"
            ) from None
        self.check_reference(scenario.data, clean)
        finding, out = self.judge(scenario, clean)
        self.stats.total_seconds += time.perf_counter() - started
        if finding is not None:
            if finding.prop == "P1":
                self.check_determinism(scenario.data, clean)
            self.stats.failures += 1
            self._raise(finding, scenario, out.attempts, None, saved=str(path), note=note)

    def _check_replayable(self, path: str, scenario: Scenario) -> None:
        """A saved scenario must fit this spec: windows that exist, faults that make sense, declared sources."""
        from .model import ParallelStep

        n = len(self.windows)
        if not scenario.steps:
            raise ReplayError(f"{path}: the saved scenario has no steps, so there is nothing to replay; was the file edited?")
        for step in scenario.steps:
            for run in step.runs if isinstance(step, ParallelStep) else (step,):
                if not 0 <= run.window < n:
                    raise ReplayError(f"{path}: a step runs window {run.window}, but this spec has windows 0..{n - 1}; the schedule changed since it was saved, or the file was edited")
                for f in run.faults:
                    if f.at < 1 or f.when not in ("before", "after"):
                        raise ReplayError(f"{path}: fault {f.to_json()} is not a crash 'before' or 'after' statement k >= 1; was the file edited?")
        declared = {s.table: s for s in self.spec.sources}
        for table, versions in scenario.data.sources.items():
            source = declared.get(table)
            if source is None:
                raise ReplayError(f"{path}: the saved data fills source {table!r}, which this spec does not declare (it declares {sorted(declared)})")
            for v in versions:
                if set(v.values) != set(source.columns):
                    raise ReplayError(f"{path}: a saved row of {table} has columns {sorted(v.values)}, the spec declares {sorted(source.columns)}")

    def _raise(
        self, finding: Finding, scenario: Scenario, attempts: Any, examples: tuple[int | None, int] | None, saved: str | None = None, found: str | None = None,
        note: str = "",
    ) -> None:
        from .report import other_finding_line, render, save_failure

        if saved is None:
            path = save_failure(self.config.failures_dir, spec=self.spec, scenario=scenario, finding=finding, test_id=self.config.test_id, db=self.backend.name)
            saved = str(path)
        others = []
        for f, sc, _ in self.others:
            other = save_failure(self.config.failures_dir, spec=self.spec, scenario=sc, finding=f, test_id=self.config.test_id, db=self.backend.name)
            others.append(other_finding_line(f, sc, str(other), self.spec))
        text = render(
            spec=self.spec, finding=finding, scenario=scenario, attempts=attempts, test_id=self.config.test_id,
            saved=saved, examples=examples, found=found, db=self.config.db, note=note, others=others,
        )
        raise IdempotencyViolation(text, prop=finding.prop, finding=finding, scenario=scenario, attempts=attempts, saved=saved)

    def close(self) -> None:
        if self._file_backend is not None:
            self._file_backend.close()
            self._file_backend = None
        if self._own_backend:
            self.backend.close()


def cross_backend_note(path: str, saved: Any, backend: Backend) -> str:
    """A note when a failure saved on one database engine is replayed on another:
    the same scenario may pass there (different locking, types, SQL), which must
    not read as "fixed"."""
    from ..sandbox import saved_db

    if not saved:
        return ""
    was = saved_db(str(saved))
    if was.dialect == backend.dialect:
        return ""
    names = {"duckdb": "DuckDB", "postgres": "PostgreSQL"}
    return (
        f"{path} was saved on {names.get(was.dialect, was.dialect)} and is replayed on {names.get(backend.dialect, backend.dialect)} ({backend.describe()}): "
        "a pass here does not mean the failure is fixed where it was found; replay it without --idem-db (or `idemtest replay FILE`) "
        "to run it on the engine it was saved on"
    )


def _runner_timeout(e: BaseException) -> bool:
    """pytest-timeout's signal method ends a test with `pytest.fail("Timeout >Ns")`
    (an `_pytest.outcomes.Failed`), raised wherever the main thread happens to be."""
    if isinstance(e, StopSearch):
        return e.reason == "timeout"
    return type(e).__name__ == "Failed" and str(e).startswith("Timeout")


def coverage_line(label: str, done: str, result: PassResult | None, cut_short: str) -> str:
    """What one check covered, in one line (the summary prints it with -v): the
    scenarios of both phases, the systematic pass's crash points (tried / crashed /
    retried, before and after every statement of every window), the windows it
    duplicated, backfilled and ran out of order, and whether it was cut short."""
    parts = [f"{label}: {done}"]
    if result is not None:
        parts.append(result.coverage.line())
        details = result.coverage.details()
        if details:
            parts.append(details)
    if cut_short:
        parts.append(f"CUT SHORT: {cut_short}")
    return "; ".join(parts)


def _json_key(scenario: Scenario) -> str:
    """A scenario (or, with no steps, its data) as a stable dictionary key."""
    return _json.stable_key(scenario.to_json())


def module_dir(fn: Callable[..., Any]) -> Path | None:
    """The folder of the module that defines `fn`: where its relative setup files live."""
    try:
        return Path(inspect.getfile(inspect.unwrap(fn))).resolve().parent
    except (TypeError, OSError):
        return None


def verify(
    spec: Spec,
    load: Callable[[RunContext], Any],
    *,
    examples: int = _defaults.EXAMPLES,
    db: str = _defaults.DB,
    replay: str | None = None,
    failures_dir: str | Path = _defaults.FAILURES_DIR,
    test_id: str | None = None,
    stats: Stats | None = None,
    base_dir: str | Path | None = None,
    shrink_seconds: float = _defaults.SHRINK_SECONDS,
    seed: int | None = None,
    systematic: bool = True,
    systematic_max: int | None = None,
    crash: str | None = None,
    max_seconds: float | None = None,
) -> Stats:
    """Check that `load` is idempotent under generated scenarios, without pytest.

    Raises IdempotencyViolation with the minimal scenario (saved as JSON) when a
    property breaks, NonDeterminismError when two clean runs differ, and another
    IdemtestError when the spec or the load itself is broken. A relative
    `Spec(setup="x.sql")` is looked for in the working directory, then in
    `base_dir` (default: the folder of the module defining `load`).
    `shrink_seconds` bounds the time spent shrinking a failure.

    `examples` is the total number of scenarios: the systematic single-fault
    pass runs first (completely, up to its own cap, even past `examples`), then
    Hypothesis generates what is left, at least a few. `seed` fixes the
    random search; `systematic=False` skips the pass, `systematic_max=N` thins
    it to N scenarios spread evenly over its families (a quicker, partial pass).
    `crash='kill'|'raise'` overrides `Spec(crash=...)`.

    `max_seconds` bounds the whole check: the search stops there, the returned
    Stats list the check in `cut_short`, and an IdemtestWarning says it was not
    a full pass."""
    if not isinstance(examples, int) or isinstance(examples, bool) or examples < 1:
        raise SpecError(f"examples={examples!r}: the number of generated scenarios must be a whole number >= 1")
    if systematic_max is not None and (not isinstance(systematic_max, int) or isinstance(systematic_max, bool) or systematic_max < 1):
        raise SpecError(f"systematic_max={systematic_max!r} must be a whole number >= 1 (or None for the default cap)")
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0):
        raise SpecError(f"max_seconds={max_seconds!r} must be a number of seconds > 0 (or None: unbounded)")
    config = Config(
        examples=examples,
        db=db,
        replay=replay,
        failures_dir=Path(failures_dir),
        test_id=test_id,
        stats=stats or Stats(),
        base_dir=Path(base_dir) if base_dir is not None else module_dir(load),
        shrink_seconds=shrink_seconds,
        systematic=systematic,
        systematic_max=systematic_max,
        seed=seed,
        crash=crash,
        max_seconds=max_seconds,
    )
    checker = Checker(spec, load, config)
    try:
        checker.run()
    finally:
        checker.close()
    return config.stats


def replay(path: str | Path, spec: Spec, load: Callable[[RunContext], Any], *, db: str | None = None) -> None:
    """Replay one saved failure exactly; raises IdempotencyViolation if it still fails."""
    from .report import load_failure

    payload = load_failure(path)
    verify(spec, load, replay=str(path), db=db or payload.get("db") or _defaults.DB, test_id=payload.get("test"))
