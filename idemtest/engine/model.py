"""The scenario model: generated data, the schedule of runs, what each attempt
did and what was found. Plain data with a JSON round-trip (a saved failure
replays without the generator); nothing here runs anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Union

from .._errors import ReplayError
from .._json import decode, encode

if TYPE_CHECKING:
    from ..spec import Source, Spec, Window
    from .diff import TableDiff

Snapshot = tuple[list[str], list[tuple[Any, ...]]]


# --- source data -------------------------------------------------------------------


@dataclass
class Version:
    """One version of one source row and the moment it lands in the source."""

    values: dict[str, Any]
    arrival: datetime

    def event(self, source: Source) -> datetime:
        if source.event_time is None:
            return self.arrival  # a snapshot row happens when its snapshot lands
        v = self.values[source.event_time]
        return v if isinstance(v, datetime) else datetime(v.year, v.month, v.day)


@dataclass
class Dataset:
    """Generated rows for every declared source."""

    sources: dict[str, list[Version]] = field(default_factory=dict)

    def visible(self, source: Source, t: datetime | None) -> list[dict[str, Any]]:
        """The source as it reads at simulated time t (None: everything has arrived).

        A table source shows the latest arrived version of every key; an
        append-only or keyless source shows every arrived row; a snapshot
        source shows the latest arrived snapshot (its versions sharing one arrival)."""
        versions = [v for v in self.sources.get(source.table, []) if t is None or v.arrival <= t]
        if source.snapshot:
            last = max((v.arrival for v in versions), default=None)
            return [v.values for v in versions if v.arrival == last]
        if source.append_only or not source.updates or not source.keys:
            return [v.values for v in versions]
        latest: dict[tuple[Any, ...], dict[str, Any]] = {}
        for v in versions:  # versions of a key are stored in arrival order
            latest[tuple(v.values[k] for k in source.keys)] = v.values
        return list(latest.values())

    def arrived(self, table: str, t: datetime | None) -> int:
        return sum(1 for v in self.sources.get(table, []) if t is None or v.arrival <= t)

    def late_rows(self, spec: Spec) -> int:
        n = 0
        for s in spec.sources:
            if s.snapshot:
                continue
            n += sum(1 for v in self.sources.get(s.table, []) if v.arrival > v.event(s))
        return n

    def row_count(self) -> int:
        return sum(len(v) for v in self.sources.values())


# --- faults and statement boundaries ---------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """Crash the run at boundary `at` (1-based), before or after it executes."""

    at: int
    when: str = "after"  # "before" | "after"

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "when": self.when}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Fault:
        return cls(int(d["at"]), str(d.get("when", "after")))

    def __str__(self) -> str:
        return f"crash {self.when} boundary {self.at}"


@dataclass
class Boundary:
    """One statement boundary a run went through."""

    index: int
    kind: str  # execute | executemany | sql | append | register | commit | rollback | begin | cursor | connect | fault_point | copy
    text: str = ""
    run: str = ""
    seq: int = 0  # global order under the interleaving scheduler
    thread: str = ""  # the thread that ran it, when not the run's own (a worker of the load's pool)

    def describe(self, width: int = 90) -> str:
        on = f" [thread {self.thread}]" if self.thread else ""
        if self.kind == "fault_point":
            return f"fault_point({self.text!r}){on}"
        text = abbreviate(self.text, width)
        return (f"{self.kind}: {text}" if text else self.kind) + on


def abbreviate(sql: Any, width: int = 90) -> str:
    text = " ".join(str(sql).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --- the schedule ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunStep:
    """Run the load for one window at simulated time `at`.

    `faults[i]` is the crash planned for attempt i+1; the attempt after the last
    fault runs clean, so every crash is followed by a retry (bounded by Spec.retries).
    """

    window: int
    at: datetime
    faults: tuple[Fault, ...] = ()
    tag: str = "nominal"  # nominal | duplicate | backfill | catch-up

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"window": self.window, "at": self.at.isoformat(), "tag": self.tag}
        if self.faults:
            out["faults"] = [f.to_json() for f in self.faults]
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunStep:
        return cls(int(d["window"]), datetime.fromisoformat(d["at"]), tuple(Fault.from_json(f) for f in d.get("faults", [])), str(d.get("tag", "nominal")))


@dataclass(frozen=True)
class ParallelStep:
    """Two or more runs at once; `choices` is the scheduler's interleaving:
    at each turn, the index (modulo the runs still going) of the run that proceeds."""

    runs: tuple[RunStep, ...]
    choices: tuple[int, ...] = ()

    @property
    def at(self) -> datetime:
        return max(r.at for r in self.runs)

    def to_json(self) -> dict[str, Any]:
        return {"parallel": [r.to_json() for r in self.runs], "choices": list(self.choices)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ParallelStep:
        return cls(tuple(RunStep.from_json(r) for r in d["parallel"]), tuple(int(c) for c in d.get("choices", [])))


Step = Union[RunStep, ParallelStep]


def step_from_json(d: dict[str, Any]) -> Step:
    return ParallelStep.from_json(d) if "parallel" in d else RunStep.from_json(d)


def nominal_plan(windows: tuple[Window, ...], delay: timedelta = timedelta(0)) -> list[RunStep]:
    """Each window once, in order, at its end time plus the spec's run delay."""
    return [RunStep(w.index, w.end + delay) for w in windows]


