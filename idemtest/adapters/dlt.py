"""dlt pipelines as idemtest checks (`idemtest[dlt]`).

    import idemtest
    from shop.pipeline import orders          # the user's own @dlt.resource / @dlt.source

    test_orders = idemtest.dlt.check(
        source=orders,
        sources=[idemtest.Source("src.orders", columns={...}, key="order_id", event_time="updated_at")],
        max_lateness="1h",
    )

Every run of a scenario is one real `pipeline.run(source)` of the user's source, in
this process (extract, normalize, load):

- the destination is the sandbox: dlt's duckdb destination opens the sandbox's path
  (`duckdb.connect` is intercepted and dlt's pool duplicates an instrumented connection),
  its postgres destination gets credentials idemtest builds from the sandbox's DSN
  (psycopg2's connect is intercepted); no password is asked of the user;
- one extract, normalize and load worker (`*__WORKERS=1`): dlt's loader runs its jobs on
  the run's own thread, so every statement it sends (schema and version checks, CREATE,
  the INSERTs of each job, the state row, the `_dlt_loads` row, merges from staging) is a
  statement boundary: crashes land inside dlt's own connection, including between the
  data jobs and the `_dlt_loads` row that makes the stored state count (dlt-hub/dlt#4052);
- a private `pipelines_dir` per sandbox, created and deleted by idemtest: dlt's local
  state (pending packages, the pipeline state file) lives and dies with the sandbox;
- the worker a retry runs on is a scenario dimension: `worker="both"` (default) retries
  a run that crashed *after* a statement on a fresh worker (the local `pipelines_dir` is
  wiped, dlt restores its state from the destination) and one that crashed *before* a
  statement on the same worker (pending packages and local state kept). A crash after
  statement k and one before statement k+1 leave the database alike, so the systematic
  pass's before/after pair covers both workers at (nearly) every crash point, and a
  saved failure replays on the same worker it failed on;
- source rows: resources read the generated source tables as they are at the run's
  time, through `idemtest.dlt.source_rows("src.orders")` (an instrumented read of the
  sandbox) or, for a resource that reads a database itself, a `source=` factory given
  the run (`run.dsn` / `run.path` are instrumented).

dlt runs one pipeline at a time here (`concurrency="none"`).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import CheckFailure, ConfigurationError, IdemtestError, SpecError
from .._extras import require
from ..spec import ALL_PERTURBATIONS, Schedule, Source, Spec, Target, hourly
from ._shared import as_user_test, plan_or_skip, skip_unless_enabled, sources_ddl, with_note

if TYPE_CHECKING:
    from ..context import RunContext

#: a dlt run costs ~0.3-1 s (extract, normalize, load), not milliseconds: a dlt check
#: plays few generated scenarios (`examples=` or --idem-examples raise it) and thins
#: the single-fault pass evenly over its families to this many
DEFAULT_EXAMPLES = 4
DEFAULT_SYSTEMATIC_MAX = 20
#: a dlt check's time budget (None: unbounded). Not set by default: a budget also thins
#: the single-fault pass by time, and on a loaded machine that dropped the very crash
#: point (data committed, `_dlt_loads` row not yet) a buggy append needs; bound a check
#: with `max_seconds=` or --idem-max-seconds where minutes matter more
DEFAULT_MAX_SECONDS: float | None = None
#: columns dlt adds to every row: different on every load, never the pipeline's outcome
DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")
#: dlt's own tables, never compared (they are not declared as targets)
DLT_TABLES = ("_dlt_loads", "_dlt_pipeline_state", "_dlt_version")
WORKERS = ("both", "same", "fresh")
#: dlt's postgres credentials refuse a DSN without a password: idemtest fills this one in
#: for a trust-auth sandbox server, which ignores it (a server that needs one has it in the
#: DSN), so the user never writes a dummy password
PLACEHOLDER_PASSWORD = "idemtest-unused"
#: dlt configuration set during every run (environment variables, restored after):
#: one worker per stage (statements in order on the run's thread), no telemetry
DLT_ENV = {
    "EXTRACT__WORKERS": "1",
    "NORMALIZE__WORKERS": "1",
    "LOAD__WORKERS": "1",
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "RUNTIME__LOG_LEVEL": "WARNING",
}


class DltError(ConfigurationError):
    """A dlt check declared wrongly (bad source, unknown resource, unsupported destination)."""


class DltRunFailed(Exception):
    """`pipeline.run()` failed: the pipeline's own error (dlt's message), retried like any."""


# --- the run's source rows ------------------------------------------------------------------

_current: dict[str, Any] = {}  # the run in progress ("run": RunContext): dlt runs one at a time
_current_lock = threading.Lock()


def source_rows(table: str) -> list[dict[str, Any]]:
    """The rows of generated source table `table` as they are at the run's time (late
    rows only once they have arrived), read through an instrumented connection to the
    sandbox; call it from a resource during an idemtest dlt run:

        @dlt.resource(primary_key="order_id", write_disposition="merge")
        def orders(updated_at=dlt.sources.incremental("updated_at", lag=3600)):
            yield idemtest.dlt.source_rows("src.orders")
    """
    run = _current.get("run")
    if run is None:
        raise DltError(
            f"idemtest.dlt.source_rows({table!r}) was called outside an idemtest dlt run; it reads the sandbox's "
            "generated source rows, and only a run of idemtest.dlt.check(...) has a sandbox"
        )
    known = [s.table for s in run.spec.sources]
    if table not in known:
        raise DltError(f"idemtest.dlt.source_rows({table!r}): the check declares no such source; it declares {known}")
    conn = run.connect()
    try:
        cur = conn.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        try:
            conn.close()
        except Exception:
            pass


def _import(path: str, what: str) -> Any:
    """`pkg.module:attr` or `pkg.module.attr`, imported now (a missing dlt names the extra)."""
    import importlib

    from .._extras import missing_extra

    module, sep, attr = path.partition(":")
    if not sep:
        module, _, attr = path.rpartition(".")
    if not module or not attr:
        raise DltError(f"{what}={path!r} must name an object as 'package.module:name' (or 'package.module.name')")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        extra = missing_extra(e)
        if extra is not None:
            raise extra from None
        raise DltError(f"{what}={path!r}: module {module!r} cannot be imported ({type(e).__name__}: {e})") from None
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DltError(f"{what}={path!r}: {module!r} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


@contextmanager
def _readers(readers: Mapping[str, str]) -> Iterator[None]:
    """Replace each reader function (`pkg.api.fetch_orders`) by one returning its table's
    rows at the run's time, as monkeypatch would; restored after the run."""
    import importlib

    saved = []
    try:
        for path, table in readers.items():
            module, _, attr = path.replace(":", ".").rpartition(".")
            mod = importlib.import_module(module)
            saved.append((mod, attr, getattr(mod, attr)))

            def read(*args: Any, _table: str = table, **kwargs: Any) -> list[dict[str, Any]]:
                return source_rows(_table)

            setattr(mod, attr, read)
        yield
    finally:
        for mod, attr, original in reversed(saved):
            setattr(mod, attr, original)


