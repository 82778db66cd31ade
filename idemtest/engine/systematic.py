"""The systematic single-fault pass, run before the random search.

A bug that one fault exposes must be found on every run, not by luck. So
before Hypothesis draws anything, every check plays a fixed list of
single-fault scenarios against one fixed, "rich" data set:

1. `systematic_dataset(spec)`: for every declared window, rows on time at its
   start and at end-1s, a row with the start row's event time that lands
   exactly `max_lateness` late (strict `>` cursors), a mid-window row that
   lands `max_lateness` late (wall-clock cutoffs), and for `updates=True`
   sources a newer version, one window later, of a key first seen earlier
   (ON CONFLICT DO NOTHING, MERGE on the wrong version). No randomness: two
   builds are equal.
2. `enumerate_plan(...)`: the scenarios, smallest families first (one per
   window before one per statement): the nominal plan, a duplicate run of each
   window, a backfill of each window after the last, each adjacent pair out of
   order, a crash before/after each statement of each window (then the retry),
   the same inside a duplicate run, and two adjacent windows (or, with
   concurrency="same-partition", one window twice) at once under fixed
   interleavings: one run's statements first, the other's, strictly
   alternating, and one run paused after each read a later write may act on.
   Each is a plain `list[Step]`, so a failure saves and replays like any other.
3. `run_pass(...)`: judges them in order and stops at the first failure,
   which is reported as found (no shrinking: one fault is already minimal).

Budget: the pass runs completely unless the plan exceeds `SYSTEMATIC_MAX`
scenarios, or would not fit its time budget (`SYSTEMATIC_CLEAN_RUNS` times the
clean run's cost, at least `SYSTEMATIC_MIN_SECONDS`; the cost of the first
scenarios says how many fit): then the large families are thinned evenly and
the small ones kept whole. The time budget is also a hard stop. Both show in
the coverage line. A crash is followed by one retry, as in generated schedules
(the executor grants the attempt after a planned crash even with retries=0).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .generate import (
    RawRow,
    assemble_snapshots,
    assemble_versions,
    is_date_event,
    key_value,
    shaped_key,
    value_at,
)
from .model import (
    Boundary,
    Dataset,
    Fault,
    Finding,
    Outcome,
    ParallelStep,
    RunStep,
    Scenario,
    Step,
    Version,
    nominal_plan,
)

if TYPE_CHECKING:
    from ..spec import Source, Spec, Window


# --- the data set ----------------------------------------------------------------------

#: a user strategy needs this many distinct values at most; more rows repeat them
MAX_DISTINCT = 16

_DISTINCT: dict[int, tuple[Any, list[Any], bool]] = {}


def distinct_values(strategy: Any, n: int) -> list[Any]:
    """n values of a user's Hypothesis strategy, distinct while it has them, then
    repeated; the same on every run (`find` shrinks to the simplest value not yet
    taken, derandomized and without the example database)."""
    from hypothesis import Phase, find, settings
    from hypothesis.errors import NoSuchExample, Unsatisfiable

    hit = _DISTINCT.get(id(strategy))
    if hit is None or hit[0] is not strategy:  # id() may be reused by another object
        hit = (strategy, [], False)
    _, values, exhausted = hit
    quiet = settings(database=None, max_examples=200, phases=[Phase.generate, Phase.shrink], derandomize=True, deadline=None)
    while len(values) < min(n, MAX_DISTINCT) and not exhausted:
        seen = list(values)

        def unseen(v: Any, seen: list[Any] = seen) -> bool:
            return v not in seen

        try:
            values.append(find(strategy, unseen, settings=quiet))
        except (NoSuchExample, Unsatisfiable):
            exhausted = True
    _DISTINCT[id(strategy)] = (strategy, values, exhausted)
    if not values:
        from .._errors import SpecError

        raise SpecError(f"the strategy {strategy!r} in Source(values=...) produces no value at all")
    return [values[i % len(values)] for i in range(n)]


def systematic_dataset(spec: Spec) -> Dataset:
    """The fixed data set of the systematic pass (module docstring, item 1)."""
    return Dataset({s.table: _source_versions(spec, s) for s in spec.sources})


def _key_of(source: Source, n: int, user: dict[str, list[Any]]) -> tuple[Any, ...]:
    """Key number n: a user strategy's n-th distinct value, a key shape's spelling, or the default."""
    if user:
        return tuple(user[k][n - 1] if k in user else key_value(k, source.columns[k], n) for k in source.keys)
    return shaped_key(source, n)


def _key_strategies(source: Source, count: int) -> dict[str, list[Any]]:
    from ..keys import KeyShape

    return {k: distinct_values(source.values[k], count) for k in source.keys if k in source.values and not isinstance(source.values[k], KeyShape)}


def _snapshot_versions(spec: Spec, source: Source) -> list[Version]:
    """Three snapshots: the first as the schedule starts; the second, landing as the
    middle window runs, changes one row, drops one and adds one (keyless: drops one
    row and adds a copy of another); the third, as the last window runs, is the second again."""
    windows = spec.schedule.windows
    others = [c for c in source.columns if c not in source.keys]
    user = {c: distinct_values(source.values[c], 8) for c in others if c in source.values}

    def vals(i: int) -> dict[str, Any]:
        return {c: (user[c][i % len(user[c])] if c in user else value_at(c, source.columns[c], i)) for c in others}

    keys = _key_strategies(source, 5)
    if source.keys:
        first = [(_key_of(source, n, keys), vals(n)) for n in (1, 2, 3)]
        second = [(_key_of(source, 1, keys), vals(4)), (_key_of(source, 3, keys), vals(3)), (_key_of(source, 4, keys), vals(5))]
    else:
        first = [((), vals(n)) for n in (1, 2, 3)]
        second = [((), vals(1)), ((), vals(3)), ((), vals(3))]
    snaps = [(spec.schedule.start, first)]
    if len(windows) > 1:
        snaps.append((spec.run_time(windows[len(windows) // 2]), second))
    if len(windows) > 2:
        snaps.append((spec.run_time(windows[-1]), second))
    return assemble_snapshots(source, snaps)


def _source_versions(spec: Spec, source: Source) -> list[Version]:
    if source.snapshot:
        return _snapshot_versions(spec, source)
    late = spec.max_lateness if spec.max_lateness > timedelta(0) else None
    keyless = not source.keys
    unique = source.append_only or not source.updates or keyless
    is_date = is_date_event(source)

    def day(t: datetime) -> datetime:
        return datetime(t.year, t.month, t.day) if is_date else t

    # (key number, event time, lateness, value index); keys are numbered in the order
    # rows are made, which is event order window by window
    planned: list[tuple[int, datetime, timedelta, int]] = []
    shapes: set[tuple[datetime, timedelta]] = set()
    first_key: dict[int, int] = {}
    counter = 0

    def new_row(event: datetime, lateness: timedelta) -> int | None:
        nonlocal counter
        shape = (day(event), lateness)
        if shape in shapes:  # e.g. a DATE column folds a day's rows together: one of each shape is enough
            return None
        shapes.add(shape)
        counter += 1
        planned.append((counter, event, lateness, len(planned)))
        return counter

    zero = timedelta(0)
    for i, w in enumerate(spec.schedule.windows):
        length = w.end - w.start
        start_key = new_row(w.start, zero)
        new_row(w.end - timedelta(seconds=1), zero)
        if late is not None:
            new_row(w.start, late)  # same event time as the start row, exactly max_lateness late
            new_row(w.start + timedelta(seconds=int(length.total_seconds()) // 2), late)
        if start_key is not None:
            first_key[i] = start_key
        if not unique and i - 1 in first_key:
            # a newer version, in this window, of a key first seen one window earlier
            # (its values: the next ones after the first version's, so that something besides the time changes)
            earlier = next(p for p in planned if p[0] == first_key[i - 1])
            planned.append((first_key[i - 1], w.start + timedelta(seconds=int(length.total_seconds()) // 4), zero, earlier[3] + 1))

    others = [c for c in source.columns if c not in source.keys and c != source.event_time]
    user = {c: distinct_values(source.values[c], len(planned) + 1) for c in others if c in source.values}
    keys = _key_strategies(source, counter + 1)
    rows: list[RawRow] = []
    for n, event, lateness, i in planned:
        key = _key_of(source, n, keys) if source.keys else ()
        vals = {c: (user[c][i] if c in user else value_at(c, source.columns[c], i)) for c in others}
        rows.append((key, event, lateness, vals))
    if keyless and rows:
        rows.append(rows[0])  # an exact duplicate row: a keyless table is a multiset
    return assemble_versions(spec, source, rows)


# --- the scenarios ---------------------------------------------------------------------

#: the families in the order they run: one scenario per window before one per statement
FAMILIES: tuple[str, ...] = ("nominal", "duplicate", "backfill", "out_of_order", "crash", "rerun_crash", "concurrent")


@dataclass(frozen=True)
class Planned:
    """One single-fault scenario: its family, its steps, what it does in words,
    and which step (1-based) carries the planned crash (0: none)."""

    family: str
    steps: tuple[Step, ...]
    what: str
    fault_step: int = 0


def families(spec: Spec) -> list[str]:
    """The families `Spec.exercise` (and `Spec.concurrency`) allow."""
    ex = spec.exercise
    allowed = {
        "nominal": True,
        "duplicate": "duplicate" in ex,
        "backfill": "backfill" in ex,
        "out_of_order": "out_of_order" in ex,
        "crash": "crash" in ex,
        "rerun_crash": "crash" in ex and "duplicate" in ex,
        "concurrent": "concurrent" in ex and spec.concurrency != "none",
    }
    return [f for f in FAMILIES if allowed[f]]


def enumerate_plan(
    spec: Spec,
    windows: tuple[Window, ...],
    boundaries: dict[int, int],
    rerun_boundaries: dict[int, int] | None = None,
    pauses: dict[int, list[int]] | None = None,
) -> list[Planned]:
    """Every single-fault scenario, in running order.

    `boundaries[w]`: statement boundaries of window w's nominal run (crash points
    and interleavings are enumerated over them); `rerun_boundaries[w]`: those of
    a duplicate run of w right after its nominal run (default: the same);
    `pauses[w]`: the statements after which a run of w is paused while another
    runs (default: every one but the last; see `pause_points`)."""
    rerun = rerun_boundaries if rerun_boundaries is not None else boundaries
    nominal = nominal_plan(windows, spec.run_delay)
    n = len(nominal)
    last = spec.run_time(windows[-1])
    allowed = families(spec)
    out: list[Planned] = []

    def with_step(after: int, step: RunStep) -> tuple[Step, ...]:
        return (*nominal[: after + 1], step, *nominal[after + 1 :])

    def replaced(i: int, step: RunStep) -> tuple[Step, ...]:
        return (*nominal[:i], step, *nominal[i + 1 :])

    out.append(Planned("nominal", tuple(nominal), "the nominal plan, no fault"))
    if "duplicate" in allowed:
        for w in range(n):
            out.append(Planned("duplicate", with_step(w, RunStep(w, spec.run_time(windows[w]), (), "duplicate")), f"a duplicate run of window {w} right after its run"))
    if "backfill" in allowed:
        for w in range(n - 1):
            out.append(Planned("backfill", (*nominal, RunStep(w, last, (), "backfill")), f"a backfill of window {w} after the last window"))
    if "out_of_order" in allowed:
        for w in range(n - 1):
            at = spec.run_time(windows[w + 1])
            swapped = (RunStep(w + 1, at, (), "catch-up"), RunStep(w, at, (), "catch-up"))
            out.append(Planned("out_of_order", (*nominal[:w], *swapped, *nominal[w + 2 :]), f"windows {w + 1} and {w} run out of order"))
    # crash points: per window, after every statement first, then before every one —
    # "before k+1" leaves the database as "after k" did (only Python code between them
    # differs), so the after-points reach each committed state in half the scenarios
    if "crash" in allowed:
        for w in range(n):
            for when in ("after", "before"):
                for k in range(1, boundaries.get(w, 0) + 1):
                    step = RunStep(w, spec.run_time(windows[w]), (Fault(k, when),), "nominal")
                    out.append(Planned("crash", replaced(w, step), f"window {w} crashes {when} statement {k}, then is retried", w + 1))
    if "rerun_crash" in allowed:
        for w in range(n):
            for when in ("after", "before"):
                for k in range(1, rerun.get(w, 0) + 1):
                    step = RunStep(w, spec.run_time(windows[w]), (Fault(k, when),), "duplicate")
                    out.append(Planned("rerun_crash", with_step(w, step), f"a duplicate run of window {w} crashes {when} statement {k}, then is retried", w + 2))
    if "concurrent" in allowed:
        out.extend(_concurrent(spec, windows, nominal, boundaries, pauses or {}))
    return out


def _concurrent(spec: Spec, windows: tuple[Window, ...], nominal: list[RunStep], boundaries: dict[int, int], pauses: dict[int, list[int]]) -> list[Planned]:
    """Two runs at once under fixed interleavings: A's statements all first, B's
    all first, strictly alternating; then the schedules that pause one run once
    (A runs k statements, B runs to the end, A finishes), which is what a
    read-modify-write lost update needs on an engine that aborts write-write
    conflicts (alternating, the two writes collide and one run is retried)."""
    n = len(nominal)
    pairs: list[tuple[int, int]] = [(w, w + 1) for w in range(n - 1)]
    if spec.concurrency == "same-partition":
        pairs = [(w, w) for w in range(n)] + pairs

    def step(a: int, b: int, choices: tuple[int, ...]) -> tuple[Step, ...]:
        at = max(spec.run_time(windows[a]), spec.run_time(windows[b]))
        runs = (RunStep(a, at, (), "nominal"), RunStep(b, at, (), "duplicate" if a == b else "nominal"))
        both = ParallelStep(runs, choices)
        return (*nominal[:a], both, *nominal[b + 1 :])

    def name(a: int, b: int) -> str:
        return f"window {a} and a duplicate run of it at once" if a == b else f"windows {a} and {b} at once"

    fixed: list[Planned] = []
    preempt: list[Planned] = []
    for a, b in pairs:
        ba, bb = max(1, boundaries.get(a, 1)), max(1, boundaries.get(b, 1))
        m = 2 * (ba + bb) + 8  # more turns than both runs have statements: a run that blocks or retries stays covered
        first, second = ("the first run", "the second run") if a == b else (f"window {a}", f"window {b}")
        fixed.append(Planned("concurrent", step(a, b, ()), f"{name(a, b)}, {first}'s statements first"))
        fixed.append(Planned("concurrent", step(a, b, (1,) * m), f"{name(a, b)}, {second}'s statements first"))
        fixed.append(Planned("concurrent", step(a, b, (0, 1) * m), f"{name(a, b)}, statements strictly alternating"))
        for k in pauses.get(a, range(1, ba)):
            preempt.append(Planned("concurrent", step(a, b, (0,) * k + (1,) * m), f"{name(a, b)}, {first} paused after {k} statement(s) while {second} runs"))
        for k in pauses.get(b, range(1, bb)):
            preempt.append(Planned("concurrent", step(a, b, (1,) * k + (0,) * m), f"{name(a, b)}, {second} paused after {k} statement(s) while {first} runs"))
    return fixed + preempt


_WRITE = re.compile(r"\b(insert|update|delete|merge|upsert|create|drop|alter|truncate|copy)\b", re.I)
_READ = re.compile(r"^[\s(]*(select|with|values|table|from|show|describe|pragma)\b", re.I)


def pause_points(trace: list[Boundary]) -> list[int]:
    """Where pausing a run while another one runs can change the outcome: right
    after a read that a later write of the same run may act on (the lost update:
    read, the other run writes, write back what was read). Pausing after a write
    instead is what "strictly alternating" already does, and pausing after
    bookkeeping (cursor, connect) is the same as pausing after the statement before."""
    def reads(b: Boundary) -> bool:
        return b.kind in ("execute", "sql", "executemany") and bool(_READ.match(b.text)) and not _WRITE.search(b.text)

    def writes(b: Boundary) -> bool:
        return b.kind in ("append", "copy") or (b.kind in ("execute", "sql", "executemany") and not reads(b))

    last_write = max((b.index for b in trace if writes(b)), default=0)
    return [b.index for b in trace if reads(b) and b.index < last_write]


def thin(plan: list[Planned], cap: int) -> list[Planned]:
    """At most `cap` scenarios: the nominal plan and the duplicates (one per window,
    and the pass needs them first) stay whole; every other family keeps a share in
    proportion to its size, picked evenly across it, so no family drops out."""
    if len(plan) <= cap:
        return plan
    keep_whole = {"nominal", "duplicate"}
    groups: dict[str, list[Planned]] = {}
    for p in plan:
        groups.setdefault(p.family, []).append(p)
    room = max(0, cap - sum(len(g) for f, g in groups.items() if f in keep_whole))
    rest = {f: g for f, g in groups.items() if f not in keep_whole}
    total = sum(len(g) for g in rest.values())
    out: list[Planned] = []
    for f, g in groups.items():
        if f in keep_whole:
            out.extend(g)
            continue
        quota = max(1, min(len(g), room * len(g) // max(1, total)))
        out.extend(g[(j * len(g)) // quota] for j in range(quota))
    return out


# --- coverage --------------------------------------------------------------------------


@dataclass
class Coverage:
    """What a pass exercised: crash points reached and retried, windows re-run."""

    planned: int = 0  # scenarios in the (thinned) plan
    enumerated: int = 0  # before thinning
    judged: int = 0
    stopped: str = ""  # why the pass stopped early, if it did
    thinned_by: str = ""  # what made the plan smaller than the enumeration, if anything
    crash_points: int = 0  # planned (window, statement, before/after) points of nominal runs
    tried: int = 0  # ... played
    crashed: int = 0  # ... at which the run really crashed (a planned point past the run's end is not)
    retried: int = 0  # ... and was retried
    rerun_points: int = 0  # the same inside duplicate runs
    rerun_tried: int = 0
    rerun_crashed: int = 0
    rerun_retried: int = 0
    duplicated: set[int] = field(default_factory=set)
    backfilled: set[int] = field(default_factory=set)
    swapped: set[int] = field(default_factory=set)  # windows run out of order
    interleavings: int = 0
    by_thread: dict[str, int] = field(default_factory=dict)  # crash points that crashed, by the thread they fell on
    threads_seen: set[str] = field(default_factory=set)  # threads that ran statements in any judged attempt
    # window -> "before"/"after" -> [crashed, planned]: the crash points of nominal runs, per window
    by_window: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    late: set[int] = field(default_factory=set)  # windows whose data has rows landing late

    def add(self, p: Planned, out: Outcome) -> None:
        for a in out.attempts:
            self.threads_seen.update(thread_group(b.thread) for b in a.trace)
        self.judged += 1
        if p.fault_step:
            runs = [a for a in out.attempts if a.step == p.fault_step]
            step = p.steps[p.fault_step - 1]
            fault = step.faults[0] if isinstance(step, RunStep) and step.faults else None
            hit = any(a.attempt == 1 and a.outcome == "crash" and a.at is not None and fault is not None and a.at.index == fault.at and a.when == fault.when for a in runs)
            again = hit and any(a.attempt > 1 for a in runs)
            if hit:
                at = next(a.at for a in runs if a.attempt == 1 and a.outcome == "crash" and a.at is not None)
                group = thread_group(at.thread)
                self.by_thread[group] = self.by_thread.get(group, 0) + 1
            if p.family == "crash":
                self.tried += 1
                self.crashed += hit
                self.retried += again
                if isinstance(step, RunStep) and fault is not None:
                    cell = self.by_window.setdefault(step.window, {}).setdefault(fault.when, [0, 0])
                    cell[0] += hit
                    cell[1] += 1
            else:
                self.rerun_tried += 1
                self.rerun_crashed += hit
                self.rerun_retried += again
        for s in p.steps:
            if isinstance(s, ParallelStep):
                continue
            if s.tag == "duplicate" and p.family == "duplicate":
                self.duplicated.add(s.window)
            elif s.tag == "backfill":
                self.backfilled.add(s.window)
            elif s.tag == "catch-up":
                self.swapped.add(s.window)
        if p.family == "concurrent":
            self.interleavings += 1

    def line(self) -> str:
        """One short line: what the pass reached of what it planned."""
        parts = [f"{self.judged}/{self.planned} single-fault scenarios" + (f" (thinned from {self.enumerated} by {self.thinned_by})" if self.enumerated > self.planned else "")]
        if self.crash_points:
            parts.append(f"crash points {self.crashed}/{self.crash_points} ({self.retried} retried)")
        if self.rerun_points:
            parts.append(f"in re-runs {self.rerun_crashed}/{self.rerun_points}")
        runs = [f"{len(s)} {name}" for s, name in ((self.duplicated, "duplicated"), (self.backfilled, "backfilled"), (self.swapped, "out of order")) if s]
        if runs:
            parts.append("windows " + ", ".join(runs))
        if self.interleavings:
            parts.append(f"{self.interleavings} interleavings")
        if len(self.threads_seen) > 1:
            # the load wrote from several threads: say where the crashes fell
            parts.append("crashed on " + ", ".join(f"{name} {self.by_thread.get(name, 0)}" for name in sorted(self.threads_seen, key=lambda n: (n != "the run's thread", n))))
        if self.stopped:
            parts.append(f"stopped: {self.stopped}")
        return "; ".join(parts)

    def details(self, limit: int = 8) -> str:
        """Which windows got what: the crash points crashed/played before and after
        statements, per window, and the windows duplicated, backfilled, run out of
        order and given late rows (at most `limit` windows named per item)."""

        def names(ws: set[int] | list[int]) -> str:
            ws = sorted(ws)
            return ",".join(f"w{w}" for w in ws[:limit]) + ("…" if len(ws) > limit else "")

        parts = []
        cells = []
        for w in sorted(self.by_window)[:limit]:
            c = self.by_window[w]
            cells.append(f"w{w} " + " ".join(f"{when} {c[when][0]}/{c[when][1]}" for when in ("before", "after") if when in c))
        if cells:
            parts.append("crashed/played per window: " + ", ".join(cells) + ("…" if len(self.by_window) > limit else ""))
        for ws, what in ((self.duplicated, "duplicated"), (self.backfilled, "backfilled"), (self.swapped, "out of order"), (self.late, "late rows in")):
            if ws:
                parts.append(f"{what} {names(ws)}")
        return "; ".join(parts)


def thread_group(name: str) -> str:
    """A thread's name for coverage: pool workers by their place in their pool
    (`ThreadPoolExecutor-7_2` -> `ThreadPoolExecutor worker 2`: the pool's number grows
    with every attempt), the run's own thread as such."""
    if not name:
        return "the run's thread"
    return re.sub(r"-\d+_(\d+)$", r" worker \1", name)


