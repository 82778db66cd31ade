"""Every Hypothesis strategy idemtest draws from: source rows (values by SQL
type and column name, newer versions of keys, arrival times) and the schedule
perturbations (duplicates, crashes, backfills, catch-up, concurrent pairs).
Hypothesis is imported inside the builders, so importing this module is cheap."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from .model import Dataset, Fault, ParallelStep, RunStep, Step, Version, nominal_plan

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from ..spec import Source, Spec, Window


# --- column strategies ------------------------------------------------------

_FAKER_KINDS: list[tuple[str, str]] = [
    (r"e_?mail", "email"),
    (r"first_?name", "first_name"),
    (r"last_?name|surname", "last_name"),
    (r"(^|_)(customer|user|full|person|contact)?_?name$", "name"),
    (r"city|town", "city"),
    (r"country", "country"),
    (r"address|street", "street_address"),
    (r"phone", "phone_number"),
    (r"company|merchant|vendor|supplier", "company"),
    (r"url|website|link", "url"),
    (r"currency", "currency_code"),
    (r"product|item|sku_name", "word"),
    (r"ip(_?addr)?$", "ipv4"),
]
_ENUMS: list[tuple[str, list[str]]] = [
    (r"status|state$", ["new", "paid", "shipped", "cancelled", "refunded"]),
    (r"type|kind|category", ["a", "b", "c"]),
    (r"channel|source", ["web", "app", "store"]),
]


@cache
def faker_pool(kind: str, size: int = 64) -> tuple[str, ...]:
    """A fixed pool of Faker values per provider: Faker costs ~0.2 ms a call,
    and drawing from a pool keeps the Hypothesis draw the only source of choice."""
    from faker import Faker

    fake = Faker()
    fake.seed_instance(20260601)
    values: list[str] = []
    for _ in range(size * 3):
        v = str(getattr(fake, kind)())
        if v not in values:
            values.append(v)
        if len(values) == size:
            break
    return tuple(values)


def _base_type(sqltype: str) -> tuple[str, tuple[int, ...]]:
    m = re.match(r"\s*([A-Za-z ]+?)\s*(?:\(([\d ,]+)\))?\s*$", sqltype)
    if not m:
        return sqltype.upper(), ()
    args = tuple(int(x) for x in (m.group(2) or "").replace(" ", "").split(",") if x)
    return m.group(1).upper(), args


_INT_TYPES = {"BIGINT", "INTEGER", "INT", "INT8", "INT4", "SMALLINT", "INT2", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"}
_FLOAT_TYPES = {"DOUBLE", "FLOAT", "REAL", "FLOAT8", "FLOAT4", "DOUBLE PRECISION"}
_STRING_TYPES = {"VARCHAR", "TEXT", "STRING", "CHAR", "CHARACTER VARYING", "BPCHAR"}


def _is_string(base: str) -> bool:
    return base in _STRING_TYPES or base.startswith("VARCHAR")


def column_domain(name: str, sqltype: str) -> tuple[str, Any]:
    """What values a non-key column takes, from its SQL type and name: one table
    shared by the random strategies and the systematic pass's fixed values.

    ("int", top): integers 0..top; ("decimal", (top, exp)): n * 10**exp for n in
    0..top; ("quarter", top): n / 4 for n in 0..top (exact in binary: sums do not
    depend on row order); ("pool", values); ("bool"|"date"|"timestamp"|"uuid"|"json", None)."""
    base, args = _base_type(sqltype)
    lname = name.lower()
    if base in _INT_TYPES:
        return "int", 1000
    if base in {"DECIMAL", "NUMERIC"}:
        precision, scale = (args + (18, 3))[:2] if args else (18, 3)
        scale = min(scale, precision)
        return "decimal", (10 ** min(precision - scale, 5) * 10**scale - 1, -scale)
    if base in _FLOAT_TYPES:
        return "quarter", 4000
    if base in {"BOOLEAN", "BOOL"}:
        return "bool", None
    if base == "DATE":
        return "date", None
    if base.startswith("TIMESTAMP") or base == "DATETIME":
        return "timestamp", None
    if _is_string(base):
        for pattern, kind in _FAKER_KINDS:
            if re.search(pattern, lname):
                return "pool", faker_pool(kind)
        for pattern, choices in _ENUMS:
            if re.search(pattern, lname):
                return "pool", tuple(choices)
        return "pool", faker_pool("word")
    if base == "UUID":
        return "uuid", None
    if base in {"JSON", "JSONB"}:
        return "json", None
    from .._errors import SpecError

    raise SpecError(
        f"column {name!r} has type {sqltype!r}, which idemtest cannot generate values for; "
        "use a common SQL type (BIGINT, VARCHAR, DECIMAL(p,s), DOUBLE, BOOLEAN, DATE, TIMESTAMP) "
        f"or pass Source(values={{{name!r}: <hypothesis strategy>}})"
    )


def value_strategy(name: str, sqltype: str) -> SearchStrategy[Any]:
    """A Hypothesis strategy for a non-key column from its SQL type and name."""
    from hypothesis import strategies as st

    kind, arg = column_domain(name, sqltype)
    if kind == "int":
        return st.integers(0, arg)
    if kind == "decimal":
        top, exp = arg
        return st.integers(0, top).map(lambda n: Decimal(n).scaleb(exp))
    if kind == "quarter":
        return st.integers(0, arg).map(lambda n: n / 4)
    if kind == "bool":
        return st.booleans()
    if kind == "date":
        return st.dates(date(2020, 1, 1), date(2030, 12, 31))
    if kind == "timestamp":
        return st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31)).map(lambda d: d.replace(microsecond=0))
    if kind == "pool":
        return st.sampled_from(arg)
    if kind == "uuid":
        return st.uuids().map(str)
    return st.integers(0, 100).map(lambda n: f'{{"v": {n}}}')


def value_at(name: str, sqltype: str, i: int) -> Any:
    """The i-th fixed value of a non-key column (no randomness): consecutive i give
    different values, none of them zero or empty, inside the ranges the strategies use."""
    kind, arg = column_domain(name, sqltype)
    if kind == "int":
        return (17 + 37 * i) % (arg + 1)
    if kind == "decimal":
        top, exp = arg
        return Decimal((1250 + 3737 * i) % (top + 1) or 1).scaleb(exp)
    if kind == "quarter":
        return ((10 + 37 * i) % (arg + 1)) / 4
    if kind == "bool":
        return i % 2 == 0
    if kind == "date":
        return date(2026, 1, 1) + timedelta(days=i)
    if kind == "timestamp":
        return datetime(2026, 1, 1) + timedelta(hours=i)
    if kind == "pool":
        return arg[i % len(arg)]
    if kind == "uuid":
        return str(uuid.UUID(int=i + 1))
    return f'{{"v": {i}}}'


def key_value(name: str, sqltype: str, n: int) -> Any:
    """The key value numbered n, shaped by the key column's type: 1 -> 1,
    'ORD-0001', a UUID ending in 1, or 2026-01-02."""
    base, _ = _base_type(sqltype)
    if _is_string(base):
        return f"{name[:3].upper()}-{n:04d}"
    if base == "UUID":
        return f"00000000-0000-0000-0000-{n:012d}"
    if base == "DATE":
        return date(2026, 1, 1) + timedelta(days=n)
    return n


def key_strategy(name: str, sqltype: str, pool: int) -> SearchStrategy[Any]:
    """Keys come from a small pool so that versions of one key collide."""
    from hypothesis import strategies as st

    return st.integers(1, max(1, pool)).map(partial(key_value, name, sqltype))


def event_time_strategy(spec: Spec) -> SearchStrategy[datetime]:
    """Event times inside the declared windows; window boundaries and repeated
    minutes are favoured so that equal timestamps and edge values occur."""
    from hypothesis import strategies as st

    start = spec.schedule.start
    seconds = int((spec.schedule.end - start).total_seconds())
    bounds = sorted({w.start for w in spec.schedule.windows} | {w.end - timedelta(seconds=1) for w in spec.schedule.windows})
    return st.one_of(
        st.integers(0, max(0, seconds // 60 - 1)).map(lambda m: start + timedelta(minutes=m)),
        st.sampled_from(bounds),
        st.integers(0, max(0, seconds - 1)).map(lambda s: start + timedelta(seconds=s)),
    )


def lateness_strategy(max_lateness: timedelta) -> SearchStrategy[timedelta]:
    """Mostly on time; exactly the maximum and anything in between also occur."""
    from hypothesis import strategies as st

    top = int(max_lateness.total_seconds())
    if top <= 0:
        return st.just(timedelta(0))
    return st.one_of(
        st.just(timedelta(0)),
        st.just(timedelta(seconds=top)),
        st.integers(1, top).map(lambda s: timedelta(seconds=s)),
    )


def shaped_key(source: Source, n: int) -> tuple[Any, ...]:
    """Key number n of a source whose key columns carry idemtest.keys shapes
    (columns without one get the default spelling of n)."""
    from ..keys import KeyShape

    out = []
    for part, k in enumerate(source.keys):
        shape = source.values.get(k)
        out.append(shape.value(n, part, source.columns[k]) if isinstance(shape, KeyShape) else key_value(k, source.columns[k], n))
    return tuple(out)


def key_tuple_strategy(source: Source, pool: int) -> SearchStrategy[tuple[Any, ...]]:
    """The key of a drawn row: a user strategy on a key column is drawn as given;
    key shapes spell one drawn key number across all the key's columns."""
    from hypothesis import strategies as st

    from ..keys import KeyShape

    cols = source.keys
    if any(isinstance(source.values.get(k), KeyShape) for k in cols) and not any(k in source.values and not isinstance(source.values[k], KeyShape) for k in cols):
        return st.integers(1, max(1, pool)).map(partial(shaped_key, source))
    return st.tuples(*[source.values[k] if k in source.values else key_strategy(k, source.columns[k], pool) for k in cols])