# --- the private pipelines_dir of each sandbox ---------------------------------------------


class _Worker:
    """What one sandbox's dlt "worker" keeps: its pipelines_dir, and how its last attempt ended."""

    def __init__(self, root: Path) -> None:
        self.dir = root
        self.last_crash = ""  # "before" | "after": the `when` of the crash that ended the last attempt
        self.fresh = 0  # retries run on a fresh worker
        self.same = 0  # retries run on the same worker


_workers: weakref.WeakKeyDictionary[Any, _Worker] = weakref.WeakKeyDictionary()
_root: list[Path] = []
_root_lock = threading.Lock()


def _scratch_root() -> Path:
    with _root_lock:
        if not _root:
            from ..sandbox import scratch

            scratch.sweep("dlt")  # what a killed process left behind
            root = scratch.make("dlt")
            atexit.register(shutil.rmtree, root, True)
            _root.append(root)
        return _root[0]


def _worker_for(sandbox: Any) -> _Worker:
    w = _workers.get(sandbox)
    if w is None:
        root = _scratch_root() / f"{getattr(sandbox, 'name', 'sandbox')}-{id(sandbox):x}"
        root.mkdir(parents=True, exist_ok=True)
        w = _Worker(root)
        _workers[sandbox] = w
        # the sandbox goes when its scenario ends: its local dlt state goes with it (on
        # close; should the sandbox be dropped without one, when it is collected)
        close = sandbox.close

        def close_and_remove() -> None:
            try:
                close()
            finally:
                shutil.rmtree(root, ignore_errors=True)

        sandbox.close = close_and_remove
        weakref.finalize(sandbox, shutil.rmtree, str(root), True)
    return w


