"""The properties, judged in one place.

P0 determinism, P1 same outcome as one clean run, P2 declared keys unique,
P3 no gap after a failed attempt, P4 atomic visibility to concurrent readers,
P5 a target declaring expected= matches its reference query.
Each judge takes tables (snapshots) and returns a Finding or None; the
executor decides when to call them and stops the scenario at the first one."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import NonDeterminismError
from .diff import TableDiff, compare, duplicate_keys, lost_rows, normalize
from .model import Attempt, Boundary, Finding, Outcome, Snapshot

if TYPE_CHECKING:
    from ..instrument import Controller
    from ..spec import Spec, Target

#: property id -> its title, as reports and docs name it
TITLES: dict[str, str] = {
    "P0": "determinism (two clean runs give the same output)",
    "P1": "same outcome as one clean run",
    "P2": "declared keys stay unique",
    "P3": "no gap after a failed run",
    "P4": "atomic visibility to concurrent readers",
    "P5": "matches the reference (Target(expected=...))",
}


def _diff_summary(diffs: Sequence[TableDiff]) -> str:
    return "; ".join(f"{d.target}: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in d.counts().items() if n) for d in diffs)


# --- P0 ------------------------------------------------------------------------------


def judge_determinism(spec: Spec, first: Outcome, second: Outcome) -> NonDeterminismError | None:
    """P0: a second clean run on the same data must give the same tables."""
    cols: dict[str, list[str]] = {}
    diffs = []
    for t in spec.targets:
        d = compare(t.label, t.keys, first.final[t.label], second.final[t.label])
        if not d.empty:
            diffs.append(d)
            cols[t.label] = d.columns_differ
    if not diffs:
        return None
    lines = [f"idemtest: P0 {TITLES['P0']} — two clean runs of the same data differ, so idempotency cannot be judged", ""]
    for d in diffs:
        if d.columns_differ:
            lines.append(f"non-deterministic column(s) in {d.target}: {', '.join(d.columns_differ)}")
            lines.append(
                f"  declare them ignored — Target({d.target!r}, ignore={d.columns_differ!r}) — or fix them "
                "(use run.now instead of SQL now()/random(), and derive ids from the data)"
            )
        else:
            lines.append(f"{d.target}: the two clean runs produced different rows")
            lines.append("  the load depends on something other than its input and run.now (random ids? unordered LIMIT? SQL now()?)")
        lines.append(d.render(3, "    "))
    return NonDeterminismError("\n".join(lines), columns=cols, finding=Finding("P0", "two clean runs differ", diffs))


# --- P1 ------------------------------------------------------------------------------


def judge_outcome(spec: Spec, clean: Outcome, out: Outcome) -> Finding | None:
    """P1: after the scenario every target equals the clean run's, as a multiset of rows."""
    diffs = []
    for t in spec.targets:
        d = compare(t.label, t.keys, clean.final[t.label], out.final[t.label])
        if not d.empty:
            diffs.append(d)
    if diffs:
        return Finding("P1", f"after the scenario the targets differ from one clean run ({_diff_summary(diffs)})", diffs)
    return None


# --- P5 ------------------------------------------------------------------------------


def judge_reference(spec: Spec, expected: dict[str, Snapshot], final: dict[str, Snapshot], where: str = "after the scenario") -> Finding | None:
    """P5: a target with expected= holds what its reference query returns over
    the sources once every row has arrived (the columns the query names)."""
    diffs = []
    for t in spec.targets:
        if t.label not in expected or t.label not in final:
            continue
        d = compare(t.label, t.keys, expected[t.label], final[t.label])
        if not d.empty:
            diffs.append(d)
    if diffs:
        return Finding("P5", f"{where} the targets differ from their reference queries ({_diff_summary(diffs)})", diffs)
    return None


def all_attempts_failed(window: int, step: int, attempts: Sequence[Attempt]) -> Finding:
    """P1 too: a run that fails on every retry cannot end as a clean run does."""
    last = attempts[-1]
    return Finding(
        "P1",
        f"the run of window {window} failed on all {len(attempts)} attempts, so the outcome cannot match a clean run "
        f"(last: {last.error or last.outcome})",
        step=step,
        detail=last.tb,
    )


