"""What the user declares: sources, targets, setup DDL and the schedule of windows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

from ._errors import SpecError

if TYPE_CHECKING:
    from .context import RunContext

SetupType = Union[str, Path, Callable[[Any], None], None]
Oracle = Literal["all-arrived", "same-arrivals"]
#: how a crash point ends an attempt: "raise" an exception in process (default), or
#: "kill" the child process the attempt runs in (engine/isolate.py)
CrashMode = Literal["raise", "kill"]
CRASH_MODES = ("raise", "kill")
Concurrency = Literal["none", "partitions", "same-partition"]

#: the perturbations a scenario may use; Spec(exercise=...) narrows them
ALL_PERTURBATIONS: frozenset[str] = frozenset(
    {"duplicate", "crash", "backfill", "out_of_order", "concurrent"}
)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d|w)", re.I)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: timedelta | str | float, what: str = "duration") -> timedelta:
    """'2h', '90m', '1h30m', '45s', '1d', a number of seconds, or a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return timedelta(seconds=value)
        except (ValueError, OverflowError):
            pass  # nan, inf: fall through to the error
    if isinstance(value, str):
        text = value.strip()
        parts = _DURATION.findall(text)
        if parts and _DURATION.sub("", text).strip() == "":
            return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in parts))
    raise SpecError(
        f"{what}={value!r} is not a duration; write it like '2h', '30m', '1h30m', '45s', '1d', "
        "a number of seconds, or a datetime.timedelta"
    )


def parse_time(value: datetime | date | str, what: str = "time") -> datetime:
    """A naive UTC datetime from a datetime, a date or an ISO string."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            from datetime import timezone

            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return parse_time(datetime.fromisoformat(value.strip()), what)
        except ValueError:
            pass
    raise SpecError(f"{what}={value!r} is not a time; use an ISO string like '2026-06-01' or '2026-06-01T03:00', a date or a datetime")


@dataclass(frozen=True)
class Window:
    """One scheduled interval [start, end) — Airflow's data interval."""

    index: int
    start: datetime
    end: datetime
    extra: bool = False  # a tail window added so late data can land

    @property
    def partition(self) -> str:
        """A stable partition label: the month for calendar-month windows (2026-06),
        the date for daily windows, the hour otherwise."""
        if _is_month(self.start, self.end):
            return self.start.strftime("%Y-%m")
        if self.end - self.start >= timedelta(days=1) and self.start.time() == datetime.min.time():
            return self.start.date().isoformat()
        return self.start.isoformat(timespec="minutes")

    def __str__(self) -> str:
        return f"[{self.start.isoformat(sep=' ')} .. {self.end.isoformat(sep=' ')})"


def _is_month(start: datetime, end: datetime) -> bool:
    return start.day == 1 and start.time() == datetime.min.time() and end == _add_months(start, 1)