# --- crash points: dlt's writes and commits -------------------------------------------------

#: statements after which a crash leaves the database (and dlt's local state) as a crash
#: before the next statement would: connection setup, SET/PRAGMA, metadata and source reads
_READ_ONLY = re.compile(r"^\s*(set|pragma|select|show|describe|with|use)\b", re.I)
_WRITE = re.compile(r"\b(insert|update|delete|merge|create|drop|alter|truncate|copy)\b", re.I)


def _crash_points_only(ctl: Any) -> None:
    """Count as boundaries of this attempt only the statements after which the database
    differs: COMMITs, and writes outside an explicit transaction (autocommitted DDL,
    dlt's DELETE/INSERT merge statements, the `_dlt_loads` row).

    A dlt run sends ~60 statements, most of them connection setup, metadata reads, BEGINs
    and writes inside a transaction; a crash after one of those leaves the database as a
    crash before the next counted statement does. Counting the others only gives the
    single-fault pass (thinned to DEFAULT_SYSTEMATIC_MAX: dlt runs cost seconds) its crash
    points where dlt's outcome can change."""
    from ..engine.model import Boundary

    counted = ctl.boundary
    skipped = Boundary(0, "skipped")
    in_transaction = [False]
    writes: list[str] = []  # what the open transaction wrote: a report names what a COMMIT commits

    def boundary(kind: str, text: Any = "") -> Boundary:
        sql = str(text or "")
        write = kind in ("execute", "sql", "executemany") and bool(_WRITE.search(sql)) and not _READ_ONLY.match(sql)
        if kind == "begin":
            in_transaction[0] = True
            writes.clear()
        elif kind in ("commit", "rollback"):
            in_transaction[0] = False
            done = list(writes)
            writes.clear()
            if kind == "commit":
                what = " ".join(done[0].split())[:120] + (f" (+{len(done) - 1} more)" if len(done) > 1 else "") if done else ""
                return counted(kind, f"COMMIT of {what}" if what else text)
        elif write and in_transaction[0]:
            writes.append(sql)
        elif write:
            return counted(kind, text)
        elif kind not in ("connect", "cursor", "execute", "sql", "executemany"):
            return counted(kind, text)  # fault points, appends, copies
        ctl._check_alive()  # a dead process sends nothing, whatever the statement
        return skipped

    ctl.boundary = boundary


_ordered: list[bool] = []


def _order_jobs() -> None:
    """dlt starts a package's load jobs in directory-listing order, which follows the
    random part of each job's file name: two runs of the same scenario would send their
    jobs (the data, the state row) in different orders, and a replayed crash would land
    on another statement. Listed sorted by name (table first), the order is fixed;
    nothing else changes (the jobs are independent). Installed once, for the process."""
    if _ordered:
        return
    from dlt.common.storages.load_package import PackageStorage

    original = PackageStorage.list_new_jobs

    def list_new_jobs(self: Any, load_id: str) -> Any:
        return sorted(original(self, load_id), key=lambda f: os.path.basename(str(f)))

    PackageStorage.list_new_jobs = list_new_jobs  # type: ignore[method-assign, unused-ignore]
    _ordered.append(True)


# --- the destination ------------------------------------------------------------------------