# --- P2 and P3 -----------------------------------------------------------------------


def judge_attempt(keyed: Sequence[Target], rec: Attempt, before: dict[str, Snapshot], after: dict[str, Snapshot], gaps: bool = True) -> Finding | None:
    """P2 after every attempt; P3 after a failed one (keyed targets only: a
    keyless replaced row cannot be told from a lost one; `gaps=False` when a
    snapshot source may drop keys, so a key gone after a run may be a deletion)."""
    for t in keyed:
        dup = duplicate_keys(t.label, t.keys, after[t.label])
        if dup.duplicate_keys:
            return Finding("P2", f"duplicate keys in {t.label} after step {rec.step} ({rec.tag} run of window {rec.window}, attempt {rec.attempt})", [dup], rec.step)
        if gaps and rec.outcome != "ok" and t.label in before:
            lost = lost_rows(t.label, t.keys, before[t.label], after[t.label])
            if lost.missing:
                return Finding(
                    "P3",
                    f"rows of {t.label} committed before step {rec.step} are gone after its attempt {rec.attempt} failed "
                    "(a reader sees a gap until the retry)",
                    [lost],
                    rec.step,
                )
    return None


# --- P4 ------------------------------------------------------------------------------

Parts = dict[str, dict[Any, Counter[tuple[Any, ...]]]]


class VisibilitySampler:
    """P4: a reader on another connection, sampled at every statement boundary
    of a run, must see each partition of an atomic target either as it was
    before the run or as it is after it."""

    def __init__(self, targets: Sequence[Target], read_table: Callable[[Target], Snapshot]) -> None:
        self.targets = [t for t in targets if t.atomic]
        self.read_table = read_table
        self.lock = threading.Lock()
        self.samples: list[tuple[Boundary, Parts]] = []
        self.columns: dict[str, list[str]] = {}
        self.before = self.read()

    def read(self) -> Parts:
        """Committed state as a separate connection sees it, by partition."""
        out: Parts = {}
        for t in self.targets:
            try:
                cols, rows = self.read_table(t)
            except Exception as e:
                if t.file is None:
                    raise
                # a file a reader cannot parse is half-written: a state of its own
                out[t.label] = {("<unreadable file>",): Counter({(" ".join(str(e).split())[:120],): 1})}
                continue
            if not cols:
                out[t.label] = {}  # not created yet: no partition
                continue
            self.columns[t.label] = cols
            by = [t.partition_by] if t.partition_by else list(t.keys)
            idx = [cols.index(c) for c in by]
            parts: dict[Any, Counter[tuple[Any, ...]]] = {}
            for r in rows:
                nr = tuple(normalize(v) for v in r)
                parts.setdefault(tuple(nr[i] for i in idx), Counter())[nr] += 1
            out[t.label] = parts
        return out

    def observe(self, ctl: Controller, b: Boundary) -> None:
        """Gate hook: runs at a statement boundary, before the statement."""
        with self.lock:
            self.samples.append((b, self.read()))

    def check(self) -> Finding | None:
        after = self.read()
        for b, seen in self.samples:
            for t in self.targets:
                label = t.label
                before_p, after_p, seen_p = self.before[label], after[label], seen[label]
                for part in set(before_p) | set(after_p) | set(seen_p):
                    s = seen_p.get(part, Counter())
                    if s in (before_p.get(part, Counter()), after_p.get(part, Counter())):
                        continue
                    d = TableDiff(label, self.columns.get(label, []), t.keys)
                    d.missing = sorted((after_p.get(part, Counter()) - s).elements(), key=str)
                    d.extra = sorted((s - after_p.get(part, Counter())).elements(), key=str)
                    name = t.partition_by or ",".join(t.keys)
                    return Finding(
                        "P4",
                        f"a reader on another connection saw partition {name}={part[0] if len(part) == 1 else part} of {label} "
                        f"half-written at {b.run}, before statement {b.index} ({b.describe(60)}): "
                        f"{sum(s.values())} rows, neither the {sum(before_p.get(part, Counter()).values())} before the run "
                        f"nor the {sum(after_p.get(part, Counter()).values())} after it",
                        [d],
                    )
        return None
