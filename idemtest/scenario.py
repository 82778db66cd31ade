"""The scenario model: generated data + a schedule of runs, its Hypothesis
strategies, and its JSON round-trip (a saved failure replays without the generator)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Union

from ._errors import ReplayError
from .data import Dataset, Version
from .instrument import Fault

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from .spec import Spec, Window


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


@dataclass
class Scenario:
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
            data = Dataset(
                {
                    table: [Version({k: decode(x) for k, x in v["values"].items()}, datetime.fromisoformat(v["arrival"])) for v in versions]
                    for table, versions in d["data"].items()
                }
            )
            return cls(data, [step_from_json(s) for s in d["steps"]])
        except (KeyError, TypeError, ValueError) as e:
            raise ReplayError(f"the saved scenario is malformed ({type(e).__name__}: {e}); it must hold 'data' and 'steps' as written by idemtest") from None


def encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, timedelta):
        return {"$seconds": value.total_seconds()}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (tag, raw), = value.items()
        if tag == "$datetime":
            return datetime.fromisoformat(raw)
        if tag == "$date":
            return date.fromisoformat(raw)
        if tag == "$decimal":
            return Decimal(raw)
        if tag == "$seconds":
            return timedelta(seconds=raw)
        if tag == "$bytes":
            return base64.b64decode(raw)
    return value


# --- strategies ----------------------------------------------------------------


def nominal_plan(windows: tuple[Window, ...]) -> list[RunStep]:
    """Each window once, in order, at its end time."""
    return [RunStep(w.index, w.end) for w in windows]


_STRATEGIES: dict[Any, Any] = {}


def schedule_strategy(spec: Spec, windows: tuple[Window, ...], boundaries: dict[int, int]) -> SearchStrategy[list[Step]]:
    """The schedule strategy, built once per (spec, windows, boundaries): building
    an `st.composite` inspects its source (~20 ms), and it is asked for once per example."""
    key = (id(spec), windows, tuple(sorted(boundaries.items())))
    hit = _STRATEGIES.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1]
    strategy = _schedule_strategy(spec, windows, boundaries)
    if len(_STRATEGIES) >= 256:
        _STRATEGIES.clear()
    _STRATEGIES[key] = (spec, strategy)
    return strategy


def _schedule_strategy(spec: Spec, windows: tuple[Window, ...], boundaries: dict[int, int]) -> SearchStrategy[list[Step]]:
    """Perturbations of the nominal plan, each a shrinkable draw.

    `boundaries[w]` is the number of statement boundaries the clean run of
    window w went through, so crashes land on statements that exist."""
    from hypothesis import strategies as st

    n = len(windows)
    ops: list[SearchStrategy[Any]] = []
    if "duplicate" in spec.exercise:
        ops.append(st.tuples(st.just("duplicate"), st.integers(0, n - 1), st.integers(0, n - 1)))
    if "crash" in spec.exercise:
        crash = st.tuples(st.just("crash"), st.integers(0, 4 * n))
        ops.extend([crash, crash])  # crashes are the commonest production fault: draw them twice as often
    if "backfill" in spec.exercise and n > 1:
        ops.append(st.tuples(st.just("backfill"), st.integers(1, n - 1), st.integers(0, n - 1), st.integers(1, n)))
    if "out_of_order" in spec.exercise and n > 1:
        ops.append(st.tuples(st.just("out_of_order"), st.integers(0, n - 2), st.integers(2, min(4, n)), st.randoms(use_true_random=False)))
    concurrent = "concurrent" in spec.exercise and spec.concurrency != "none"
    if concurrent:
        ops.append(st.tuples(st.just("concurrent"), st.integers(0, 4 * n), st.integers(0, n - 1)))
    if not ops:
        return st.just(list(nominal_plan(windows)))

    retries = max(1, spec.retries)

    @st.composite
    def build(draw: Any) -> list[Step]:
        steps: list[RunStep] = nominal_plan(windows)
        mutations = draw(st.lists(st.one_of(*ops), max_size=4))
        crashes: list[int] = []
        pairs: list[tuple[int, int]] = []
        for op in mutations:
            kind = op[0]
            if kind == "duplicate":
                _, w, delay = op
                pos = next(i for i, s in enumerate(steps) if s.window == w)
                target = min(len(steps) - 1, pos + delay)
                steps.insert(target + 1, RunStep(w, steps[target].at, (), "duplicate"))
            elif kind == "backfill":
                _, after, first, length = op
                pos = max(i for i, s in enumerate(steps) if s.window == after)
                last = min(after - 1, first + length - 1)
                first = min(first, last)
                at = steps[pos].at
                steps[pos + 1 : pos + 1] = [RunStep(w, at, (), "backfill") for w in range(first, last + 1)]
            elif kind == "out_of_order":
                _, first, length, rnd = op
                idx = [i for i, s in enumerate(steps) if s.tag == "nominal" and first <= s.window < first + length]
                if len(idx) < 2 or idx != list(range(idx[0], idx[0] + len(idx))):
                    continue
                block = [steps[i] for i in idx]
                at = max(s.at for s in block)  # the scheduler was paused, then catches up
                order = list(range(len(block)))
                rnd.shuffle(order)
                steps[idx[0] : idx[-1] + 1] = [RunStep(block[j].window, at, (), "catch-up") for j in order]
            elif kind == "crash":
                crashes.append(op[1])
            elif kind == "concurrent":
                pairs.append((op[1], op[2]))
        for pick in crashes:
            i = pick % len(steps)
            s = steps[i]
            top = max(1, boundaries.get(s.window, 1))
            faults = draw(
                st.lists(
                    st.builds(Fault, st.integers(1, top), st.sampled_from(["after", "before"])),
                    min_size=1,
                    max_size=retries,
                )
            )
            steps[i] = RunStep(s.window, s.at, tuple(faults), s.tag)
        # monotonic clock: a step never runs before the one listed ahead of it
        out: list[Step] = []
        clock = windows[0].start
        for s in steps:
            clock = max(clock, s.at)
            out.append(RunStep(s.window, clock, s.faults, s.tag) if s.at != clock else s)
        if pairs:
            out = _pair_runs(draw, spec, out, pairs)
        return out

    return build()


def _pair_runs(draw: Any, spec: Spec, steps: list[Step], pairs: list[tuple[int, int]]) -> list[Step]:
    """Turn a run and a later one into two runs at once, interleaved by drawn choices."""
    from hypothesis import strategies as st

    for pick, offset in pairs:
        singles = [i for i, s in enumerate(steps) if isinstance(s, RunStep)]
        if len(singles) < 2:
            break
        i = singles[pick % len(singles)]
        a = steps[i]
        assert isinstance(a, RunStep)
        candidates = [j for j in singles if j > i]
        if spec.concurrency != "same-partition":
            candidates = [j for j in candidates if steps[j].window != a.window]  # type: ignore[union-attr]
        if not candidates:
            continue
        j = candidates[min(offset, len(candidates) - 1)]
        b = steps[j]
        assert isinstance(b, RunStep)
        choices = tuple(draw(st.lists(st.integers(0, 1), max_size=40)))
        at = max(a.at, b.at)
        both = ParallelStep((RunStep(a.window, at, a.faults, a.tag), RunStep(b.window, at, b.faults, b.tag)), choices)
        steps = steps[:i] + [both] + [s for k, s in enumerate(steps) if k > i and k != j]
    return steps


def describe_step(step: Step, windows: dict[int, Window]) -> str:
    if isinstance(step, ParallelStep):
        inner = " || ".join(describe_step(r, windows) for r in step.runs)
        return f"at once: {inner}"
    w = windows.get(step.window)
    text = f"{step.tag} run of window {step.window} {w if w else ''} at {step.at.isoformat(sep=' ')}"
    for f in step.faults:
        text += f"; {f}"
    return text