def _destination(run: RunContext, dialect: str) -> Any:
    import dlt

    if dialect == "duckdb":
        from ..sandbox.duckdb import catalog_path

        # an absolute path whose file name is the sandbox's catalog: dlt's duckdb.connect of it
        # is intercepted, and dlt qualifies tables with that catalog
        return dlt.destinations.duckdb(credentials=catalog_path(str(run.path)))
    if dialect == "postgres":
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        from ..sandbox.postgres.dsn import parse_dsn

        p = parse_dsn(str(run.dsn))
        creds = PostgresCredentials()
        creds.database = p["dbname"]
        creds.host = p.get("host") or "127.0.0.1"
        creds.port = int(p.get("port") or 5432)
        creds.username = p.get("user") or "postgres"
        creds.password = p.get("password") or PLACEHOLDER_PASSWORD
        return dlt.destinations.postgres(credentials=creds)
    raise DltError(f"the sandbox dialect {dialect!r} has no dlt destination here; idemtest's dlt checks run on DuckDB and PostgreSQL")


@contextmanager
def _dlt_env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in DLT_ENV}
    os.environ.update(DLT_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- the user's source ----------------------------------------------------------------------


def _kind(obj: Any) -> str:
    """'source' | 'resource' | 'source-function' | 'factory' for what `source=` holds."""
    from dlt.extract.decorators import DltSourceFactoryWrapper
    from dlt.extract.resource import DltResource
    from dlt.extract.source import DltSource

    if isinstance(obj, DltSource):
        return "source"
    if isinstance(obj, DltResource):
        return "resource"
    if isinstance(obj, DltSourceFactoryWrapper):
        return "source-function"
    if callable(obj):
        return "factory"
    raise DltError(
        f"source={obj!r} is not a dlt source: pass your @dlt.resource or @dlt.source (the decorated function or what "
        "calling it returns), or a function of the run returning one (source=lambda run: shop(credentials=run.dsn))"
    )


def _build(obj: Any, kind: str, run: RunContext | None) -> Any:
    """A fresh source object for one run: dlt objects carry incremental state between calls."""
    if kind == "source-function":
        return obj()
    if kind == "resource":
        # a parametrized resource (a generator function) binds afresh; a bound one is cloned
        try:
            return obj() if obj._args_bound is False else obj.clone()
        except Exception:
            return obj.clone()
    if kind == "source":
        return obj.clone()
    built = obj(run)
    _kind(built)  # a factory must return a dlt object
    if callable(built) and not hasattr(built, "resources") and not hasattr(built, "compute_table_schema"):
        return built()
    return built


def _resources(src: Any) -> list[Any]:
    if hasattr(src, "selected_resources"):
        return list(src.selected_resources.values())
    return [src]


def _table_of(resource: Any) -> tuple[str, tuple[str, ...], str]:
    """(table name, primary key, write disposition) of a resource, from its hints."""
    schema = resource.compute_table_schema()
    name = str(schema.get("name") or resource.name)
    key = tuple(c for c, col in (schema.get("columns") or {}).items() if col.get("primary_key"))
    if not key:
        pk = resource._hints.get("primary_key") if hasattr(resource, "_hints") else None
        key = (pk,) if isinstance(pk, str) else tuple(pk or ())
    return name, key, str(schema.get("write_disposition") or "append")


# --- the check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    spec: Spec
    load: Callable[[RunContext], Any]
    tables: tuple[tuple[str, tuple[str, ...], str], ...]
    worker: str
    stats: RunStats


@dataclass
class RunStats:
    """dlt runs made and the seconds spent inside `pipeline.run` (bench/dlt_bench.py)."""

    runs: int = 0
    seconds: float = 0.0
    fresh: int = 0
    same: int = 0


@dataclass(frozen=True)
class DltCheck:
    source: Any
    sources: tuple[Source, ...]
    readers: Mapping[str, str]
    tables: Mapping[str, Any] | None
    dataset_name: str
    pipeline_name: str
    schedule: Schedule
    max_lateness: timedelta | str | float
    ignore: tuple[str, ...]
    worker: str
    retries: int
    retry_delay: timedelta | str | float
    timeout: timedelta | str | float
    exercise: frozenset[str]
    name: str
    dialect: str | None = None

    def plan(self, dialect: str) -> Plan:
        require("dlt", "dlt")
        if dialect not in ("duckdb", "postgres"):
            raise DltError(f"the sandbox is {dialect}; idemtest's dlt checks run on DuckDB (default) and PostgreSQL (--idem-db postgresql://...)")
        if dialect == "postgres":
            require("psycopg2", "dlt")
        source = _import(self.source, "source") if isinstance(self.source, str) else self.source
        kind = _kind(source)
        for path in self.readers:
            _import(path, "readers")  # a wrong name is an error now, not in every run
        tables = self._tables(source, kind)
        targets = [
            Target(f"{self.dataset_name}.{name}", key=key or None, ignore=tuple(dict.fromkeys((*DLT_COLUMNS, *self.ignore))), created_by_load=True)
            for name, key, _ in tables
        ]
        spec = Spec(
            sources=self.sources,
            targets=targets,
            schedule=self.schedule,
            setup=sources_ddl(self.sources),
            max_lateness=self.max_lateness,
            retries=self.retries,
            retry_delay=self.retry_delay,
            timeout=self.timeout,
            exercise=self.exercise,
            concurrency="none",
            name=self.name,
            dialect=self.dialect,
        )
        stats = RunStats()
        load = _make_load(self, source, kind, dialect, stats)
        return Plan(spec, load, tuple(tables), self.worker, stats)

    def _tables(self, source: Any, kind: str) -> list[tuple[str, tuple[str, ...], str]]:
        """The dlt tables compared: every selected resource's (or `tables=`), keys from `primary_key`."""
        found: dict[str, tuple[str, tuple[str, ...], str]] = {}
        if kind != "factory":
            for r in _resources(_build(source, kind, None)):
                name, key, disposition = _table_of(r)
                found[name] = (name, key, disposition)
        if self.tables is None:
            if kind == "factory":
                raise SpecError(
                    "source= is a function of the run, so idemtest cannot read its resources before a run; "
                    "name the tables it loads: tables={'orders': 'order_id'} (table -> primary key, None for none)"
                )
            return list(found.values())
        out = []
        for name, key in self.tables.items():
            if found and name not in found:
                raise DltError(f"tables= names {name!r}, which the source does not load; its resources load {sorted(found)}")
            if key is ...:
                key = found[name][1] if name in found else ()
            keys = (key,) if isinstance(key, str) else tuple(key or ())
            out.append((name, keys, found[name][2] if name in found else "?"))
        return out




def _make_load(check: DltCheck, source: Any, kind: str, dialect: str, stats: RunStats) -> Callable[[RunContext], Any]:
    def dlt_run(run: RunContext) -> None:
        """One `pipeline.run(source)` into the sandbox, on this sandbox's worker."""
        import dlt
        from dlt.pipeline.exceptions import PipelineStepFailed

        _order_jobs()
        worker = _worker_for(run._sandbox)
        local = worker.dir / check.pipeline_name
        if run.attempt > 1 and worker.last_crash:
            fresh = check.worker == "fresh" or (check.worker == "both" and worker.last_crash == "after")
            if fresh:
                shutil.rmtree(local, ignore_errors=True)  # a new pod: nothing of the last attempt's disk
                stats.fresh += 1
            else:
                stats.same += 1
        worker.last_crash = ""
        ctl = run._ctl
        if ctl is not None:
            _crash_points_only(ctl)
            # recorded as the crash happens: the harness stops waiting for a dead run, so
            # this attempt's `finally` may run after the retry has started
            ctl.on_crash.append(lambda c: setattr(worker, "last_crash", c.crashed.when if c.crashed else ""))
        with _current_lock:
            _current["run"] = run
        t0 = time.perf_counter()
        try:
            with _dlt_env(), _readers(check.readers):
                # IDEMTEST_DLT_LOG=1 shows dlt's progress log of every run
                extra: dict[str, Any] = {"progress": "log"} if os.environ.get("IDEMTEST_DLT_LOG") else {}
                pipeline = dlt.pipeline(
                    pipeline_name=check.pipeline_name,
                    pipelines_dir=str(worker.dir),
                    destination=_destination(run, dialect),
                    dataset_name=check.dataset_name,
                    **extra,
                )
                try:
                    pipeline.run(_build(source, kind, run))
                except PipelineStepFailed as e:
                    if ctl is not None and ctl.crashed is not None:
                        raise ctl.crashed from None  # idemtest's crash: the process died there
                    cause = e.__cause__ or e.exception
                    if isinstance(cause, IdemtestError):
                        raise cause from None
                    raise DltRunFailed(f"pipeline.run() failed in step {e.step!r}: {type(cause).__name__}: {' '.join(str(cause).split())[:500]}") from None
        finally:
            stats.runs += 1
            stats.seconds += time.perf_counter() - t0
            with _current_lock:
                if _current.get("run") is run:  # not the retry's, set meanwhile
                    _current.pop("run", None)

    dlt_run.__qualname__ = f"dlt pipeline {check.pipeline_name}.run()"
    return dlt_run


def _as_sources(sources: Any) -> tuple[Source, ...]:
    if isinstance(sources, Source):
        return (sources,)
    if sources is None or isinstance(sources, (str, bytes, Mapping)) or not isinstance(sources, Sequence):
        raise SpecError(
            f"sources={sources!r}: declare the source tables your resources read, as a list of idemtest.Source, e.g. "
            "sources=[idemtest.Source('src.orders', columns={...}, key='order_id', event_time='updated_at')]"
        )
    out = tuple(sources)
    for s in out:
        if not isinstance(s, Source):
            raise SpecError(f"sources= holds {s!r}; each must be an idemtest.Source")
    return out


def check(
    *,
    source: Any,
    sources: Sequence[Source] | Source,
    readers: Mapping[str, str] | None = None,
    tables: Mapping[str, Any] | Iterable[str] | None = None,
    dataset_name: str = "idemtest_data",
    pipeline_name: str | None = None,
    schedule: Schedule | None = None,
    max_lateness: timedelta | str | float = timedelta(0),
    ignore: Iterable[str] = (),
    worker: str = "both",
    retries: int = 2,
    retry_delay: timedelta | str | float = timedelta(minutes=5),
    timeout: timedelta | str | float = timedelta(seconds=60),
    exercise: Iterable[str] | None = None,
    examples: int | None = None,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    systematic_max: int = DEFAULT_SYSTEMATIC_MAX,
    dialect: str | None = None,
) -> Callable[..., None]:
    """A pytest test that checks the dlt pipeline loading `source` (a @dlt.resource or
    @dlt.source, or a function of the run returning one): assign it to a `test_` name.

    `sources`: the generated source tables the resources read (idemtest.Source; read them
    with `idemtest.dlt.source_rows(table)` or through run.dsn/run.path in a factory).
    `tables`: the dlt tables compared (default: every selected resource's table), a list
    of names or {name: primary key}; keys default to the resources' `primary_key`.
    `worker`: where a retry after a crash runs: "both" (default: after a crash *after* a
    statement on a fresh worker whose local pipelines_dir is gone, after one *before* a
    statement on the same worker), "same" or "fresh". `ignore`: more columns left out of
    comparisons (dlt's `_dlt_load_id`, `_dlt_id` always are). `max_seconds`: the check's
    time budget (default: none; a budget also thins the single-fault pass on a slow machine). `dialect="duckdb"` or
    `"postgres"`: check only on that sandbox (skipped, with the option, on the other).
    `systematic_max`: how many single-fault scenarios the pass plays (default 20, spread
    evenly over its families; with `exercise=["crash"]` all go to crash points)."""
    srcs = _as_sources(sources)
    if worker not in WORKERS:
        raise SpecError(f"worker={worker!r}; use 'both' (default), 'same' (retries keep the local pipelines_dir) or 'fresh' (retries start without it)")
    if schedule is not None and not isinstance(schedule, Schedule):
        raise SpecError(f"schedule={schedule!r}; build one with idemtest.hourly(...), daily(...), every(...) or windows([...])")
    if not isinstance(dataset_name, str) or not dataset_name.isidentifier():
        raise SpecError(f"dataset_name={dataset_name!r} must be a plain identifier (the schema dlt loads into), e.g. 'shop'")
    chosen = frozenset(ALL_PERTURBATIONS - {"concurrent"} if exercise is None else ([exercise] if isinstance(exercise, str) else exercise))
    if "concurrent" in chosen:
        raise SpecError("exercise= includes 'concurrent': idemtest runs one dlt pipeline at a time in a process; leave it out")
    if not isinstance(systematic_max, int) or isinstance(systematic_max, bool) or systematic_max < 1:
        raise SpecError(f"systematic_max={systematic_max!r} must be a whole number >= 1 (single-fault scenarios per check)")
    if tables is not None and not isinstance(tables, Mapping):
        if isinstance(tables, str):
            tables = [tables]
        tables = {t: ... for t in tables}
    if readers is not None and not isinstance(readers, Mapping):
        raise SpecError(f"readers={readers!r} must map a function your resources call ('pkg.api.fetch_orders') to the source table it reads ('src.orders')")
    for path, table in (readers or {}).items():
        if table not in {s.table for s in srcs}:
            raise SpecError(f"readers[{path!r}]={table!r} names no declared source; sources= declares {[s.table for s in srcs]}")
    if isinstance(source, str):
        label = source.replace(":", ".").rpartition(".")[2]
    else:
        label = str(getattr(source, "name", None) or getattr(source, "__name__", None) or "pipeline")
    name = pipeline_name or f"idemtest_{label}"
    definition = DltCheck(
        source=source,
        sources=srcs,
        readers=dict(readers or {}),
        tables=dict(tables) if tables is not None else None,
        dataset_name=dataset_name,
        pipeline_name=str(name),
        schedule=schedule if schedule is not None else hourly("2026-06-01", periods=3),
        max_lateness=max_lateness,
        ignore=tuple([ignore] if isinstance(ignore, str) else ignore),
        worker=worker,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        exercise=chosen,
        name=f"dlt_{name}",
        dialect=dialect,
    )

    def test(idempotency: Any) -> None:
        skip_unless_enabled(idempotency)
        plan = plan_or_skip(lambda: definition.plan(idempotency.dialect))
        try:
            idempotency.check(
                plan.spec, plan.load, examples=examples or DEFAULT_EXAMPLES, systematic_max=systematic_max, max_seconds=max_seconds
            )
        except CheckFailure as failure:
            raise _with_note(failure, plan) from None

    return as_user_test(test, name=f"test_dlt_{name}", doc=f"idemtest: dlt pipeline {name!r}", attr="idemtest_dlt", definition=definition)


def _with_note(failure: CheckFailure, plan: Plan) -> CheckFailure:
    loads = ", ".join(f"{t} ({d}" + (f" on {'+'.join(k)})" if k else ")") for t, k, d in plan.tables)
    worker = {
        "both": "a retry after a crash AFTER a statement ran on a fresh worker (local pipelines_dir wiped, dlt restored its state "
        "from the destination); after a crash BEFORE a statement, on the same worker (local state and pending packages kept)",
        "same": "every retry ran on the same worker (local pipelines_dir kept)",
        "fresh": "every retry ran on a fresh worker (local pipelines_dir wiped, state restored from the destination)",
    }[plan.worker]
    return with_note(failure, f"dlt: each run is pipeline.run() loading {loads}; {worker}; dlt's columns {list(DLT_COLUMNS)} are ignored")


def definition_of(test: Any) -> DltCheck | None:
    found = getattr(test, "idemtest_dlt", None)
    return found if isinstance(found, DltCheck) else None
