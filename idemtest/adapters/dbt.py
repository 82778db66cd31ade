"""dbt models as idemtest checks (`idemtest[dbt]`).

    import idemtest
    test_fct_orders = idemtest.dbt.check(project_dir="shop", select="fct_orders", max_lateness="1h")

Every run of a scenario is one real `dbt run --select +fct_orders` of the user's own
project through dbt-core's programmatic runner (`dbtRunner`), in this process:

- the sandbox is the dbt target: a profile generated into a temp folder points
  dbt-duckdb at the sandbox (`duckdb.connect(path)` is intercepted, so dbt gets an
  instrumented connection) or dbt-postgres at the sandbox database (psycopg2's
  connect is intercepted the same way; trust auth, a placeholder password);
- `--single-threaded`: dbt runs its nodes on the run's own thread, so every
  statement dbt sends is a statement boundary of the run: crashes land inside
  dbt's own connection, and a retry re-runs the selection as an orchestrator does;
- the project is parsed once per process and adapter; every run reuses the
  manifest (`dbtRunner(manifest=...)`), retargeted at the run's sandbox database;
- sources come from the project's `sources:` YAML (columns and `data_type`, the key
  from a `unique` test, the event time from `loaded_at_field` or `event_time`), the
  target from the model (its relation; its key from a `unique` test or `unique_key`);
- the window reaches the model as `--vars` (`window_start`, `window_end`) and, for
  `incremental_strategy='microbatch'`, as `--event-time-start/--event-time-end`;
- the reference run (the clean run every scenario is compared with) is
  `dbt run --full-refresh` over all arrived data (`oracle="full-refresh"`, default),
  or the incremental runs of every window in order (`oracle="incremental"`).

dbt runs one invocation at a time per process, so runs never overlap
(`concurrency="none"`): two dbt jobs at once are two processes.
"""

from __future__ import annotations

import atexit
import difflib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .._errors import CheckFailure, DbtProjectError, SpecError
from .._extras import require
from ..sandbox.base import user_paths
from ..spec import ALL_PERTURBATIONS, Schedule, Source, Spec, Target, hourly
from ._shared import (
    as_user_test,
    caller_dir,
    plan_or_skip,
    skip_unless_enabled,
    sources_ddl,
    with_note,
)

if TYPE_CHECKING:
    from ..context import RunContext
    from ..spec import Window

#: the profile and target idemtest writes; `--profile/--target` select them
PROFILE = "idemtest"
TARGET = "sandbox"
#: the database name the manifest is parsed with; each run rewrites it to the sandbox's
PARSE_DB = "idemtest_parse"
#: dbt-postgres requires a password field; the sandbox server uses trust auth
PLACEHOLDER_PASSWORD = "idemtest-unused"
ORACLES = ("full-refresh", "incremental")
_UNSET: Any = object()
#: a dbt run costs ~0.1-1 s, not milliseconds: a dbt check plays fewer scenarios than
#: a plain one (`examples=` or --idem-examples raise it); the single-fault pass is
#: thinned evenly over its families to this many
DEFAULT_EXAMPLES = 10
DEFAULT_SYSTEMATIC_MAX = 8
#: the vars every run passes (a model reads them with `var("window_start")`)
WINDOW_VARS = ("window_start", "window_end")


class DbtRunFailed(Exception):
    """`dbt run` reported an error (the pipeline's own failure, dbt's message)."""


# --- the project: parsed once per process and adapter ----------------------------------


def _dbt_message(result: Any) -> str:
    """dbt's own words for a failed invocation: the exception, or each failed node."""
    if getattr(result, "exception", None) is not None:
        return " ".join(str(result.exception).split())
    lines = []
    for r in getattr(getattr(result, "result", None), "results", None) or []:
        status = str(getattr(r, "status", ""))
        if status.lower() in ("error", "fail", "runtime error", "skipped", "partial success") and getattr(r, "message", None):
            lines.append(f"{r.node.name} ({status}): {' '.join(str(r.message).split())}")
        # a microbatch model reports its failed batches on the node's batch results
        for batch, error in _failed_batches(r):
            lines.append(f"{r.node.name} batch {batch}: {error}")
    return "; ".join(lines) or "dbt reported a failure without a message"