def _add_months(t: datetime, n: int) -> datetime:
    m = t.month - 1 + n
    return t.replace(year=t.year + m // 12, month=m % 12 + 1)


@dataclass(frozen=True)
class Schedule:
    """The windows a pipeline runs for, in order.

    `run_delay`: how long after its window closes a run starts (a daily job at
    02:00 runs 2h after midnight; a monthly job on the 5th, 4 days after the
    month ends)."""

    windows: tuple[Window, ...]
    cadence: timedelta | None = None
    run_delay: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not isinstance(self.run_delay, timedelta) or self.run_delay < timedelta(0):
            raise SpecError(f"run_delay={self.run_delay!r}: a run starts when its window closes or later; give 0 or a positive duration like '2h'")
        if not self.windows:
            raise SpecError("a schedule needs at least one window; use hourly(start, periods=N) with N >= 1")
        for w in self.windows:
            if w.end <= w.start:
                raise SpecError(f"window {w} ends before it starts; every window needs start < end")
        for a, b in zip(self.windows, self.windows[1:]):
            if b.start < a.start:
                raise SpecError(f"windows must be listed in time order: {b} comes after {a}")

    @property
    def start(self) -> datetime:
        return self.windows[0].start

    @property
    def end(self) -> datetime:
        return max(w.end for w in self.windows)

    def with_tail(self, lateness: timedelta) -> tuple[Window, ...]:
        """The declared windows plus tail windows that run until the latest late row has landed."""
        if lateness <= timedelta(0):
            return self.windows
        step = self.cadence or (self.windows[-1].end - self.windows[-1].start)
        monthly = self.cadence is None and all(_is_month(w.start, w.end) for w in self.windows)
        out = list(self.windows)
        while out[-1].end < self.end + lateness:
            last = out[-1]
            end = _add_months(last.end, 1) if monthly else last.end + step
            out.append(Window(len(out), last.end, end, extra=True))
        return tuple(out)


def _delay(run_delay: timedelta | str | float | None, at: str | None, what: str) -> timedelta:
    """run_delay= as a duration, or at='HH:MM' as the time of day a run starts."""
    if at is not None:
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", at) if isinstance(at, str) else None
        if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise SpecError(f"{what}(at={at!r}): the time of day a run starts is written 'HH:MM', e.g. at='02:00'")
        return timedelta(hours=int(m.group(1)), minutes=int(m.group(2))) + (parse_duration(run_delay, "run_delay") if run_delay is not None else timedelta(0))
    return parse_duration(run_delay, "run_delay") if run_delay is not None else timedelta(0)


def every(start: datetime | date | str, step: timedelta | str, periods: int, run_delay: timedelta | str | float | None = None) -> Schedule:
    """`periods` consecutive windows of length `step` from `start`; each runs
    `run_delay` after it closes (default: as it closes)."""
    if not isinstance(periods, int) or isinstance(periods, bool) or periods < 1:
        raise SpecError(f"periods={periods!r}: a schedule needs a whole number of windows >= 1")
    if periods > MAX_WINDOWS:
        raise SpecError(
            f"periods={periods}: more than the {MAX_WINDOWS} windows a check can run (every scenario runs each one); "
            "a handful (hourly(start, periods=6)) finds the bugs idemtest looks for"
        )
    begin = parse_time(start, "start")
    delta = parse_duration(step, "step")
    if delta <= timedelta(0):
        raise SpecError(f"step={step!r}: windows need a positive length")
    return Schedule(
        tuple(Window(i, begin + i * delta, begin + (i + 1) * delta) for i in range(periods)), delta, _delay(run_delay, None, "every")
    )


def hourly(start: datetime | date | str, periods: int = 6, run_delay: timedelta | str | float | None = None) -> Schedule:
    """Hourly windows, like an Airflow `@hourly` DAG."""
    return every(start, timedelta(hours=1), periods, run_delay)


def daily(start: datetime | date | str, periods: int = 5, at: str | None = None, run_delay: timedelta | str | float | None = None) -> Schedule:
    """Daily windows, like an Airflow `@daily` DAG; `at="02:00"`: each day's run
    starts at 02:00 the next day (cron `0 2 * * *`)."""
    sched = every(start, timedelta(days=1), periods)
    return replace(sched, run_delay=_delay(run_delay, at, "daily"))


def monthly(start: datetime | date | str, periods: int = 3, day: int = 1, at: str | None = None) -> Schedule:
    """Calendar-month windows from the month of `start`; `day=5`: each month's
    run starts on the 5th of the next month (cron `0 0 5 * *`), at `at` ('HH:MM')."""
    if not isinstance(periods, int) or isinstance(periods, bool) or not 1 <= periods <= MAX_WINDOWS:
        raise SpecError(f"periods={periods!r}: a schedule needs a whole number of windows from 1 to {MAX_WINDOWS}")
    if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 28:
        raise SpecError(f"monthly(day={day!r}): the day of the month a run starts must be a whole number from 1 to 28 (every month has it)")
    begin = parse_time(start, "start")
    first = datetime(begin.year, begin.month, 1)
    wins = tuple(Window(i, _add_months(first, i), _add_months(first, i + 1)) for i in range(periods))
    return Schedule(wins, None, timedelta(days=day - 1) + _delay(None, at, "monthly"))


def windows(bounds: Iterable[tuple[datetime | date | str, datetime | date | str]], run_delay: timedelta | str | float | None = None) -> Schedule:
    """An explicit list of (start, end) windows."""
    items = [(parse_time(a, "start"), parse_time(b, "end")) for a, b in bounds]
    return Schedule(tuple(Window(i, a, b) for i, (a, b) in enumerate(items)), None, _delay(run_delay, None, "windows"))


def _names(key: str | Sequence[str] | None) -> tuple[str, ...]:
    if key is None:
        return ()
    if isinstance(key, str):
        return (key,)
    return tuple(key)


def _check_names(value: Any, owner: str, what: str, example: str) -> None:
    """A column name or a list of them: anything else names the fix."""
    if value is None or isinstance(value, str):
        if isinstance(value, str) and not value.strip():
            raise SpecError(f"{owner}: {what}='' names no column; write {what}={example}")
        return
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value):
        return
    raise SpecError(f"{owner}: {what}={value!r} must be a column name or a list of column names, e.g. {what}={example}")