def source_strategy(spec: Spec, source: Source) -> SearchStrategy[list[Version]]:
    from hypothesis import strategies as st

    if source.snapshot:
        return snapshot_strategy(spec, source)
    keyless = not source.keys
    unique = (source.append_only or not source.updates) and not keyless
    pool = source.max_rows * 2 if unique else max(2, source.max_rows // 2)
    key_cols = source.keys
    key_st = key_tuple_strategy(source, pool) if key_cols else st.just(())
    row = st.tuples(key_st, event_time_strategy(spec), lateness_strategy(spec.max_lateness), st.fixed_dictionaries(other_values(source)))
    rows = st.lists(row, min_size=1, max_size=source.max_rows, unique_by=(lambda r: r[0]) if unique else None)
    if keyless:
        # a keyless table holds exact duplicate rows too (the same trip exported twice)
        rows = st.tuples(rows, st.lists(st.integers(0, source.max_rows), max_size=2)).map(lambda rd: rd[0] + [rd[0][i % len(rd[0])] for i in rd[1]][: max(0, source.max_rows - len(rd[0]))])
    return rows.map(partial(assemble_versions, spec, source))


def other_values(source: Source) -> dict[str, SearchStrategy[Any]]:
    """Strategies of the columns that are neither key nor event time."""
    return {
        c: (source.values[c] if c in source.values else value_strategy(c, t))
        for c, t in source.columns.items()
        if c not in source.keys and c != source.event_time
    }


def snapshot_strategy(spec: Spec, source: Source) -> SearchStrategy[list[Version]]:
    """One to three full snapshots; the first lands as the schedule starts, the
    others at a run's time or anywhere before the last run. Each replaces the last."""
    from hypothesis import strategies as st

    start = spec.schedule.start
    last_run = spec.run_time(spec.all_windows[-1])
    runs = sorted({spec.run_time(w) for w in spec.schedule.windows})
    span = max(1, int((last_run - start).total_seconds()))
    when = st.one_of(st.sampled_from(runs), st.integers(1, span).map(lambda s: start + timedelta(seconds=s)))
    pool = max(2, source.max_rows)
    if source.keys:
        content = st.lists(st.tuples(key_tuple_strategy(source, pool), st.fixed_dictionaries(other_values(source))), min_size=1, max_size=source.max_rows, unique_by=lambda r: r[0])
    else:
        content = st.lists(st.tuples(st.just(()), st.fixed_dictionaries(other_values(source))), min_size=1, max_size=source.max_rows)
    later = st.lists(st.tuples(when, content), max_size=2, unique_by=lambda x: x[0])
    return st.tuples(content, later).map(lambda fl: assemble_snapshots(source, [(start, fl[0]), *fl[1]]))


def assemble_snapshots(source: Source, snapshots: list[tuple[datetime, list[tuple[tuple[Any, ...], dict[str, Any]]]]]) -> list[Version]:
    """Snapshots -> versions in arrival order; the versions of one snapshot share its arrival."""
    versions: list[Version] = []
    seen: set[datetime] = set()
    for at, rows in sorted(snapshots, key=lambda x: x[0]):
        if at in seen:
            continue  # two snapshots landing at once: the first drawn stands
        seen.add(at)
        for key, vals in rows:
            values = dict(zip(source.keys, key))
            values.update(vals)
            versions.append(Version({c: values[c] for c in source.columns}, at))
    return renumber_autoincrement(source, versions)


def renumber_autoincrement(source: Source, versions: list[Version]) -> list[Version]:
    """keys.autoincrement(): number keys in the order they first arrive, as a sequence upstream does."""
    from ..keys import KeyShape

    cols = [k for k in source.keys if isinstance(source.values.get(k), KeyShape) and source.values[k].grows_with_arrival]
    if not cols:
        return versions
    ids: dict[tuple[Any, ...], int] = {}
    for v in versions:
        key = tuple(v.values[k] for k in source.keys)
        n = ids.setdefault(key, len(ids) + 1)
        for c in cols:
            v.values[c] = n
    return versions


def is_date_event(source: Source) -> bool:
    if source.event_time is None:
        return False
    return _base_type(source.columns[source.event_time])[0] == "DATE"


#: one drawn (or built) row: key values, event time, lateness, the other columns
RawRow = tuple[tuple[Any, ...], datetime, timedelta, dict[str, Any]]


def assemble_versions(spec: Spec, source: Source, drawn: list[RawRow]) -> list[Version]:
    """Rows -> versions in arrival order, keeping the data model's promises:
    versions of one key carry strictly increasing event times and arrive in
    order, a DATE event time is a whole day, and nothing lands after the last run."""
    is_date = is_date_event(source)
    horizon = spec.schedule.end
    key_cols = source.keys
    by_key: dict[Any, list[Any]] = {}
    for i, (key, event, late, vals) in enumerate(drawn):
        # keyless rows are independent: no row is a newer version of another
        by_key.setdefault(key if key_cols else i, []).append((event, late, vals))
    versions: list[Version] = []
    for key, items in by_key.items():
        items.sort(key=lambda x: x[0])
        prev_event: datetime | None = None
        prev_arrival: datetime | None = None
        for event, late, vals in items:
            if is_date:
                event = datetime(event.year, event.month, event.day)
                if prev_event is not None and event <= prev_event:
                    event = prev_event + timedelta(days=1)
            elif prev_event is not None and event <= prev_event:
                # versions of one key carry strictly increasing event times
                event = prev_event + timedelta(seconds=1)
            if event >= horizon:
                break  # bumping versions apart must not push one past the schedule: it would land after the last run
            arrival = event + late
            if prev_arrival is not None and arrival < prev_arrival:
                arrival = prev_arrival  # a later version never lands first
            values = dict(zip(key_cols, key if key_cols else ()))
            assert source.event_time is not None
            values[source.event_time] = event.date() if is_date else event
            values.update(vals)
            versions.append(Version({c: values[c] for c in source.columns}, arrival))
            prev_event, prev_arrival = event, arrival
    versions.sort(key=lambda v: v.arrival)  # stable: per-key order is kept
    return renumber_autoincrement(source, versions)


def dataset_strategy(spec: Spec) -> SearchStrategy[Dataset]:
    from hypothesis import strategies as st

    if not spec.sources:
        return st.just(Dataset({}))
    return st.fixed_dictionaries({s.table: source_strategy(spec, s) for s in spec.sources}).map(Dataset)


# --- schedules ------------------------------------------------------------------------

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
        return st.just(list(nominal_plan(windows, spec.run_delay)))

    retries = max(1, spec.retries)

    @st.composite
    def build(draw: Any) -> list[Step]:
        steps: list[RunStep] = nominal_plan(windows, spec.run_delay)
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
            faults = draw(st.lists(st.builds(Fault, crash_point(boundaries.get(s.window, 1)), st.sampled_from(["after", "before"])), min_size=1, max_size=retries))
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


def crash_point(clean_count: int) -> SearchStrategy[int]:
    """The statement a crash falls on: mostly within the clean run's count for the
    window, sometimes beyond it, because an attempt under a scenario may do more
    than the clean run did (late rows to load, a retry that redoes work, a backfill).
    A point beyond what the attempt does never fires: that example runs uncrashed.
    Shrinks toward statement 1."""
    from hypothesis import strategies as st

    top = max(1, clean_count)
    within = st.integers(1, top)
    beyond = st.integers(top + 1, 4 * top + 16)
    return st.one_of(within, within, within, beyond)


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
