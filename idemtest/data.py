"""Source data generation: rows, newer versions of keys, and arrival times."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from .spec import Source, Spec


@dataclass
class Version:
    """One version of one source row and the moment it lands in the source."""

    values: dict[str, Any]
    arrival: datetime

    def event(self, source: Source) -> datetime:
        v = self.values[source.event_time]
        return v if isinstance(v, datetime) else datetime(v.year, v.month, v.day)


@dataclass
class Dataset:
    """Generated rows for every declared source."""

    sources: dict[str, list[Version]] = field(default_factory=dict)

    def visible(self, source: Source, t: datetime | None) -> list[dict[str, Any]]:
        """The source as it reads at simulated time t (None: everything has arrived).

        A table source shows the latest arrived version of every key; an
        append-only source shows every arrived row."""
        versions = [v for v in self.sources.get(source.table, []) if t is None or v.arrival <= t]
        if source.append_only or not source.updates:
            return [v.values for v in versions]
        latest: dict[tuple[Any, ...], dict[str, Any]] = {}
        for v in versions:  # versions of a key are stored in arrival order
            latest[tuple(v.values[k] for k in source.keys)] = v.values
        return list(latest.values())

    def late_rows(self, spec: Spec) -> int:
        n = 0
        for s in spec.sources:
            n += sum(1 for v in self.sources.get(s.table, []) if v.arrival > v.event(s))
        return n

    def row_count(self) -> int:
        return sum(len(v) for v in self.sources.values())


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


def value_strategy(name: str, sqltype: str) -> SearchStrategy[Any]:
    """A Hypothesis strategy for a non-key column from its SQL type and name."""
    from hypothesis import strategies as st

    base, args = _base_type(sqltype)
    lname = name.lower()
    if base in {"BIGINT", "INTEGER", "INT", "INT8", "INT4", "SMALLINT", "INT2", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"}:
        return st.integers(0, 1000)
    if base in {"DECIMAL", "NUMERIC"}:
        precision, scale = (args + (18, 3))[:2] if args else (18, 3)
        scale = min(scale, precision)
        top = 10 ** min(precision - scale, 5) * 10**scale - 1
        exp = -scale
        return st.integers(0, top).map(lambda n: Decimal(n).scaleb(exp))
    if base in {"DOUBLE", "FLOAT", "REAL", "FLOAT8", "FLOAT4", "DOUBLE PRECISION"}:
        # multiples of 1/4 are exact in binary: sums do not depend on row order
        return st.integers(0, 4000).map(lambda n: n / 4)
    if base in {"BOOLEAN", "BOOL"}:
        return st.booleans()
    if base == "DATE":
        return st.dates(date(2020, 1, 1), date(2030, 12, 31))
    if base.startswith("TIMESTAMP") or base == "DATETIME":
        return st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31)).map(lambda d: d.replace(microsecond=0))
    if base in {"VARCHAR", "TEXT", "STRING", "CHAR", "CHARACTER VARYING", "BPCHAR"} or base.startswith("VARCHAR"):
        for pattern, kind in _FAKER_KINDS:
            if re.search(pattern, lname):
                return st.sampled_from(faker_pool(kind))
        for pattern, choices in _ENUMS:
            if re.search(pattern, lname):
                return st.sampled_from(choices)
        return st.sampled_from(faker_pool("word"))
    if base in {"UUID"}:
        return st.uuids().map(str)
    if base in {"JSON", "JSONB"}:
        return st.integers(0, 100).map(lambda n: f'{{"v": {n}}}')
    from ._errors import SpecError

    raise SpecError(
        f"column {name!r} has type {sqltype!r}, which idemtest cannot generate values for; "
        "use a common SQL type (BIGINT, VARCHAR, DECIMAL(p,s), DOUBLE, BOOLEAN, DATE, TIMESTAMP) "
        f"or pass Source(values={{{name!r}: <hypothesis strategy>}})"
    )


def key_strategy(name: str, sqltype: str, pool: int) -> SearchStrategy[Any]:
    """Keys come from a small pool so that versions of one key collide."""
    from hypothesis import strategies as st

    base, _ = _base_type(sqltype)
    ints = st.integers(1, max(1, pool))
    if base in {"VARCHAR", "TEXT", "STRING", "CHAR", "CHARACTER VARYING"} or base.startswith("VARCHAR"):
        prefix = name[:3].upper()
        return ints.map(lambda n: f"{prefix}-{n:04d}")
    if base == "UUID":
        return ints.map(lambda n: f"00000000-0000-0000-0000-{n:012d}")
    if base == "DATE":
        return ints.map(lambda n: date(2026, 1, 1) + timedelta(days=n))
    return ints


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


def source_strategy(spec: Spec, source: Source) -> SearchStrategy[list[Version]]:
    from hypothesis import strategies as st

    unique = source.append_only or not source.updates
    pool = source.max_rows * 2 if unique else max(2, source.max_rows // 2)
    key_cols = source.keys
    key_st = st.tuples(*[key_strategy(k, source.columns[k], pool) for k in key_cols])
    others = {
        c: (source.values[c] if c in source.values else value_strategy(c, t))
        for c, t in source.columns.items()
        if c not in key_cols and c != source.event_time
    }
    is_date = _base_type(source.columns[source.event_time])[0] == "DATE"
    row = st.tuples(key_st, event_time_strategy(spec), lateness_strategy(spec.lateness), st.fixed_dictionaries(others))
    rows = st.lists(row, min_size=1, max_size=source.max_rows, unique_by=(lambda r: r[0]) if unique else None)

    horizon = spec.schedule.end

    def build(drawn: list[Any]) -> list[Version]:
        by_key: dict[tuple[Any, ...], list[Any]] = {}
        for key, event, late, vals in drawn:
            by_key.setdefault(key, []).append((event, late, vals))
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
                values = dict(zip(key_cols, key))
                values[source.event_time] = event.date() if is_date else event
                values.update(vals)
                versions.append(Version({c: values[c] for c in source.columns}, arrival))
                prev_event, prev_arrival = event, arrival
        versions.sort(key=lambda v: v.arrival)  # stable: per-key order is kept
        return versions

    return rows.map(build)


def dataset_strategy(spec: Spec) -> SearchStrategy[Dataset]:
    from hypothesis import strategies as st

    if not spec.sources:
        return st.just(Dataset({}))
    return st.fixed_dictionaries({s.table: source_strategy(spec, s) for s in spec.sources}).map(Dataset)
