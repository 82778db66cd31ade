"""P4 atomic visibility: a reader on another connection, sampled at every
statement boundary of a run, must see each partition of an atomic target
either as it was before the run or as it is after it."""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from .diff import TableDiff, normalize

if TYPE_CHECKING:
    from .instrument import Boundary, Controller
    from .runner import Env, Finding
    from .spec import Target

Parts = dict[str, dict[Any, Counter[tuple[Any, ...]]]]


class VisibilitySampler:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.targets: list[Target] = [t for t in env.spec.targets if t.atomic]
        self.lock = threading.Lock()
        self.samples: list[tuple[Boundary, Parts]] = []
        self.columns: dict[str, list[str]] = {}
        self.before = self.read()

    def read(self) -> Parts:
        """Committed state as a separate connection sees it, by partition."""
        out: Parts = {}
        for t in self.targets:
            cols, rows = self.env.sandbox.snapshot(t)
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
        from .runner import Finding

        after = self.read()
        for b, seen in self.samples:
            for t in self.targets:
                label = t.label
                before_p, after_p, seen_p = self.before[label], after[label], seen[label]
                for part in set(before_p) | set(after_p) | set(seen_p):
                    s = seen_p.get(part, Counter())
                    if s in (before_p.get(part, Counter()), after_p.get(part, Counter())):
                        continue
                    cols = self.columns[label]
                    d = TableDiff(label, cols, t.keys)
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