def _failed_batches(r: Any) -> list[tuple[str, str]]:
    batches = getattr(r, "batch_results", None)
    failed = getattr(batches, "failed", None) or []
    return [(str(b[0]) if isinstance(b, tuple) and b else str(b), "failed") for b in failed]


class Project:
    """One dbt project for one adapter type: a temp folder with the generated
    profiles.yml, target and log paths, and the manifest parsed once."""

    def __init__(self, project_dir: Path, adapter: str) -> None:
        self.dir = project_dir
        self.adapter = adapter
        self.work = Path(tempfile.mkdtemp(prefix="idemtest-dbt-"))
        atexit.register(shutil.rmtree, self.work, True)
        self.lock = threading.Lock()
        self._output: dict[str, Any] | None = None
        self._db = PARSE_DB
        self.manifest: Any = None
        self.invocations = 0  # dbt runs made, and the seconds they took (bench/dbt_bench.py)
        self.seconds = 0.0

    def args(self, command: str, *extra: str) -> list[str]:
        return [
            command,
            "--project-dir", str(self.dir),
            "--profiles-dir", str(self.work),
            "--profile", PROFILE,
            "--target", TARGET,
            "--target-path", str(self.work / "target"),
            "--log-path", str(self.work / "logs"),
            # IDEMTEST_DBT_LOG=debug shows dbt's own log (every statement it sends)
            "--log-level", os.environ.get("IDEMTEST_DBT_LOG", "none"),
            "--log-level-file", "none",
            "--no-send-anonymous-usage-stats",
            "--no-version-check",
            *extra,
        ]

    def write_profile(self, output: dict[str, Any]) -> None:
        if output == self._output:
            return
        # JSON is YAML: no YAML writer needed
        (self.work / "profiles.yml").write_text(json.dumps({PROFILE: {"target": TARGET, "outputs": {TARGET: output}}}))
        self._output = output

    def parse(self) -> None:
        from dbt.cli.main import dbtRunner

        self.write_profile(_parse_output(self.adapter))
        result = dbtRunner().invoke(self.args("parse", "--no-partial-parse", "--no-write-json"))
        if not result.success or result.result is None:
            raise DbtProjectError(
                f"dbt cannot parse the project at {self.dir}: {_dbt_message(result)}\n"
                f"  fix the project until `dbt parse --project-dir {self.dir}` succeeds"
            )
        self.manifest = result.result

    def retarget(self, database: str) -> None:
        """Point every node of the reused manifest at the run's sandbox database."""
        if database == self._db:
            return
        m = self.manifest
        # every relation, whatever database the YAML names (`database: raw`): the sandbox is one
        for node in [*m.nodes.values(), *m.sources.values()]:
            old = getattr(node, "database", None)
            if not old or old == database:
                continue
            node.database = database
            name = getattr(node, "relation_name", None)
            if name:
                node.relation_name = name.replace(f'"{old}"', f'"{database}"')
        self._db = database

    def invoke(self, output: dict[str, Any], database: str, args: list[str]) -> Any:
        from dbt.cli.main import dbtRunner

        with self.lock:  # one dbt invocation at a time in a process
            self.write_profile(output)
            self.retarget(database)
            _forget_connections(self.adapter)
            _install_nesting_fix()
            _single.active, _single.depth = True, 0
            t0 = time.perf_counter()
            try:
                return dbtRunner(manifest=self.manifest).invoke(args)
            finally:
                _single.active = False
                self.invocations += 1
                self.seconds += time.perf_counter() - t0


_projects: dict[tuple[str, str], Project] = {}
_projects_lock = threading.Lock()


def project_for(project_dir: Path, adapter: str) -> Project:
    """The parsed project, shared by every check of the process (parse once per session)."""
    key = (str(project_dir), adapter)
    with _projects_lock:
        project = _projects.get(key)
        if project is None:
            project = Project(project_dir, adapter)
            project.parse()
            _projects[key] = project
        return project


def _parse_output(adapter: str) -> dict[str, Any]:
    # parsing never connects: these only name the database and schema the manifest records
    if adapter == "duckdb":
        return {"type": "duckdb", "path": f"/idemtest-sandbox/{PARSE_DB}.duckdb", "schema": "main", "threads": 1}
    return {"type": "postgres", "host": "127.0.0.1", "port": 5432, "user": "postgres", "password": PLACEHOLDER_PASSWORD, "dbname": PARSE_DB, "schema": "public", "threads": 1}


