"""The last reduction of a failure before it is reported: drop what it does not need.

Hypothesis's shrinker works on its choice sequence and stops at its budget;
the systematic pass reports its fixed data set as it is. Either can leave
rows and perturbations the failure does not need. This pass tries, in order,
removing each extra run (a duplicate, backfill or catch-up run of a window
that another step still runs), putting each block of catch-up runs back on
schedule (the windows in order, each at its nominal time), each planned
crash, and each source row version, one at a time, keeping a removal whenever the scenario still breaks
the same property on the same target(s); it sweeps again until a sweep removes
nothing. Deterministic (no randomness, fixed order) and bounded by a deadline:
at the deadline the smallest failure so far is reported.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from .model import Dataset, Finding, Outcome, ParallelStep, RunStep, Scenario, Step

#: a candidate that still fails: its finding and outcome; None when it passes (or differs)
Judge = Callable[[Scenario], "tuple[Finding, Outcome] | None"]


@dataclass
class Reduced:
    scenario: Scenario
    finding: Finding
    outcome: Outcome
    tried: int = 0
    removed: int = 0  # runs, crashes and rows removed
    rows_before: int = 0
    faults_before: int = 0
    timed_out: bool = False
    seconds: float = 0.0

    def note(self) -> str:
        """One clause for the report, empty when nothing was removed."""
        if not self.removed and not self.timed_out:
            return ""
        rows = self.scenario.data.row_count()
        faults = count_faults(self.scenario.steps)
        parts = []
        if rows != self.rows_before:
            parts.append(f"{self.rows_before} → {rows} source rows")
        if faults != self.faults_before:
            parts.append(f"{self.faults_before} → {faults} faults")
        what = ", ".join(parts) or "nothing removed"
        cut = ", stopped at its time limit" if self.timed_out else ""
        return f"reduced ({what}) in {self.tried} re-runs, {self.seconds:.1f} s{cut}"


def same_failure(first: Finding, other: Finding | None) -> bool:
    """`other` breaks the property `first` broke, on at least one of its targets."""
    if other is None or other.prop != first.prop:
        return False
    want = {d.target for d in first.diffs}
    got = {d.target for d in other.diffs}
    return not want or bool(want & got)


def count_faults(steps: list[Step]) -> int:
    """Perturbations of the nominal plan: planned crashes, extra runs, runs at once."""
    n = 0
    for s in steps:
        if isinstance(s, ParallelStep):
            n += 1 + sum(len(r.faults) for r in s.runs)
        else:
            n += len(s.faults) + (s.tag != "nominal")
    return n


def _windows_run(steps: list[Step]) -> list[int]:
    out: list[int] = []
    for s in steps:
        out.extend(r.window for r in (s.runs if isinstance(s, ParallelStep) else (s,)))
    return out


def _fewer_runs(sc: Scenario) -> Iterator[Scenario]:
    """Each extra (non-nominal) run removed, when its window still runs elsewhere."""
    runs = _windows_run(sc.steps)
    for i in range(len(sc.steps) - 1, -1, -1):
        s = sc.steps[i]
        if isinstance(s, RunStep) and s.tag != "nominal" and runs.count(s.window) > 1:
            yield Scenario(sc.data, sc.steps[:i] + sc.steps[i + 1 :])


def _on_time(sc: Scenario, nominal: dict[int, datetime]) -> Iterator[Scenario]:
    """Each block of consecutive catch-up runs replaced by its windows' nominal runs,
    in window order (a paused scheduler that did not pause); the clock stays monotonic."""
    steps = sc.steps

    def late(k: int) -> bool:
        s = steps[k]
        return isinstance(s, RunStep) and s.tag == "catch-up" and s.window in nominal

    i = 0
    while i < len(steps):
        if not late(i):
            i += 1
            continue
        j = i
        while j < len(steps) and late(j):
            j += 1
        out: list[Step] = list(steps[:i])
        clock = max((x.at for x in out), default=None)
        for w in sorted(s.window for s in steps[i:j] if isinstance(s, RunStep)):
            clock = nominal[w] if clock is None else max(clock, nominal[w])
            out.append(RunStep(w, clock))
        if clock is not None and any(x.at < clock for x in steps[j:]):
            i = j  # a later step would run before the new ones: not a simpler scenario
            continue
        yield Scenario(sc.data, out + steps[j:])
        i = j


def _fewer_faults(sc: Scenario) -> Iterator[Scenario]:
    """Each planned crash removed (a retry it caused is then not needed)."""
    for i, s in enumerate(sc.steps):
        if isinstance(s, RunStep):
            for j in range(len(s.faults)):
                yield Scenario(sc.data, [*sc.steps[:i], replace(s, faults=s.faults[:j] + s.faults[j + 1 :]), *sc.steps[i + 1 :]])
        else:
            for k, r in enumerate(s.runs):
                for j in range(len(r.faults)):
                    run = replace(r, faults=r.faults[:j] + r.faults[j + 1 :])
                    yield Scenario(sc.data, [*sc.steps[:i], ParallelStep(s.runs[:k] + (run,) + s.runs[k + 1 :], s.choices), *sc.steps[i + 1 :]])


def _fewer_rows(sc: Scenario, size: int = 1) -> Iterator[Scenario]:
    """Each run of `size` consecutive source row versions removed, table by table."""
    for table in sorted(sc.data.sources):
        versions = sc.data.sources[table]
        for j in range(0, len(versions), size):
            sources = dict(sc.data.sources)
            sources[table] = versions[:j] + versions[j + size :]
            yield Scenario(Dataset(sources), sc.steps)


class _OutOfTime(Exception):
    pass


def reduce(
    scenario: Scenario, finding: Finding, outcome: Outcome, judge: Judge, *, deadline: float,
    nominal: dict[int, datetime] | None = None,
) -> Reduced:
    """The smallest failure found by removing one thing at a time (module docstring).

    Rows go in chunks first (half of the largest table, then quarters, ... then one
    by one), so the rows a failure does not need leave in a few re-runs. `nominal`
    (window -> its on-schedule run time) lets catch-up blocks go back on schedule."""
    started = time.perf_counter()
    best = Reduced(scenario, finding, outcome, rows_before=scenario.data.row_count(), faults_before=count_faults(scenario.steps))

    def shrink_by(candidates: Callable[[Scenario], Iterator[Scenario]]) -> bool:
        """Keep removing with this kind of candidate until none still fails."""
        removed = False
        while True:
            for cand in candidates(best.scenario):  # restarted after each removal: indexes moved
                if time.perf_counter() > deadline:
                    raise _OutOfTime
                best.tried += 1
                got = judge(cand)
                if got is not None and same_failure(finding, got[0]):
                    best.scenario, best.finding, best.outcome = cand, got[0], got[1]
                    best.removed += 1
                    removed = True
                    break
            else:
                return removed

    try:
        progress = True
        while progress:
            progress = shrink_by(_fewer_runs)
            if nominal:
                progress = shrink_by(functools.partial(_on_time, nominal=nominal)) or progress
            progress = shrink_by(_fewer_faults) or progress
            size = max((len(v) for v in best.scenario.data.sources.values()), default=0) // 2
            while size > 1:
                progress = shrink_by(functools.partial(_fewer_rows, size=size)) or progress
                size //= 2
            progress = shrink_by(_fewer_rows) or progress
    except _OutOfTime:
        best.timed_out = True
    best.seconds = time.perf_counter() - started
    return best