def _check_bool(value: Any, owner: str, what: str) -> None:
    if not isinstance(value, bool):
        raise SpecError(f"{owner}: {what}={value!r} must be True or False")


def _check_str(value: Any, owner: str, what: str, example: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{owner}: {what}={value!r} must be a non-empty string, e.g. {what}={example}")


def _as_items(value: Any, what: str, kind: type) -> tuple[Any, ...]:
    """`sources=`/`targets=`: a list of one kind; a lone item names the fix."""
    if isinstance(value, kind):
        raise SpecError(f"{what}={kind.__name__}(...) is a single {kind.__name__}; pass a list: {what}=[{kind.__name__}(...)]")
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise SpecError(f"{what}={value!r} must be a list of idemtest.{kind.__name__}, e.g. {what}=[{kind.__name__}(...)]")
    items = tuple(value)
    for item in items:
        if not isinstance(item, kind):
            raise SpecError(f"{what}= holds {item!r}; each must be an idemtest.{kind.__name__}")
    return items


#: more windows than this (declared + tail) would run for hours; refuse them up front
MAX_WINDOWS = 500


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")


def _check_table_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise SpecError(f"{what} table {name!r} is not a plain table name; write it as 'table' or 'schema.table'")


class _Required:
    """The default of Source(key=): a key must be named, or declared absent with key=None."""

    def __repr__(self) -> str:
        return "<required>"


_REQUIRED: Any = _Required()

#: landing formats, and the file suffixes that name them
FORMATS: dict[str, str] = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def file_format(path: str) -> str | None:
    """The landing format a file name's suffix names ('trips_{partition}.parquet' -> 'parquet')."""
    low = path.lower()
    return next((fmt for suffix, fmt in FORMATS.items() if low.endswith(suffix)), None)


def _check_path(path: Any, owner: str, what: str, example: str) -> None:
    """A relative file pattern inside the sandbox's folder (run.landing)."""
    _check_str(path, owner, what, example)
    parts = str(path).replace("\\", "/").split("/")
    if str(path).startswith(("/", "~")) or ":" in parts[0] or ".." in parts:
        raise SpecError(f"{owner}: {what}={path!r} must be relative to the sandbox's folder (run.landing), without '..'; write e.g. {what}={example}")
    if file_format(str(path)) is None:
        raise SpecError(f"{owner}: {what}={path!r} must end in .csv, .parquet or .jsonl (the suffix says the format), e.g. {what}={example}")
    bad = [f for f in re.findall(r"\{([^}]*)\}", str(path)) if f != "partition"]
    if bad:
        raise SpecError(f"{owner}: {what}={path!r} uses {{{bad[0]}}}; the only placeholder is {{partition}} (the window's label, e.g. 2026-06-01)")


@dataclass(frozen=True)
class Source:
    """A source table (or landing file) whose rows idemtest generates.

    `key=None`: the table has no key (taxi trips, log lines); rows are a
    multiset and identical rows may occur. `updates=True`: keys receive newer
    versions over time (an OLTP table whose event-time column moves);
    `append_only=True`: every version stays as a row (an event log).
    `snapshot=True`: no event time; each arrival replaces the whole content
    (a full export re-downloaded every day). `landing="csv"|"parquet"|"jsonl"`:
    the rows arrive as files under `run.landing` instead of a sandbox table —
    one file per arrival batch in `<table>/`, or as `path=` says: a pattern
    with `{partition}` is one file per window (rewritten when late rows
    arrive), a plain name is one file holding the current state.
    """

    table: str
    columns: Mapping[str, str]
    key: str | Sequence[str] | None = _REQUIRED
    event_time: str | None = None
    updates: bool = True
    append_only: bool = False
    max_rows: int = 12
    values: Mapping[str, Any] = field(default_factory=dict)  # column -> Hypothesis strategy or idemtest.keys shape
    landing: Literal["csv", "parquet", "jsonl"] | None = None
    snapshot: bool = False
    path: str | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return _names(None if self.key is _REQUIRED else self.key)

    @property
    def per_partition(self) -> bool:
        """A landing file per window (path= holds {partition})."""
        return self.path is not None and "{partition}" in self.path

    def __post_init__(self) -> None:
        _check_table_name(self.table, "source")
        owner = f"Source({self.table!r})"
        if not isinstance(self.columns, Mapping):
            raise SpecError(f"{owner}: columns={self.columns!r} must map each column to its SQL type, e.g. columns={{'id': 'BIGINT', 'updated_at': 'TIMESTAMP'}}")
        if not self.columns:
            raise SpecError(f"{owner} declares no columns; pass columns={{'id': 'BIGINT', ...}}")
        for c, t in self.columns.items():
            if not isinstance(c, str) or not c.strip() or not isinstance(t, str) or not t.strip():
                raise SpecError(f"{owner}: column {c!r}: {t!r} — columns= maps column names to SQL type names, e.g. {{'amount': 'DECIMAL(12,2)'}}")
        if self.key is _REQUIRED or (isinstance(self.key, (list, tuple)) and not self.key):
            raise SpecError(
                f"{owner} needs key= (the column(s) identifying a row), e.g. key='order_id'; "
                "a table without one (taxi trips, log lines) declares key=None and its rows are compared as a multiset"
            )
        _check_names(self.key, owner, "key", "'order_id' or ['order_id', 'line_no']")
        _check_bool(self.snapshot, owner, "snapshot")
        if self.event_time is None:
            if not self.snapshot:
                raise SpecError(
                    f"{owner} needs event_time= (the TIMESTAMP or DATE column saying when a row happened), e.g. event_time='updated_at'; "
                    "a source without one, read whole on every run (a daily full export), declares snapshot=True"
                )
        else:
            _check_str(self.event_time, owner, "event_time", "'updated_at'")
            if self.snapshot:
                raise SpecError(
                    f"{owner}: snapshot=True has no event time (each arrival replaces the whole content), but event_time={self.event_time!r} is given; "
                    "drop event_time= (the column is still generated like any other), or drop snapshot=True"
                )
        _check_bool(self.updates, owner, "updates")
        _check_bool(self.append_only, owner, "append_only")
        if self.snapshot and self.append_only:
            raise SpecError(f"{owner}: snapshot=True replaces the whole content on every arrival, append_only=True keeps every row; declare one of them")
        if not isinstance(self.max_rows, int) or isinstance(self.max_rows, bool):
            raise SpecError(f"{owner}: max_rows={self.max_rows!r} must be a whole number between 1 and 10000")
        if not isinstance(self.values, Mapping):
            raise SpecError(f"{owner}: values={self.values!r} must map column names to Hypothesis strategies, e.g. values={{'status': st.sampled_from(['new', 'paid'])}}")
        cols = list(self.columns)
        for k in self.keys:
            if k not in self.columns:
                raise SpecError(f"Source({self.table!r}): key column {k!r} is not among its columns {cols}; add it to columns= or fix key=")
        if self.event_time is not None:
            if self.event_time not in self.columns:
                raise SpecError(f"Source({self.table!r}): event_time column {self.event_time!r} is not among its columns {cols}")
            if "TIME" not in str(self.columns[self.event_time]).upper() and "DATE" not in str(self.columns[self.event_time]).upper():
                raise SpecError(f"Source({self.table!r}): event_time column {self.event_time!r} has type {self.columns[self.event_time]!r}; it must be a TIMESTAMP or DATE column")
        from .keys import KeyShape

        for c, strategy in self.values.items():
            if c not in self.columns:
                raise SpecError(f"Source({self.table!r}): values= names column {c!r}, which is not among its columns {cols}")
            if isinstance(strategy, KeyShape):
                if c not in self.keys:
                    raise SpecError(
                        f"Source({self.table!r}): values[{c!r}]={strategy!r} shapes keys, but {c!r} is not a key column (key={list(self.keys)}); "
                        "use it on a key column, or a Hypothesis strategy for other columns"
                    )
                if strategy.name == "concat_collisions" and len(self.keys) < 2:
                    raise SpecError(f"Source({self.table!r}): keys.concat_collisions() needs a composite key (key=['a', 'b']) and is given to each of its columns")
                strategy.value(1, 0, str(self.columns[c]))  # a string shape on an integer column names the fix now
                continue
            if c == self.event_time:
                raise SpecError(f"Source({self.table!r}): values= names the event_time column {c!r}; its values come from the schedule (drop it from values=)")
            if not _is_strategy(strategy):
                raise SpecError(
                    f"Source({self.table!r}): values[{c!r}]={strategy!r} is not a Hypothesis strategy; "
                    f"write values={{{c!r}: st.just({strategy!r})}} or another strategy from hypothesis.strategies"
                )
        if not 1 <= self.max_rows <= 10_000:
            raise SpecError(f"Source({self.table!r}): max_rows={self.max_rows} must be between 1 and 10000")
        if self.path is not None:
            _check_path(self.path, owner, "path", "'trips/trips_{partition}.parquet'")
            fmt = file_format(self.path)
            if self.landing is None:
                object.__setattr__(self, "landing", fmt)
            elif self.landing != fmt:
                raise SpecError(f"Source({self.table!r}): landing={self.landing!r} but path={self.path!r} names a {fmt} file; make them agree (or drop landing=: the suffix says it)")
            if self.per_partition and self.snapshot:
                raise SpecError(
                    f"Source({self.table!r}): path={self.path!r} splits rows by {{partition}}, but a snapshot source has no event time to split by; "
                    "use one file (path='customers.csv'), or declare event_time= instead of snapshot=True"
                )
        if self.landing not in (None, "csv", "parquet", "jsonl"):
            raise SpecError(f"Source({self.table!r}): landing={self.landing!r}; use 'csv', 'parquet' or 'jsonl'")


@dataclass(frozen=True)
class Target:
    """A table, query or output file the load writes, compared against the clean run.

    `atomic=True` opts in to P4: concurrent readers must see each `partition_by`
    partition either as before a run or as after it. `file="out/x_{partition}.csv"`:
    the target is the rows of the files the load writes under `run.landing`
    (`{partition}` and `*` match any), read as CSV, Parquet or JSONL by suffix.
    `expected="SELECT ... FROM src.orders"`: what the target should hold once
    every source row has arrived (P5, checked after the clean run and every scenario). `created_by_load=True`: the load creates the table on
    its first run (a dbt model, a dlt table) and may drop it again (a full refresh): it
    reads as empty whenever it does not exist.
    """

    table: str
    key: str | Sequence[str] | None = None
    ignore: Sequence[str] = ()
    query: str | None = None
    atomic: bool = False
    partition_by: str | None = None
    file: str | None = None
    expected: str | None = None
    created_by_load: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return _names(self.key)

    @property
    def label(self) -> str:
        return self.table

    def __post_init__(self) -> None:
        if self.query is not None and self.file is not None:
            raise SpecError(f"Target({self.table!r}) gives both query= and file=; a target is a table, a query or files — declare two targets")
        if self.query is None and self.file is None:
            _check_table_name(self.table, "target")
        elif self.query is not None:
            _check_str(self.table, "Target(query=...)", "table", "'current_customers' (a label for the query)")
            _check_str(self.query, f"Target({self.table!r})", "query", "'SELECT * FROM dim WHERE is_current'")
        else:
            _check_str(self.table, "Target(file=...)", "table", "'revenue_csv' (a label for the files)")
            _check_path(self.file, f"Target({self.table!r})", "file", "'out/revenue_{partition}.csv'")
        owner = f"Target({self.table!r})"
        if self.expected is not None:
            _check_str(self.expected, owner, "expected", "'SELECT order_id, amount FROM src.orders'")
        _check_names(self.key, owner, "key", "'order_id' or ['order_id', 'line_no']")
        if isinstance(self.ignore, str):
            object.__setattr__(self, "ignore", (self.ignore,))
        _check_names(tuple(self.ignore) if isinstance(self.ignore, (list, tuple)) else self.ignore, owner, "ignore", "['loaded_at']")
        object.__setattr__(self, "ignore", tuple(self.ignore))
        _check_bool(self.atomic, owner, "atomic")
        _check_bool(self.created_by_load, owner, "created_by_load")
        if self.created_by_load and self.query is not None:
            raise SpecError(f"{owner}: created_by_load=True applies to a table the load creates, not to a query target")
        if self.partition_by is not None:
            _check_str(self.partition_by, owner, "partition_by", "'order_date'")
        for k in self.keys:
            if k in self.ignore:
                raise SpecError(f"Target({self.table!r}): key column {k!r} is also in ignore=; a key cannot be ignored")
        if self.atomic and self.partition_by is None and not self.keys:
            raise SpecError(f"Target({self.table!r}, atomic=True) needs partition_by= (the column that names a partition)")


@dataclass(frozen=True, init=False)
class Spec:
    """A pipeline under test: what it reads, what it writes, and when it runs.

    Durations are given as "2h", "30m", seconds or timedeltas and are stored as
    timedeltas under the same names."""

    sources: tuple[Source, ...]
    targets: tuple[Target, ...]
    schedule: Schedule
    setup: SetupType
    max_lateness: timedelta
    retries: int
    retry_delay: timedelta
    oracle: Oracle
    timeout: timedelta
    dialect: str | None
    exercise: frozenset[str]
    concurrency: Concurrency
    name: str | None
    crash: CrashMode
    run_delay: timedelta
    #: DSNs / DuckDB paths of databases other than the sandbox the load may connect to
    #: during a run (a source it only reads); any other is refused with ForeignDatabaseError
    allow_foreign: tuple[str, ...] = field(default=(), repr=False)  # a DSN may hold a password
    #: where a relative `setup="x.sql"` is found besides the working directory;
    #: the decorator and the fixture set it to the test module's folder
    base_dir: Path | None = field(default=None, compare=False, repr=False)

    def __init__(
        self,
        sources: Sequence[Source],
        targets: Sequence[Target],
        schedule: Schedule,
        setup: SetupType = None,
        max_lateness: timedelta | str | float = timedelta(0),
        retries: int = 2,
        retry_delay: timedelta | str | float = timedelta(minutes=5),
        oracle: Oracle = "all-arrived",
        timeout: timedelta | str | float = timedelta(seconds=30),
        dialect: str | None = None,
        exercise: Iterable[str] = ALL_PERTURBATIONS,
        concurrency: Concurrency = "partitions",
        name: str | None = None,
        base_dir: Path | str | None = None,
        crash: CrashMode = "raise",
        allow_foreign: Iterable[str] = (),
        run_delay: timedelta | str | float | None = None,
    ) -> None:
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        put("sources", _as_items(sources, "sources", Source))
        put("targets", _as_items(targets, "targets", Target))
        put("schedule", schedule)
        put("setup", setup)
        put("max_lateness", parse_duration(max_lateness, "max_lateness"))
        put("retries", retries)
        put("retry_delay", parse_duration(retry_delay, "retry_delay"))
        put("oracle", oracle)
        put("timeout", parse_duration(timeout, "timeout"))
        put("dialect", dialect)
        # one name is one perturbation, not a string read letter by letter
        if isinstance(exercise, str):
            exercise = (exercise,)
        if not isinstance(exercise, Iterable) or not all(isinstance(e, str) for e in exercise):
            raise SpecError(f"exercise={exercise!r} must be a list of perturbation names from {sorted(ALL_PERTURBATIONS)}")
        put("exercise", frozenset(exercise))
        put("concurrency", concurrency)
        put("name", name)
        # Spec(run_delay=) wins over the schedule's own (daily(at="02:00"), monthly(day=5))
        if run_delay is not None:
            put("run_delay", parse_duration(run_delay, "run_delay"))
        else:
            put("run_delay", schedule.run_delay if isinstance(schedule, Schedule) else timedelta(0))
        put("base_dir", Path(base_dir) if base_dir is not None else None)
        put("crash", crash)
        if isinstance(allow_foreign, str):
            allow_foreign = (allow_foreign,)
        if not isinstance(allow_foreign, Iterable) or not all(isinstance(a, (str, Path)) and str(a).strip() for a in allow_foreign):
            raise SpecError(
                f"allow_foreign={allow_foreign!r} must be a list of DSNs or DuckDB paths the load may read from besides the sandbox, "
                "e.g. allow_foreign=['postgresql://reader@warehouse:5432/erp']"
            )
        put("allow_foreign", tuple(str(a) for a in allow_foreign))
        self._validate()
        if crash == "kill" and "concurrent" in self.exercise:
            # one attempt per child process: concurrent pairs are not played (the
            # default perturbations leave them out; asking for them is refused above)
            put("exercise", self.exercise - {"concurrent"})

    def _validate(self) -> None:
        if self.max_lateness < timedelta(0):
            raise SpecError(f"max_lateness={self.max_lateness}: data cannot arrive before it happens; give 0 or a positive duration like '2h'")
        if self.retry_delay < timedelta(0):
            raise SpecError(f"retry_delay={self.retry_delay}: a retry cannot run before the failure; give 0 or a positive duration like '5m'")
        if self.run_delay < timedelta(0):
            raise SpecError(f"run_delay={self.run_delay}: a run cannot start before its window closes; give 0 or a positive duration like '2h' (a daily job at 02:00) or '4d' (a monthly job on the 5th)")
        if self.timeout <= timedelta(0):
            raise SpecError(f"timeout={self.timeout}: a run needs a positive time limit, e.g. timeout='30s'")
        if self.setup is not None and not isinstance(self.setup, (str, Path)) and not callable(self.setup):
            raise SpecError(f"setup={self.setup!r} must be SQL text, a path to a .sql file, or a callable taking a connection")
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise SpecError(f"name={self.name!r} must be a non-empty string (a label for reports and saved files)")
        unknown = self.exercise - ALL_PERTURBATIONS
        if unknown:
            raise SpecError(f"exercise={sorted(unknown)} names unknown perturbations; choose from {sorted(ALL_PERTURBATIONS)}")
        if self.crash not in CRASH_MODES:
            raise SpecError(
                f"crash={self.crash!r} is not a crash mode; use crash='raise' (default: the crash is an exception raised at the statement "
                "boundary, in process) or crash='kill' (each attempt runs in a child process killed with os._exit at the crash point; POSIX only)"
            )
        if self.crash == "kill" and (self.concurrency == "same-partition" or ("concurrent" in self.exercise and self.exercise != ALL_PERTURBATIONS)):
            raise SpecError(
                f"crash='kill' does not support concurrent runs yet (exercise={sorted(self.exercise)}, concurrency={self.concurrency!r} ask for them); "
                "use crash='raise' for concurrency, or leave 'concurrent' out of exercise= and concurrency= at its default"
            )
        if not isinstance(self.schedule, Schedule):
            raise SpecError(f"schedule={self.schedule!r}; build one with idemtest.hourly(...), daily(...), every(...) or windows([...])")
        if not self.targets:
            raise SpecError("a Spec needs at least one Target: the table(s) the load writes")
        if self.oracle not in ("all-arrived", "same-arrivals"):
            raise SpecError(f"oracle={self.oracle!r}; use 'all-arrived' (default) or 'same-arrivals'")
        if self.concurrency not in ("none", "partitions", "same-partition"):
            raise SpecError(f"concurrency={self.concurrency!r}; use 'none', 'partitions' or 'same-partition'")
        if not isinstance(self.retries, int) or not 0 <= self.retries <= 10:
            raise SpecError(f"retries={self.retries!r} must be a whole number from 0 to 10 (the orchestrator's retry bound)")
        if self.dialect not in (None, "duckdb", "postgres"):
            raise SpecError(f"dialect={self.dialect!r}; use 'duckdb', 'postgres' or leave it unset for SQL both accept")
        seen: set[str] = set()
        for s in self.sources:
            if s.table in seen:
                raise SpecError(f"source {s.table!r} is declared twice")
            seen.add(s.table)
        labels: set[str] = set()
        for t in self.targets:
            if t.table in seen:
                raise SpecError(f"{t.table!r} is declared both as a source and as a target")
            if t.table in labels:
                raise SpecError(f"target {t.table!r} is declared twice; declare each table once (give query targets distinct names)")
            labels.add(t.table)
        if len(self.all_windows) > MAX_WINDOWS:
            raise SpecError(
                f"the schedule has {len(self.schedule.windows)} windows plus tail windows for max_lateness={self.max_lateness}: "
                f"{len(self.all_windows)} in all, more than the {MAX_WINDOWS} a check can run; every scenario runs each window, "
                "so check a few (hourly(start, periods=6) is typical) — the bugs idemtest finds show up within a handful"
            )

    def with_crash(self, crash: str) -> Spec:
        """This spec in crash mode `crash` (`--idem-crash`, a replayed file's mode)."""
        if crash == self.crash:
            return self
        return replace(self, crash=crash)  # type: ignore[arg-type]

    def located(self, base_dir: Path | str) -> Spec:
        """This spec with relative setup files looked for in `base_dir` too."""
        return replace(self, base_dir=Path(base_dir))

    @property
    def all_windows(self) -> tuple[Window, ...]:
        return self.schedule.with_tail(self.max_lateness)

    def run_time(self, window: Window) -> datetime:
        """When the nominal run of `window` starts: as it closes, plus `run_delay`."""
        return window.end + self.run_delay

    def fingerprint(self) -> str:
        """A short digest of what shapes generated data, stored with saved failures."""
        import hashlib

        text = repr(
            (
                [(s.table, sorted(s.columns.items()), s.keys, s.event_time, s.updates, s.append_only, s.landing)
                 + ((s.snapshot, s.path, sorted((c, repr(v)) for c, v in s.values.items() if c in s.keys)) if s.snapshot or s.path or not s.keys or set(s.values) & set(s.keys) else ())
                 for s in self.sources],
                [(t.table, t.keys, tuple(t.ignore), t.query) + ((t.file,) if t.file else ()) for t in self.targets],
                [(w.start.isoformat(), w.end.isoformat()) for w in self.schedule.windows],
                str(self.max_lateness) + (f" +{self.run_delay}" if self.run_delay else ""),
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_strategy(value: Any) -> bool:
    # a duck check: importing Hypothesis here would make declaring a Spec cost ~100 ms
    return any(c.__name__ == "SearchStrategy" and c.__module__.startswith("hypothesis") for c in type(value).__mro__)


LoadFunction = Callable[["RunContext"], Any]