_single = threading.local()  # set while idemtest's own dbt invocation runs on this thread


def _install_nesting_fix() -> None:
    """dbt-core's `--single-threaded` mode runs `connection_named(...)` blocks nested on one
    thread (schema creation inside the run's "master" block); the inner block's exit
    closes the thread's only connection, and the outer block's next statement fails
    with "Connection already closed" (dbt-core 1.11). During idemtest's invocations a
    nested block keeps the connection open; the outermost one releases it as usual."""
    from dbt.adapters.base.impl import BaseAdapter

    original = BaseAdapter.connection_named
    if getattr(original, "_idemtest", False):
        return

    @contextmanager
    def connection_named(self: Any, name: str, query_header_context: Any = None, should_release_connection: bool = True) -> Iterator[None]:
        if not getattr(_single, "active", False):
            with original(self, name, query_header_context, should_release_connection):
                yield
            return
        depth = getattr(_single, "depth", 0)
        _single.depth = depth + 1
        try:
            with original(self, name, query_header_context, should_release_connection and depth == 0):
                yield
        finally:
            _single.depth = depth

    connection_named._idemtest = True  # type: ignore[attr-defined]
    cast(Any, BaseAdapter).connection_named = connection_named

    # every invocation scans all of sys.path for `dbt_*` plugin modules (~0.2 s a run);
    # the installed modules do not change within a process, so scan once
    from dbt.plugins.manager import PluginManager

    found = PluginManager.get_prefixed_modules()
    cast(Any, PluginManager).get_prefixed_modules = classmethod(lambda cls: dict(found))


def _forget_connections(adapter: str) -> None:
    """dbt-duckdb keeps its DuckDB connection in a class attribute across invocations;
    each run must open its own (bound to the run, closed when the run ends)."""
    if adapter == "duckdb":
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager

        DuckDBConnectionManager.close_all_connections()


def _run_output(run: RunContext, adapter: str) -> tuple[dict[str, Any], str]:
    """The dbt target for the run's sandbox, and its database name."""
    if adapter == "duckdb":
        from ..sandbox.duckdb import catalog_path

        path = catalog_path(str(run.path))
        return {"type": "duckdb", "path": path, "schema": "main", "threads": 1}, Path(path).stem
    from ..sandbox.postgres.dsn import parse_dsn

    p = parse_dsn(str(run.dsn))
    output = {
        "type": "postgres",
        "host": p.get("host") or "127.0.0.1",
        "port": int(p.get("port") or 5432),
        "user": p.get("user") or "postgres",
        "password": p.get("password") or PLACEHOLDER_PASSWORD,
        "dbname": p["dbname"],
        "schema": "public",
        "threads": 1,
    }
    return output, p["dbname"]


# --- the model and its sources, read from the manifest ---------------------------------


def _unique_tested(manifest: Any, unique_id: str) -> list[str]:
    """Columns of a node or source that carry dbt's `unique` data test."""
    found = []
    for node in manifest.nodes.values():
        meta = getattr(node, "test_metadata", None)
        if meta is None or meta.name != "unique" or not getattr(node, "column_name", None):
            continue
        if getattr(node, "attached_node", None) == unique_id or unique_id in node.depends_on.nodes:
            found.append(node.column_name)
    return sorted(set(found))