# --- the pass --------------------------------------------------------------------------


@dataclass
class Found:
    """The first single-fault scenario that broke a property."""

    index: int  # 1-based position in the plan
    total: int
    planned: Planned
    finding: Finding
    scenario: Scenario
    outcome: Outcome

    def describe(self) -> str:
        return f"found by the systematic pass: single-fault scenario {self.index} of {self.total}, {self.planned.what}"


@dataclass
class PassResult:
    coverage: Coverage
    found: Found | None = None
    others: list[Found] = field(default_factory=list)  # later failures of another property x target


def finding_key(finding: Finding) -> tuple[str, tuple[str, ...]]:
    """A distinct finding: the property and the targets it broke on."""
    return finding.prop, tuple(sorted({d.target for d in finding.diffs}))


Judge = Callable[[Scenario], tuple[Finding | None, Outcome]]


def run_pass(spec: Spec, data: Dataset, clean: Outcome, judge: Judge, *, cap: int, deadline: float, more_seconds: float = 0.0) -> PassResult:
    """Judge the plan in order; stop at the first finding or when the time is up.

    With `more_seconds`, the pass goes on for that long after its first finding
    (never past `deadline`) to collect failures of another property or target
    (`PassResult.others`): one bug can hide another.

    The nominal plan and the duplicate runs go first: their attempts give the
    statement counts the crash points are enumerated over, exactly as those runs
    go under this data's arrival timeline (a clean run sees everything at once
    and may take another path)."""
    windows = spec.all_windows
    cov = Coverage()
    for source in spec.sources:
        for v in data.sources.get(source.table, []):
            if v.arrival > v.event(source):
                cov.late.update(w.index for w in windows if w.start <= v.event(source) < w.end)
    head = [p for p in enumerate_plan(spec, windows, {}, {}) if p.family in ("nominal", "duplicate")]
    counts: dict[int, int] = dict(clean.boundaries)
    rerun: dict[int, int] = {}
    pauses: dict[int, list[int]] = {}

    def final_plan(room: int = cap) -> list[Planned]:
        full = enumerate_plan(spec, windows, counts, {**counts, **rerun}, pauses)
        cov.enumerated = len(full)
        plan = thin(full, min(cap, room))
        if len(plan) < len(full):
            cov.thinned_by = f"the cap of {cap}" if cap <= room else "the time budget"
        cov.planned = len(plan)
        cov.crash_points = sum(p.family == "crash" for p in plan)
        cov.rerun_points = sum(p.family == "rerun_crash" for p in plan)
        return plan

    def play(index: int, p: Planned, total: Callable[[], int]) -> Found | None:
        scenario = Scenario(data, list(p.steps))
        finding, out = judge(scenario)
        cov.add(p, out)
        if p.family == "nominal":
            counts.update({a.window: a.boundaries for a in out.attempts if a.tag == "nominal" and a.attempt == 1})
            pauses.update({a.window: pause_points(a.trace) for a in out.attempts if a.tag == "nominal" and a.attempt == 1})
        elif p.family == "duplicate":
            rerun.update({a.window: a.boundaries for a in out.attempts if a.tag == "duplicate" and a.attempt == 1})
        if finding is None:
            return None
        cov.stopped = cov.stopped or f"failure at {index}"
        return Found(index, total(), p, finding, scenario, out)

    def estimate() -> int:
        return len(final_plan())

    result = PassResult(cov)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    stop_at = [deadline]

    def record(found: Found) -> bool:
        """Keep a finding; True when the pass should stop now."""
        key = finding_key(found.finding)
        if result.found is None:
            result.found = found
            stop_at[0] = min(deadline, time.perf_counter() + more_seconds)
        elif key not in seen:
            result.others.append(found)
        seen.add(key)
        return more_seconds <= 0

    started = time.perf_counter()
    played: set[int] = set()
    for i, p in enumerate(head, 1):
        if time.perf_counter() > stop_at[0] and i > 1:
            if result.found is None:
                cov.planned = estimate()
                cov.stopped = "time budget"
            return result
        played.add(i)
        found = play(i, p, estimate)
        if found is not None:
            if record(found):
                return result
            break
    # the head's cost tells how many scenarios the time left allows: a plan that does not
    # fit is thinned evenly now, rather than cut off at the time budget later
    each = (time.perf_counter() - started) / max(1, len(played))
    room = len(head) + int(0.9 * (deadline - time.perf_counter()) / each) if each > 0 else cap
    plan = final_plan(room)  # starts with `head`: thinning keeps the nominal plan and the duplicates whole
    order = [(i, p) for i, p in enumerate(plan, 1) if i not in played]
    if result.found is not None:
        # looking for other findings in a short time: one scenario of each family in turn
        order = round_robin(order)
    for i, p in order:
        if time.perf_counter() > stop_at[0]:
            if result.found is None:
                cov.stopped = f"time budget, after {cov.judged}"
            break
        try:
            found = play(i, p, lambda: len(plan))
        except Exception:
            if result.found is None:
                raise
            break  # looking for more findings must not lose the first one
        if found is not None and record(found):
            return result
    return result


def round_robin(plan: list[tuple[int, Planned]]) -> list[tuple[int, Planned]]:
    """The plan reordered to take one scenario of each family in turn."""
    groups: dict[str, list[tuple[int, Planned]]] = {}
    for item in plan:
        groups.setdefault(item[1].family, []).append(item)
    out: list[tuple[int, Planned]] = []
    queues = list(groups.values())
    while queues:
        out.extend(q.pop(0) for q in queues)
        queues = [q for q in queues if q]
    return out


def every_target_empty(outcome: Outcome) -> bool:
    return bool(outcome.final) and all(not rows for _, rows in outcome.final.values())