def describe_step(step: Step, windows: dict[int, Window]) -> str:
    if isinstance(step, ParallelStep):
        inner = " || ".join(describe_step(r, windows) for r in step.runs)
        return f"at once: {inner}"
    w = windows.get(step.window)
    text = f"{step.tag} run of window {step.window} {w if w else ''} at {step.at.isoformat(sep=' ')}"
    for f in step.faults:
        text += f"; {f}"
    return text


@dataclass
class Scenario:
    """Generated source data plus the schedule played against it."""

    data: Dataset
    steps: list[Step] = field(default_factory=list)

    def runs(self) -> list[RunStep]:
        out: list[RunStep] = []
        for s in self.steps:
            out.extend(s.runs if isinstance(s, ParallelStep) else [s])
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "data": {
                table: [{"arrival": v.arrival.isoformat(), "values": {k: encode(x) for k, x in v.values.items()}} for v in versions]
                for table, versions in self.data.sources.items()
            },
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scenario:
        try:
            if not isinstance(d["steps"], list) or not isinstance(d["data"], dict):
                raise TypeError(f"'data' must be an object and 'steps' a list, not {type(d['data']).__name__} and {type(d['steps']).__name__}")
            data = Dataset(
                {
                    table: [Version({k: decode(x) for k, x in v["values"].items()}, datetime.fromisoformat(v["arrival"])) for v in versions]
                    for table, versions in d["data"].items()
                }
            )
            return cls(data, [step_from_json(s) for s in d["steps"]])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ReplayError(f"the saved scenario is malformed ({type(e).__name__}: {e}); it must hold 'data' and 'steps' as written by idemtest") from None


# --- what happened ---------------------------------------------------------------------


@dataclass
class Stats:
    """What was exercised; the pytest terminal summary prints it."""

    scenarios: int = 0  # systematic + generated
    systematic: int = 0  # single-fault scenarios of the systematic pass
    generated: int = 0  # scenarios Hypothesis generated (shrinking included)
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
    # what the systematic passes covered (summed over checks)
    crash_points: int = 0  # (window, statement, before/after) points played
    crash_points_hit: int = 0  # ... where the run really crashed
    crash_points_retried: int = 0  # ... and was then retried
    windows_duplicated: int = 0
    windows_backfilled: int = 0
    windows_out_of_order: int = 0
    fixed_interleavings: int = 0
    kill_checks: int = 0  # checks run with crash='kill' (attempts in child processes, no concurrent runs)
    coverage: list[str] = field(default_factory=list)  # one line per check
    reduced: int = 0  # re-runs of the final reduction of failures (engine/minimize.py)
    cut_short: list[str] = field(default_factory=list)  # checks stopped by their time budget, one line each

    def coverage_line(self) -> str:
        """The systematic passes' coverage, summed over checks, in one line."""
        if not self.systematic:
            return ""
        parts = [f"{self.crash_points} crash points played ({self.crash_points_hit} crashed, {self.crash_points_retried} retried)"]
        parts.append(f"windows {self.windows_duplicated} duplicated, {self.windows_backfilled} backfilled, {self.windows_out_of_order} run out of order")
        if self.fixed_interleavings:
            parts.append(f"{self.fixed_interleavings} fixed interleavings")
        return "single-fault pass: " + "; ".join(parts)


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
    exception: BaseException | None = field(default=None, repr=False, compare=False)  # the load's own error, not saved

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

    prop: str  # P0 .. P5
    headline: str
    diffs: list[TableDiff] = field(default_factory=list)
    step: int | None = None
    detail: str = ""


@dataclass
class Outcome:
    """A played schedule: the first finding (if any), every attempt, the final tables."""

    finding: Finding | None
    attempts: list[Attempt]
    final: dict[str, Snapshot]
    boundaries: dict[int, int] = field(default_factory=dict)
    user_seconds: float = 0.0
    #: clean runs only: what each Target(expected=...) query returns once every source row has arrived
    expected: dict[str, Snapshot] = field(default_factory=dict)