def _find_model(manifest: Any, select: str, project_dir: Path) -> Any:
    models = {n.name: n for n in manifest.nodes.values() if n.resource_type == "model"}
    if select not in models:
        close = difflib.get_close_matches(select, list(models), n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else f"; its models are {sorted(models)}"
        raise DbtProjectError(f"select={select!r}: the dbt project at {project_dir} has no model of that name{hint}")
    return models[select]


def _upstream(manifest: Any, node: Any) -> tuple[list[Any], list[Any]]:
    """The models and sources the model reads, transitively."""
    models, sources, seen = [], [], set()
    todo = list(node.depends_on.nodes)
    while todo:
        uid = todo.pop()
        if uid in seen:
            continue
        seen.add(uid)
        if uid in manifest.sources:
            sources.append(manifest.sources[uid])
        elif uid in manifest.nodes and manifest.nodes[uid].resource_type == "seed":
            # a seed the model reads is an input like a source: `dbt run` never loads it,
            # so idemtest generates its rows (declare its columns where the YAML has none)
            sources.append(manifest.nodes[uid])
        elif uid in manifest.nodes and manifest.nodes[uid].resource_type == "model":
            parent = manifest.nodes[uid]
            models.append(parent)
            todo.extend(parent.depends_on.nodes)
    return models, sorted(sources, key=lambda s: s.unique_id)


def _label(source: Any) -> str:
    """How the check names a dbt input in `sources=`: 'source_name.table', or a seed's name."""
    if getattr(source, "resource_type", None) == "seed":
        return str(source.name)
    return f"{source.source_name}.{source.name}"


_SOURCE_FIELDS = ("columns", "key", "event_time", "updates", "append_only", "max_rows", "values")


def _source_spec(manifest: Any, source: Any, given: Any) -> Source:
    """An idemtest Source for a dbt source (or seed): its YAML first, the check's declaration over it."""
    label = _label(source)
    table = f"{source.schema}.{getattr(source, 'identifier', None) or source.alias}"
    if isinstance(given, Source):
        return replace(given, table=table)
    overrides = dict(given or {})
    unknown = set(overrides) - set(_SOURCE_FIELDS)
    if unknown:
        raise SpecError(f"sources[{label!r}] names {sorted(unknown)}; declare only {list(_SOURCE_FIELDS)} (or pass an idemtest.Source)")
    columns = overrides.pop("columns", None) or {n: c.data_type for n, c in source.columns.items() if c.data_type}
    if not columns and getattr(source, "resource_type", None) == "seed":
        columns = dict(getattr(source.config, "column_types", None) or {})
    if not columns:
        raise SpecError(
            f"dbt source {label!r} declares no column with a data_type in its YAML; add `data_type:` to its columns, "
            f"or declare them in the check: sources={{{label!r}: {{'columns': {{'id': 'BIGINT', 'updated_at': 'TIMESTAMP'}}}}}}"
        )
    event_time = overrides.pop("event_time", None) or getattr(source, "loaded_at_field", None) or getattr(source.config, "event_time", None)
    if not event_time:
        raise SpecError(
            f"dbt source {label!r} names no event time: set `loaded_at_field:` (or `config: event_time:`) in its YAML, "
            f"or declare it in the check: sources={{{label!r}: {{'event_time': 'updated_at'}}}}"
        )
    key = overrides.pop("key", None) or _unique_tested(manifest, source.unique_id)
    if not key:
        raise SpecError(
            f"dbt source {label!r} has no key: add a `unique` data test to its key column in the YAML, "
            f"or declare it in the check: sources={{{label!r}: {{'key': 'order_id'}}}}"
        )
    return Source(table, columns=columns, key=key, event_time=event_time, **overrides)




# --- the check ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one check runs: the Spec built from the project and the load (one `dbt run`)."""

    spec: Spec
    load: Callable[[RunContext], Any]
    selection: str
    strategy: str
    oracle: str


@dataclass(frozen=True)
class DbtCheck:
    """A declared dbt check; `plan(dialect)` parses the project (once) and builds it."""

    project_dir: Path
    select: str
    schedule: Schedule
    max_lateness: timedelta | str | float
    sources: Mapping[str, Any]
    key: Any
    ignore: tuple[str, ...]
    vars: Mapping[str, Any] | Callable[[Window], Mapping[str, Any]] | None
    upstream: bool
    oracle: str
    retries: int
    retry_delay: timedelta | str | float
    timeout: timedelta | str | float
    exercise: frozenset[str]
    name: str

    def plan(self, dialect: str) -> Plan:
        adapter = "duckdb" if dialect == "duckdb" else "postgres"
        require("dbt.cli.main", "dbt")
        require(f"dbt.adapters.{adapter}", "dbt")
        project = project_for(self.project_dir, adapter)
        manifest = project.manifest
        model = _find_model(manifest, self.select, self.project_dir)
        strategy = str(getattr(model.config, "incremental_strategy", None) or "default")
        if model.config.materialized != "incremental":
            raise DbtProjectError(
                f"model {self.select!r} is materialized as {model.config.materialized!r}, not 'incremental': a full rebuild "
                "has no incremental logic to check; select an incremental model (config(materialized='incremental'))"
            )
        parents, dbt_sources = _upstream(manifest, model)
        given = dict(self.sources)
        labels = {_label(s) for s in dbt_sources}
        for label in given:
            if label not in labels:
                raise SpecError(f"sources= names {label!r}, which model {self.select!r} does not read; it reads {sorted(labels) or 'no source'}")
        sources = [_source_spec(manifest, s, given.get(_label(s))) for s in dbt_sources]
        if not sources:
            raise DbtProjectError(f"model {self.select!r} reads no dbt source (`source()`) or seed, so idemtest has no data to generate for it")
        if self.key is _UNSET:
            key = _unique_tested(manifest, model.unique_id) or model.config.unique_key or None
        else:
            key = self.key
        target = Target(f"{model.schema}.{model.alias}", key=key, ignore=self.ignore, created_by_load=True)
        exercise = self.exercise
        spec = Spec(
            sources=sources,
            targets=[target],
            schedule=self.schedule,
            setup=sources_ddl(sources),
            max_lateness=self.max_lateness,
            retries=self.retries,
            retry_delay=self.retry_delay,
            timeout=self.timeout,
            exercise=exercise,
            concurrency="none",
            name=self.name,
        )
        selection = ("+" if self.upstream and parents else "") + self.select
        load = _make_load(project, adapter, selection, strategy, self.vars, self.oracle)
        return Plan(spec, load, selection, strategy, self.oracle)


def _window_vars(window: Window, extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"window_start": window.start.isoformat(sep=" "), "window_end": window.end.isoformat(sep=" ")}
    if callable(extra):
        extra = extra(window)
    out.update(extra or {})
    return out


def _make_load(project: Project, adapter: str, selection: str, strategy: str, extra_vars: Any, oracle: str) -> Callable[[RunContext], Any]:
    def dbt_run(run: RunContext) -> None:
        """One `dbt run` of the selection for the run's window (the reference run: with --full-refresh)."""
        output, database = _run_output(run, adapter)
        full_refresh = oracle == "full-refresh" and run.clean
        args = ["--select", selection, "--single-threaded", "--vars", json.dumps(_window_vars(run.window, extra_vars))]
        if full_refresh:
            args.append("--full-refresh")
        elif strategy == "microbatch":
            # the window is the batch: dbt builds exactly the batches of [start, end)
            args += ["--event-time-start", run.window.start.isoformat(), "--event-time-end", run.window.end.isoformat()]
        result = project.invoke(output, database, project.args("run", "--no-write-json", *args))
        error = getattr(result, "exception", None)
        if error is not None and not isinstance(error, Exception):
            raise error  # idemtest's injected crash (a BaseException): the process died here
        if not result.success:
            raise DbtRunFailed(f"dbt run --select {selection}: {_dbt_message(result)}")

    dbt_run.__qualname__ = f"dbt run --select {selection}"
    return dbt_run




def _resolve_project(project_dir: str | os.PathLike[str], base: Path | None) -> Path:
    path = Path(project_dir)
    candidates = user_paths(path, base)
    for c in candidates:
        if (c / "dbt_project.yml").is_file():
            return c.resolve()
    looked = " and ".join(str(c) for c in candidates)
    raise DbtProjectError(
        f"project_dir={str(project_dir)!r}: no dbt_project.yml in {looked}; "
        "pass the folder that holds your dbt project's dbt_project.yml (relative to the working directory or to the test module)"
    )


def check(
    *,
    project_dir: str | os.PathLike[str],
    select: str,
    schedule: Schedule | None = None,
    max_lateness: timedelta | str | float = timedelta(0),
    sources: Mapping[str, Any] | None = None,
    key: Any = _UNSET,
    ignore: Iterable[str] = (),
    vars: Mapping[str, Any] | Callable[[Window], Mapping[str, Any]] | None = None,
    upstream: bool = True,
    oracle: str = "full-refresh",
    retries: int = 2,
    retry_delay: timedelta | str | float = timedelta(minutes=5),
    timeout: timedelta | str | float = timedelta(seconds=60),
    exercise: Iterable[str] | None = None,
    examples: int | None = None,
) -> Callable[..., None]:
    """A pytest test that checks the incremental model `select` of the dbt project at
    `project_dir`: assign it to a `test_` name in a test module.

    `schedule`: the windows the job runs for (default: 3 hourly windows); each run is
    `dbt run --select +<select>` with `--vars '{window_start, window_end}'`.
    `sources`: per dbt source (`"source_name.table"`), a dict overriding what its YAML
    says (`columns`, `key`, `event_time`, `updates`, `append_only`, `max_rows`, `values`)
    or a whole `idemtest.Source`. `key`: the model's key (default: a column with a
    `unique` test, else `unique_key`; None: no key). `ignore`: model columns left out of
    comparisons. `vars`: more `--vars` (a dict, or a function of the window).
    `upstream=False`: build only the model (its parents are then never built: use it
    for models that read sources only). `oracle`: "full-refresh" (default: compare
    with `dbt run --full-refresh` over all arrived data) or "incremental"."""
    base = caller_dir()
    root = _resolve_project(project_dir, base)
    if not isinstance(select, str) or not select.strip() or any(ch in select for ch in " +,:*@"):
        raise SpecError(f"select={select!r} must name one model of the project, e.g. select='fct_orders' (its parents are built first)")
    if oracle not in ORACLES:
        raise SpecError(f"oracle={oracle!r}; use 'full-refresh' (compare with `dbt run --full-refresh`) or 'incremental'")
    if schedule is not None and not isinstance(schedule, Schedule):
        raise SpecError(f"schedule={schedule!r}; build one with idemtest.hourly(...), daily(...), every(...) or windows([...])")
    chosen = frozenset(ALL_PERTURBATIONS - {"concurrent"} if exercise is None else ([exercise] if isinstance(exercise, str) else exercise))
    if "concurrent" in chosen:
        raise SpecError(
            "exercise= includes 'concurrent': dbt runs one invocation at a time in a process, so a dbt check cannot "
            "interleave two runs; leave it out"
        )
    if sources is not None and not isinstance(sources, Mapping):
        raise SpecError(f"sources={sources!r} must map 'source_name.table' to a dict of overrides or an idemtest.Source")
    definition = DbtCheck(
        project_dir=root,
        select=select,
        schedule=schedule if schedule is not None else hourly("2026-06-01", periods=3),
        max_lateness=max_lateness,
        sources=dict(sources or {}),
        key=key,
        ignore=tuple([ignore] if isinstance(ignore, str) else ignore),
        vars=vars,
        upstream=upstream,
        oracle=oracle,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        exercise=chosen,
        name=f"dbt_{root.name}_{select}",
    )

    def test(idempotency: Any) -> None:
        skip_unless_enabled(idempotency)
        plan = plan_or_skip(lambda: definition.plan(idempotency.dialect))
        try:
            idempotency.check(plan.spec, plan.load, examples=examples or DEFAULT_EXAMPLES, base_dir=root, systematic_max=DEFAULT_SYSTEMATIC_MAX)
        except CheckFailure as failure:
            raise _with_oracle(failure, plan) from None

    return as_user_test(test, name=f"test_dbt_{select}", doc=f"idemtest: dbt model {select!r} of {root}", attr="idemtest_dbt", definition=definition)


def _with_oracle(failure: CheckFailure, plan: Plan) -> CheckFailure:
    """The verdict, saying what the reference run was (the user reads 'clean run' as this)."""
    if plan.oracle == "full-refresh":
        note = (
            f"reference run (the 'clean run' below): `dbt run --select {plan.selection} --full-refresh` over all arrived data; "
            "a difference means the incremental model does not equal a full refresh"
        )
    else:
        note = f"reference run (the 'clean run' below): `dbt run --select {plan.selection}` once per window, in order, all data arrived"
    return with_note(failure, f"dbt: model built by `dbt run --select {plan.selection}` ({plan.strategy} strategy); {note}")


def definition_of(test: Any) -> DbtCheck | None:
    """The dbt check a test was built with (for tools such as bench/dbt_bench.py)."""
    found = getattr(test, "idemtest_dbt", None)
    return found if isinstance(found, DbtCheck) else None
