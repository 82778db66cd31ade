"""Dagster assets as idemtest checks (`idemtest[dagster]`).

    import idemtest
    test_orders = idemtest.dagster.check(assets="pipelines/orders.py", select=["orders_daily"])

Every run of a scenario is one real `dagster.materialize(...)` of the selected
assets for one partition, in this process:

- the windows are the asset's partitions (`DailyPartitionsDefinition`, hourly,
  monthly, any time-window partitions; `StaticPartitionsDefinition` keys as
  categorical windows, one per key); a backfill is a range of partitions run again,
  and partitions run concurrently, as a Dagster backfill launches them;
- retries come from the asset's `RetryPolicy` (else the job's `op_retry_policy`):
  `max_retries` bounds them and `delay` is the simulated time between attempts.
  Dagster's own in-run retry is switched off (`retries: disabled`) because idemtest
  plays the retries itself, on the simulated clock, after crashes as well as errors;
- the user's resources are re-pointed at the sandbox: `DuckDBResource` and the DuckDB
  IO managers (`DuckDBPandasIOManager`, ...) get `database=` the sandbox (whose
  `duckdb.connect` is intercepted), a PostgreSQL resource (a `ConfigurableResource`
  holding a connection string, or host/port/user/password/dbname fields) gets the
  sandbox database (psycopg's connect is intercepted); a resource that holds no
  database is passed unchanged;
- `materialize` runs the asset on the calling thread with the in-process executor,
  so every statement the asset (or its IO manager) sends is a statement boundary of
  the run: crashes land inside the asset, and two runs at once are two threads
  interleaved statement by statement.

Sources (the tables the assets read) come from upstream `AssetSpec`s with a
`dagster/column_schema` (`TableSchema`): columns and types, the key from a column
with `TableColumnConstraints(unique=True)`, the event time from metadata
`partition_expr` (else the one TIMESTAMP column); `sources=` overrides or adds them.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import itertools
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import CheckFailure, ConfigurationError, SpecError
from .._extras import require
from ..review.emit import (
    check_module_source as check_module_source,  # the text `review --emit-checks` writes
)
from ..sandbox.base import user_paths
from ..spec import ALL_PERTURBATIONS, Schedule, Source, Spec, Target, Window, hourly, parse_time
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

#: partitions checked when `partitions=` is not given: the first N of the definition. Two: the
#: whole single-fault pass of a few-statement asset (60-100 scenarios) fits under the cap,
#: so every crash point and pair interleaving is played; a third window costs ~50% more
DEFAULT_PARTITIONS = 2
#: a materialize costs ~0.1 s here (Dagster's run machinery), not milliseconds: a Dagster
#: check plays fewer generated scenarios than a plain one and thins its single-fault pass
DEFAULT_EXAMPLES = 10
DEFAULT_SYSTEMATIC_MAX = 120
#: static (categorical) partitions have no time: each key is given an hourly window from here
CATEGORICAL_START = datetime(2026, 6, 1)
#: Dagster's own step retries off (idemtest plays them); its console log quiet
RUN_CONFIG: dict[str, Any] = {
    "execution": {"config": {"in_process": {"retries": {"disabled": {}}}}},
    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
}
SUPPORTED_PARTITIONS = (
    "DailyPartitionsDefinition, HourlyPartitionsDefinition, WeeklyPartitionsDefinition, MonthlyPartitionsDefinition "
    "(any TimeWindowPartitionsDefinition), StaticPartitionsDefinition, or no partitions (schedule= gives the runs)"
)
SUPPORTED_RESOURCES = (
    "dagster_duckdb.DuckDBResource; the DuckDB IO managers (DuckDBPandasIOManager, DuckDBPolarsIOManager, "
    "DuckDBPySparkIOManager: any dagster_duckdb.DuckDBIOManager); a ConfigurableResource holding a PostgreSQL "
    "connection string (a str field with a postgresql:// URL or 'host=... dbname=...', e.g. conn_string) or "
    "host/port/user/password/dbname (or database) fields; any resource that holds no database (passed unchanged)"
)
#: Dagster integrations whose resources write to a database idemtest cannot sandbox
_FOREIGN_MODULES = ("dagster_snowflake", "dagster_gcp", "dagster_aws", "dagster_databricks", "dagster_deltalake", "dagster_iceberg", "dagster_postgres", "dagster_mysql", "dagster_dbt", "dagster_sling", "dagster_dlt")
_DSN_FIELDS = ("conn_string", "connection_string", "conninfo", "dsn", "url", "uri", "database_url", "db_url", "postgres_url", "pg_dsn", "connection_url")
_PG_PART_FIELDS = {"host": "host", "hostname": "host", "port": "port", "user": "user", "username": "user", "password": "password", "dbname": "dbname", "database": "dbname", "db": "dbname"}
_SOURCE_FIELDS = ("columns", "key", "event_time", "updates", "append_only", "max_rows", "values", "table")
_UNSET: Any = object()


class DagsterDefinitionsError(ConfigurationError):
    """Dagster definitions or assets cannot be checked: not importable, an asset key
    not found, a partitions definition or resource kind idemtest does not support."""


class DagsterRunFailed(Exception):
    """`materialize` reported a failed step (the asset's own failure, Dagster's message)."""


# --- loading the user's definitions ------------------------------------------------------


@dataclass
class Loaded:
    """The user's assets, resources, jobs and schedules, from wherever they were given."""

    assets: list[Any]
    resources: dict[str, Any]
    jobs: list[Any]
    schedules: list[Any]
    where: str
    graph: Any = None


def _import_path(path: str, base: Path | None) -> Any:
    """A module from a dotted name or a .py file (relative: cwd, then the test module's folder)."""
    if path.endswith(".py") or os.sep in path or "/" in path:
        p = Path(path)
        candidates = user_paths(p, base)
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            looked = " and ".join(str(c) for c in candidates)
            raise DagsterDefinitionsError(f"assets={path!r}: no such file ({looked}); pass the .py file that defines your assets or Definitions, or a module name")
        name = f"idemtest_dagster_defs_{abs(hash(str(found.resolve())))}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, found)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(found.parent))  # its sibling imports work as under `dagster dev -f`
        try:
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(name, None)
            raise DagsterDefinitionsError(f"assets={path!r} cannot be imported: {type(e).__name__}: {e}; fix it until `dagster definitions validate -f {path}` succeeds") from None
        finally:
            if sys.path and sys.path[0] == str(found.parent):
                sys.path.pop(0)
        return module
    try:
        return importlib.import_module(path)
    except Exception as e:
        raise DagsterDefinitionsError(f"assets={path!r} cannot be imported: {type(e).__name__}: {e}; fix it until `python -c 'import {path}'` succeeds") from None


def _load(assets: Any, resources: Mapping[str, Any] | None, base: Path | None) -> Loaded:
    dg = require("dagster", "dagster")
    where = repr(assets) if not isinstance(assets, str) else assets
    if isinstance(assets, str):
        module = _import_path(assets, base)
        defs = [v for v in vars(module).values() if isinstance(v, dg.Definitions)]
        if len(defs) > 1:
            raise DagsterDefinitionsError(f"assets={assets!r} defines {len(defs)} Definitions objects; pass the one to check (assets=module.defs)")
        if defs:
            assets = defs[0]
        else:
            found = list(dg.load_assets_from_modules([module]))
            if not found:
                raise DagsterDefinitionsError(f"assets={where!r} defines no Dagster asset and no Definitions")
            assets = found
    if isinstance(assets, dg.Definitions):
        loaded = Loaded(list(assets.assets or []), dict(assets.resources or {}), list(assets.jobs or []), list(assets.schedules or []), where)
        if resources:
            loaded.resources.update(resources)
        return loaded
    if isinstance(assets, (dg.AssetsDefinition, dg.AssetSpec, dg.SourceAsset)):
        assets = [assets]
    if not isinstance(assets, Iterable) or isinstance(assets, (str, bytes, Mapping)):
        raise DagsterDefinitionsError(f"assets={assets!r}: pass a module path ('pipelines/orders.py' or 'pipelines.orders'), a dagster.Definitions, or a list of assets")
    items = list(assets)
    bad = [a for a in items if not isinstance(a, (dg.AssetsDefinition, dg.AssetSpec, dg.SourceAsset))]
    if bad:
        raise DagsterDefinitionsError(f"assets= holds {bad[0]!r}, which is not a Dagster asset (an @asset function, AssetsDefinition, AssetSpec or SourceAsset)")
    return Loaded(items, dict(resources or {}), [], [], where)


def _graph(loaded: Loaded) -> Any:
    dg = require("dagster", "dagster")
    if loaded.graph is None:
        try:
            loaded.graph = dg.Definitions(assets=loaded.assets, resources=loaded.resources, jobs=loaded.jobs, schedules=loaded.schedules).resolve_asset_graph()
        except Exception as e:
            text = " ".join(str(e).split())
            missing = re.search(r"resource with key '([^']+)' required by op '([^']+)' was not provided", text)
            if missing:
                name, op = missing.groups()
                raise DagsterDefinitionsError(
                    f"asset {op!r} needs resource {name!r}, which {loaded.where} does not provide; "
                    f"pass it: idemtest.dagster.check(..., resources={{{name!r}: DuckDBResource(database='warehouse.duckdb')}})"
                ) from None
            raise DagsterDefinitionsError(f"the Dagster definitions in {loaded.where} do not resolve: {type(e).__name__}: {text[:400]}") from None
    return loaded.graph


def _find_assets(loaded: Loaded, select: Sequence[str]) -> list[Any]:
    dg = require("dagster", "dagster")
    graph = _graph(loaded)
    known = {k.to_user_string(): k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    nodes = []
    for name in select:
        key = known.get(name) or known.get(name.replace(".", "/"))
        if key is None:
            close = difflib.get_close_matches(name, list(known), n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise DagsterDefinitionsError(f"select={name!r}: {loaded.where} has no materializable asset with that key{hint}; its assets are {sorted(known)}")
        nodes.append(graph.get(dg.AssetKey(key.path)))
    return nodes


# --- windows from partitions ---------------------------------------------------------------


@dataclass(frozen=True)
class Partitions:
    """The windows of a check and the Dagster partition key of each (None: unpartitioned)."""

    schedule: Schedule
    keys: tuple[str | None, ...]
    kind: str  # "time" | "static" | "none"
    definition: Any = None

    def key_for(self, window: Window) -> str | None:
        return self.keys[window.index] if window.index < len(self.keys) else None


def _naive_utc(t: datetime) -> datetime:
    return parse_time(t)


def _partitions(nodes: list[Any], partitions: Any, schedule: Schedule | None, run_delay: Any) -> Partitions:
    dg = require("dagster", "dagster")
    defs = {id(n.partitions_def): n.partitions_def for n in nodes}
    if len(defs) > 1:
        names = ", ".join(f"{n.key.to_user_string()}: {n.partitions_def}" for n in nodes)
        raise DagsterDefinitionsError(f"the selected assets have different partitions ({names}); Dagster materializes one partition key for all of them: select assets that share a partitions definition")
    pd = next(iter(defs.values()))
    if pd is None:
        if partitions is not None:
            raise SpecError(f"partitions={partitions!r}, but {nodes[0].key.to_user_string()!r} has no partitions definition; give schedule= (the runs of the unpartitioned asset) instead")
        sched = schedule if schedule is not None else hourly("2026-06-01", periods=DEFAULT_PARTITIONS)
        return Partitions(sched, tuple(None for _ in sched.windows), "none")
    if schedule is not None:
        raise SpecError(f"schedule= given, but the windows of {nodes[0].key.to_user_string()!r} are its partitions ({pd}); choose them with partitions= (a count, or a list of keys)")
    if isinstance(pd, dg.TimeWindowPartitionsDefinition):
        keys = _time_keys(pd, partitions)
        wins = []
        for i, k in enumerate(keys):
            tw = pd.time_window_for_partition_key(k)
            wins.append(Window(i, _naive_utc(tw.start), _naive_utc(tw.end)))
        spans = {w.end - w.start for w in wins}
        cadence = spans.pop() if len(spans) == 1 and all(a.end == b.start for a, b in itertools.pairwise(wins)) and (wins[0].end - wins[0].start) < timedelta(days=28) else None
        sched = Schedule(tuple(wins), cadence, _delay(run_delay))
        return Partitions(sched, tuple(keys), "time", pd)
    if isinstance(pd, dg.StaticPartitionsDefinition):
        all_keys = list(pd.get_partition_keys())
        if partitions is None:
            keys = all_keys[:DEFAULT_PARTITIONS] if len(all_keys) > DEFAULT_PARTITIONS else all_keys
        elif isinstance(partitions, int) and not isinstance(partitions, bool):
            keys = all_keys[: max(1, partitions)]
        else:
            keys = _given_keys(partitions)
            unknown = [k for k in keys if k not in all_keys]
            if unknown:
                raise SpecError(f"partitions={partitions!r}: {unknown} are not keys of {pd}; its keys are {all_keys[:20]}")
        hours = tuple(Window(i, CATEGORICAL_START + i * timedelta(hours=1), CATEGORICAL_START + (i + 1) * timedelta(hours=1)) for i in range(len(keys)))
        return Partitions(Schedule(hours, timedelta(hours=1), _delay(run_delay)), tuple(keys), "static", pd)
    raise DagsterDefinitionsError(
        f"{nodes[0].key.to_user_string()!r} is partitioned by {type(pd).__name__} ({pd}), which idemtest cannot turn into windows yet; "
        f"supported: {SUPPORTED_PARTITIONS}"
    )


def _delay(run_delay: Any) -> timedelta:
    from ..spec import parse_duration

    return parse_duration(run_delay, "run_delay") if run_delay is not None else timedelta(0)


def _given_keys(partitions: Any) -> list[str]:
    dg = require("dagster", "dagster")
    if isinstance(partitions, str):
        return [partitions]
    if isinstance(partitions, dg.PartitionKeyRange):
        return [partitions.start, partitions.end]
    if isinstance(partitions, Iterable) and all(isinstance(k, str) for k in partitions):
        return list(partitions)
    raise SpecError(f"partitions={partitions!r}: give a number of partitions (the first N), a list of partition keys, or dagster.PartitionKeyRange(start, end)")


def _next_key(pd: Any, key: str) -> str | None:
    """The partition after `key`, whatever today's date (Dagster's own call stops at
    the last complete partition as of now); None past the definition's end_date."""
    end = pd.time_window_for_partition_key(key).end
    if pd.end is not None and end >= pd.end:
        return None
    return str(pd.get_partition_key_for_timestamp(end.timestamp()))


def _time_keys(pd: Any, partitions: Any) -> list[str]:
    dg = require("dagster", "dagster")

    def valid(k: str) -> str:
        try:
            tw = pd.time_window_for_partition_key(k)
        except Exception:
            first = pd.get_first_partition_key()
            raise SpecError(f"partitions: {k!r} is not a partition key of {pd}; keys look like {first!r}") from None
        if pd.get_partition_key_for_timestamp(tw.start.timestamp()) != k:
            raise SpecError(f"partitions: {k!r} is not a partition key of {pd}")
        return k

    def following(first: str, n: int) -> list[str]:
        out = [first]
        while len(out) < n:
            nxt = _next_key(pd, out[-1])
            if nxt is None:
                break
            out.append(nxt)
        return out

    if partitions is None or (isinstance(partitions, int) and not isinstance(partitions, bool)):
        n = DEFAULT_PARTITIONS if partitions is None else int(partitions)
        if n < 1:
            raise SpecError(f"partitions={partitions!r}: check at least 1 partition")
        first = pd.get_first_partition_key()
        if first is None:
            raise DagsterDefinitionsError(f"{pd} has no complete partition yet (it starts in the future); give the keys: partitions=[...]")
        return following(first, n)
    if isinstance(partitions, dg.PartitionKeyRange):
        start, end = valid(partitions.start), valid(partitions.end)
        keys = [start]
        while keys[-1] != end:
            nxt = _next_key(pd, keys[-1])
            if nxt is None or len(keys) > 500:
                raise SpecError(f"partitions=PartitionKeyRange({start!r}, {end!r}): {end!r} does not follow {start!r}")
            keys.append(nxt)
        return keys
    keys = [valid(k) for k in _given_keys(partitions)]
    if sorted(keys, key=lambda k: pd.time_window_for_partition_key(k).start) != keys:
        raise SpecError(f"partitions={keys!r}: list the partition keys in time order")
    return keys


def _tail_keys(parts: Partitions, windows: tuple[Window, ...]) -> tuple[str | None, ...]:
    """Partition keys for the tail windows a max_lateness adds (late rows land after the
    last declared partition: the next partitions pick them up)."""
    keys = list(parts.keys)
    if len(windows) <= len(keys):
        return tuple(keys)
    if parts.kind == "none":
        return tuple(keys + [None] * (len(windows) - len(keys)))
    if parts.kind == "static":
        raise SpecError(
            "max_lateness > 0 on a static partitions definition: static keys have no later partition to pick late rows up; "
            "leave max_lateness at 0 (rows are all there when the partition runs)"
        )
    pd = parts.definition
    for w in windows[len(keys):]:
        nxt = _next_key(pd, str(keys[-1]))
        if nxt is None:
            raise SpecError(
                f"max_lateness needs the partitions after {keys[-1]!r} to pick late rows up, and {pd} ends there; "
                "check earlier partitions (partitions=[...]) or lower max_lateness"
            )
        tw = pd.time_window_for_partition_key(nxt)
        if (_naive_utc(tw.start), _naive_utc(tw.end)) != (w.start, w.end):
            raise SpecError(f"the tail window {w} does not match Dagster's next partition {nxt!r} ({tw.start} .. {tw.end}); lower max_lateness")
        keys.append(nxt)
    return tuple(keys)


# --- retries and concurrency -------------------------------------------------------------------


def _retry_policy(loaded: Loaded, nodes: list[Any], job: str | None) -> tuple[Any, str]:
    """The RetryPolicy Dagster applies to the selected assets' steps, and where it is declared:
    the asset's own wins over its job's `op_retry_policy` (as in Dagster)."""
    graph = _graph(loaded)
    for n in nodes:
        policy = getattr(n.assets_def.op, "retry_policy", None) if n.assets_def.is_executable else None
        if policy is not None:
            return policy, f"RetryPolicy of asset {n.key.to_user_string()!r}"
    keys = {n.key for n in nodes}
    jobs = []
    for j in loaded.jobs:
        try:
            selected = j.selection.resolve(graph) if hasattr(j, "selection") else set()
        except Exception:
            continue
        if keys <= set(selected):
            jobs.append(j)
    if job is not None:
        named = [j for j in loaded.jobs if getattr(j, "name", None) == job]
        if not named:
            raise DagsterDefinitionsError(f"job={job!r}: no such job in {loaded.where}; its jobs are {sorted(getattr(j, 'name', '?') for j in loaded.jobs)}")
        jobs = named
    policies = {getattr(j, "name", "?"): getattr(j, "op_retry_policy", None) for j in jobs}
    distinct = {repr(p) for p in policies.values()}
    if len(distinct) > 1:
        raise DagsterDefinitionsError(f"the selected assets are in jobs with different op_retry_policy ({policies}); name the job that runs them: job='...'")
    for name, p in policies.items():
        if p is not None:
            return p, f"op_retry_policy of job {name!r}"
    return None, "no RetryPolicy (Dagster does not retry a failed step)"


def _retries(policy: Any) -> tuple[int, timedelta]:
    if policy is None:
        return 0, timedelta(0)
    delay = policy.delay
    return min(int(policy.max_retries), 10), timedelta(seconds=float(delay)) if delay else timedelta(0)


# --- resources re-pointed at the sandbox ------------------------------------------------------


def _fields(res: Any) -> dict[str, Any]:
    """A Pythonic resource's field values keyed by their init names (aliases: `schema`)."""
    out = {}
    for name, f in type(res).model_fields.items():
        out[getattr(f, "alias", None) or name] = getattr(res, name)
    return out


def _value(v: Any) -> Any:
    dg = require("dagster", "dagster")
    if isinstance(v, dg.EnvVar):
        return os.environ.get(v.env_var_name)
    return v


def _looks_pg(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    t = text.strip().lower()
    return t.startswith(("postgresql://", "postgres://", "postgresql+")) or ("dbname=" in t and "=" in t)


@dataclass(frozen=True)
class Repoint:
    """How one resource is pointed at the sandbox: kind 'duckdb', 'postgres' or 'keep'."""

    kind: str
    dsn_field: str | None = None
    part_fields: tuple[tuple[str, str], ...] = ()


def _classify(name: str, res: Any) -> Repoint:
    dg = require("dagster", "dagster")
    module = type(res).__module__.split(".")[0]
    duck: tuple[type, ...] = ()
    try:
        from dagster_duckdb import DuckDBIOManager, DuckDBResource

        duck = (DuckDBResource, DuckDBIOManager)
    except ImportError:  # dagster-duckdb is part of idemtest[dagster]; a user resource still classifies
        pass
    if duck and isinstance(res, duck):
        return Repoint("duckdb")
    if module in _FOREIGN_MODULES:
        raise DagsterDefinitionsError(f"resource {name!r} is a {type(res).__module__}.{type(res).__name__}, which writes to a database idemtest cannot sandbox; supported resources: {SUPPORTED_RESOURCES}")
    if isinstance(res, (dg.ConfigurableResource, dg.ConfigurableIOManagerFactory)) or hasattr(type(res), "model_fields"):
        fields = _fields(res)
        for f, v in fields.items():
            # a connection-string field given as an EnvVar unset here (CI has no warehouse) still names one
            if f.lower() in _DSN_FIELDS and (_looks_pg(_value(v)) or (isinstance(v, dg.EnvVar) and _value(v) is None)):
                return Repoint("postgres", dsn_field=f)
        for f, v in fields.items():
            if _looks_pg(_value(v)):
                return Repoint("postgres", dsn_field=f)
        parts = tuple((f, _PG_PART_FIELDS[f.lower()]) for f in fields if f.lower() in _PG_PART_FIELDS)
        if any(p == "dbname" for _, p in parts) and any(p == "host" for _, p in parts):
            return Repoint("postgres", part_fields=parts)
        for f, v in fields.items():
            val = _value(v)
            if f.lower() in ("database", "path", "db_path", "database_path") and isinstance(val, str) and val.endswith((".duckdb", ".db", ":memory:")):
                raise DagsterDefinitionsError(
                    f"resource {name!r} ({type(res).__name__}) holds a DuckDB database in field {f!r} but is not a dagster_duckdb.DuckDBResource; "
                    f"idemtest cannot tell how it connects. Supported resources: {SUPPORTED_RESOURCES}"
                )
        if isinstance(res, (dg.ConfigurableIOManagerFactory, dg.IOManager)):
            raise DagsterDefinitionsError(f"IO manager {name!r} ({type(res).__name__}) is not one idemtest can point at the sandbox; supported resources: {SUPPORTED_RESOURCES}")
        return Repoint("keep")
    if isinstance(res, (dg.IOManagerDefinition, dg.ResourceDefinition)) and name != "io_manager":
        raise DagsterDefinitionsError(
            f"resource {name!r} is a function-style {type(res).__name__}, whose configuration idemtest cannot rewrite; "
            f"declare it as a Pythonic resource (a ConfigurableResource subclass). Supported resources: {SUPPORTED_RESOURCES}"
        )
    return Repoint("keep")


def _required_resources(loaded: Loaded, nodes: list[Any]) -> dict[str, Repoint]:
    """The resources the selected assets use, each classified; a missing one names the fix."""
    needed: set[str] = set()
    for n in nodes:
        needed |= set(n.assets_def.required_resource_keys)
    out: dict[str, Repoint] = {}
    for name in sorted(needed):
        if name not in loaded.resources:
            if name == "io_manager":
                continue  # Dagster's default (files in its own temp storage): outputs typed None never reach it
            raise DagsterDefinitionsError(
                f"asset {nodes[0].key.to_user_string()!r} needs resource {name!r}, which {loaded.where} does not provide; "
                f"pass it: idemtest.dagster.check(..., resources={{{name!r}: DuckDBResource(database='warehouse.duckdb')}})"
            )
        out[name] = _classify(name, loaded.resources[name])
    return out


def _with(res: Any, **updates: Any) -> Any:
    return type(res)(**{**_fields(res), **updates})


def _repointed(loaded: Loaded, plan: dict[str, Repoint], run: RunContext) -> dict[str, Any]:
    out = dict(loaded.resources)
    for name, how in plan.items():
        res = loaded.resources[name]
        if how.kind == "duckdb":
            out[name] = _with(res, database=str(run.path))
        elif how.kind == "postgres":
            if how.dsn_field is not None:
                out[name] = _with(res, **{how.dsn_field: str(run.dsn)})
            else:
                from ..sandbox.postgres.dsn import parse_dsn

                p = parse_dsn(str(run.dsn))
                values = {"host": p.get("host") or "127.0.0.1", "port": int(p.get("port") or 5432), "user": p.get("user") or "postgres", "password": p.get("password") or "", "dbname": p["dbname"]}
                updates = {}
                for f, part in how.part_fields:
                    v = values[part]
                    ann = type(res).model_fields.get(f)
                    if part == "port" and ann is not None and ann.annotation is str:
                        v = str(v)
                    updates[f] = v
                out[name] = _with(res, **updates)
    return out


# --- sources and targets ---------------------------------------------------------------------


def _table_of(node: Any, default_schema: str | None = None) -> str:
    meta = node.metadata or {}
    name = meta.get("dagster/table_name")
    if name is not None:
        text = str(getattr(name, "value", name))
        return ".".join(text.split(".")[-2:])
    path = list(node.key.path)
    if len(path) >= 2:
        return f"{path[-2]}.{path[-1]}"
    return f"{default_schema}.{path[0]}" if default_schema else path[0]


def _column_schema(node: Any) -> Any:
    meta = node.metadata or {}
    schema = meta.get("dagster/column_schema")
    return getattr(schema, "schema", schema)


def _source_for(node: Any, given: Any) -> Source:
    label = node.key.to_user_string()
    schema = _column_schema(node)
    if isinstance(given, Source):
        return given
    overrides = dict(given or {})
    unknown = set(overrides) - set(_SOURCE_FIELDS)
    if unknown:
        raise SpecError(f"sources[{label!r}] names {sorted(unknown)}; declare only {list(_SOURCE_FIELDS)} (or pass an idemtest.Source)")
    table = overrides.pop("table", None) or _table_of(node)
    cols = overrides.pop("columns", None) or ({c.name: c.type for c in schema.columns} if schema is not None else {})
    if not cols:
        raise SpecError(
            f"upstream asset {label!r} declares no column schema; add metadata={{'dagster/column_schema': dg.TableSchema(columns=[dg.TableColumn('id', 'BIGINT'), ...])}} "
            f"to its AssetSpec, or declare it in the check: sources={{{label!r}: {{'columns': {{'id': 'BIGINT', 'updated_at': 'TIMESTAMP'}}, 'key': 'id', 'event_time': 'updated_at'}}}}"
        )
    key = overrides.pop("key", _UNSET)
    if key is _UNSET:
        key = [c.name for c in schema.columns if c.constraints.unique] if schema is not None else []
        if not key:
            raise SpecError(
                f"upstream asset {label!r} has no key: mark its key column TableColumn(..., constraints=dg.TableColumnConstraints(unique=True)), "
                f"or declare it: sources={{{label!r}: {{'key': 'order_id'}}}} (key=None for a keyless table)"
            )
        key = key[0] if len(key) == 1 else key
    event_time = overrides.pop("event_time", None)
    if event_time is None:
        expr = (node.metadata or {}).get("partition_expr")
        stamps = [c for c, t in cols.items() if str(t).upper().startswith(("TIMESTAMP", "DATE", "DATETIME"))]
        if isinstance(expr, str) and expr in cols:
            event_time = expr
        elif len(stamps) == 1:
            event_time = stamps[0]
        else:
            raise SpecError(
                f"upstream asset {label!r}: idemtest cannot tell its event time ({'columns ' + str(stamps) if stamps else 'no TIMESTAMP column'}); "
                f"add metadata={{'partition_expr': 'updated_at'}} to its AssetSpec, or declare it: sources={{{label!r}: {{'event_time': 'updated_at'}}}}"
            )
    return Source(table, columns=cols, key=key, event_time=event_time, **overrides)


def _sources(loaded: Loaded, nodes: list[Any], given: Mapping[str, Any]) -> list[Source]:
    graph = _graph(loaded)
    selected = {n.key for n in nodes}
    upstream: dict[str, Any] = {}
    for n in nodes:
        for k in n.parent_keys:
            if k not in selected:
                upstream[k.to_user_string()] = graph.get(k)
    for label in given:
        if label not in upstream:
            if isinstance(given[label], Source):
                continue  # a table the asset reads without declaring it as a dep
            raise SpecError(f"sources= names {label!r}, which the selected assets do not depend on; their upstream assets are {sorted(upstream) or 'none'} (pass an idemtest.Source for a table read without a dep)")
    out = [_source_for(node, given.get(label)) for label, node in sorted(upstream.items())]
    out += [s for label, s in given.items() if label not in upstream and isinstance(s, Source)]
    if not out:
        raise SpecError(
            f"{[n.key.to_user_string() for n in nodes]} read no upstream asset, so idemtest has no source data to generate; declare the tables they read: "
            "sources={'raw.orders': idemtest.Source('raw.orders', columns={...}, key='order_id', event_time='updated_at')} "
            "(or add deps=[AssetSpec(['raw', 'orders'], metadata={'dagster/column_schema': ...})] to the asset)"
        )
    return out


def _targets(nodes: list[Any], loaded: Loaded, key: Any, ignore: tuple[str, ...], targets: Any) -> list[Target]:
    if targets is not None:
        items = [targets] if isinstance(targets, Target) else list(targets)
        if not all(isinstance(t, Target) for t in items):
            raise SpecError(f"targets={targets!r} must be a list of idemtest.Target")
        return items
    out = []
    for n in nodes:
        schema = _column_schema(n)
        k = key
        if k is _UNSET:
            uniq = [c.name for c in schema.columns if c.constraints.unique] if schema is not None else []
            k = (uniq[0] if len(uniq) == 1 else uniq) or None
        try:  # where a returned DataFrame lands
            io = loaded.resources.get(n.assets_def.get_io_manager_key_for_asset_key(n.key))
        except Exception:
            io = None
        default_schema = None
        try:
            from dagster_duckdb import DuckDBIOManager

            if isinstance(io, DuckDBIOManager):
                default_schema = _fields(io).get("schema") or "public"
        except ImportError:
            pass
        out.append(Target(_table_of(n, default_schema), key=k, ignore=ignore, created_by_load=True))
    return out




# --- the runs ---------------------------------------------------------------------------------


class _Instances:
    """Ephemeral Dagster instances, reused: creating one costs ~60 ms (an in-memory
    SQLite storage and its migrations); a run takes one for itself (two runs at once
    take two), and one a crash abandoned mid-run is dropped."""

    def __init__(self) -> None:
        self._free: list[Any] = []
        self._lock = threading.Lock()

    def take(self) -> Any:
        with self._lock:
            if self._free:
                return self._free.pop()
        return require("dagster", "dagster").DagsterInstance.ephemeral()

    def give(self, instance: Any) -> None:
        with self._lock:
            if len(self._free) < 4:
                self._free.append(instance)


_instances = _Instances()


@dataclass
class Counters:
    """Materializations made and the seconds spent inside them (bench/dagster_bench.py)."""

    runs: int = 0
    seconds: float = 0.0


def _failure_message(result: Any) -> str:
    lines = []
    for e in result.all_events:
        if e.is_step_failure:
            err = e.step_failure_data.error
            while err is not None and err.cause is not None and "Exceeded max_retries" in err.message:
                err = err.cause
            msg = " ".join(str(err.message if err is not None else "").split())
            if err is not None and err.cause is not None:
                msg += " — caused by " + " ".join(str(err.cause.message).split())
            lines.append(f"{e.step_key}: {msg[:600]}")
    return "; ".join(lines) or "the run failed without a step failure"


def _make_load(loaded: Loaded, nodes: list[Any], parts: Partitions, plan: dict[str, Repoint], counters: Counters) -> Callable[[RunContext], Any]:
    dg = require("dagster", "dagster")
    selection = [n.key for n in nodes]
    label = ", ".join(k.to_user_string() for k in selection)

    # what materialize accepts (a Definitions may also hold asset checks and the like)
    assets = [a for a in loaded.assets if isinstance(a, (dg.AssetsDefinition, dg.AssetSpec, dg.SourceAsset))]

    def dagster_materialize(run: RunContext) -> None:
        """One `dagster.materialize` of the selected assets for the run's partition."""
        resources = _repointed(loaded, plan, run)
        key = parts.key_for(run.window)
        instance = _instances.take()
        t0 = time.perf_counter()
        ok = False
        try:
            result = dg.materialize(
                assets, selection=selection, partition_key=key, resources=resources,
                run_config=RUN_CONFIG, instance=instance, raise_on_error=False, tags={"idemtest/run": run.label},
            )
            ok = True
        finally:
            counters.runs += 1
            counters.seconds += time.perf_counter() - t0
            if ok:
                _instances.give(instance)
        if not result.success:
            raise DagsterRunFailed(f"materialize {label}" + (f" partition {key!r}" if key else "") + f": {_failure_message(result)}")

    dagster_materialize.__qualname__ = f"dagster materialize {label}"
    return dagster_materialize


# --- the check ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    spec: Spec
    load: Callable[[RunContext], Any]
    partitions: Partitions
    retry_source: str
    resources: dict[str, Repoint]
    counters: Counters


@dataclass(frozen=True)
class DagsterCheck:
    """A declared Dagster check; `plan(dialect)` loads the definitions and builds it."""

    assets: Any
    select: tuple[str, ...]
    resources: Mapping[str, Any] | None
    partitions: Any
    schedule: Schedule | None
    run_delay: Any
    max_lateness: timedelta | str | float
    sources: Mapping[str, Any]
    targets: Any
    key: Any
    ignore: tuple[str, ...]
    setup: Any
    job: str | None
    concurrency: str | None
    timeout: timedelta | str | float
    exercise: frozenset[str] | None
    base: Path | None
    name: str

    def plan(self, dialect: str | None = None) -> Plan:
        require("dagster", "dagster")
        loaded = _load(self.assets, self.resources, self.base)
        nodes = _find_assets(loaded, self.select)
        parts = _partitions(nodes, self.partitions, self.schedule, self.run_delay)
        repoint = _required_resources(loaded, nodes)
        kinds = {r.kind for r in repoint.values()} - {"keep"}
        if len(kinds) > 1:
            raise DagsterDefinitionsError(f"the selected assets use both a DuckDB and a PostgreSQL resource ({ {n: r.kind for n, r in repoint.items()} }); a check has one sandbox: check them separately")
        if not kinds:
            raise DagsterDefinitionsError(
                f"the selected assets {list(self.select)} use no database resource idemtest can point at the sandbox "
                f"(they use {sorted(repoint) or 'no resource'}); supported resources: {SUPPORTED_RESOURCES}"
            )
        db_dialect = kinds.pop()
        policy, retry_source = _retry_policy(loaded, nodes, self.job)
        retries, retry_delay = _retries(policy)
        sources = _sources(loaded, nodes, self.sources)
        targets = _targets(nodes, loaded, self.key, self.ignore, self.targets)
        setup = sources_ddl(sources)
        if self.setup is not None:
            if not isinstance(self.setup, str) or " " not in self.setup.strip():
                raise SpecError(f"setup={self.setup!r}: give SQL text (the DDL of the tables your assets write, run after the sources' DDL)")
            setup = setup + self.setup
        concurrency = self.concurrency or ("partitions" if parts.kind != "none" else "none")
        exercise = self.exercise if self.exercise is not None else ALL_PERTURBATIONS
        if concurrency == "none":
            exercise = exercise - {"concurrent"}
        spec = Spec(
            sources=sources, targets=targets, schedule=parts.schedule, setup=setup, max_lateness=self.max_lateness,
            retries=retries, retry_delay=retry_delay, timeout=self.timeout, exercise=exercise, concurrency=concurrency,  # type: ignore[arg-type]
            dialect=db_dialect, name=self.name,
        )
        parts = replace(parts, keys=_tail_keys(parts, spec.all_windows))
        counters = Counters()
        load = _make_load(loaded, nodes, parts, repoint, counters)
        return Plan(spec, load, parts, retry_source, repoint, counters)




def check(
    *,
    assets: Any,
    select: str | Sequence[str],
    resources: Mapping[str, Any] | None = None,
    partitions: Any = None,
    schedule: Schedule | None = None,
    run_delay: timedelta | str | float | None = None,
    max_lateness: timedelta | str | float = timedelta(0),
    sources: Mapping[str, Any] | None = None,
    targets: Any = None,
    key: Any = _UNSET,
    ignore: Iterable[str] = (),
    setup: str | None = None,
    job: str | None = None,
    concurrency: str | None = None,
    timeout: timedelta | str | float = timedelta(seconds=60),
    exercise: Iterable[str] | None = None,
    examples: int | None = None,
    systematic_max: int | None = DEFAULT_SYSTEMATIC_MAX,
) -> Callable[..., None]:
    """A pytest test that checks the Dagster assets `select` (asset keys, 'prefix/name')
    of `assets` (a module path or .py file, a `dagster.Definitions`, or a list of assets):
    assign it to a `test_` name in a test module.

    `partitions`: which partitions are the windows (default: the first 2; a number, a list
    of keys, or `dagster.PartitionKeyRange`). `schedule`: the runs of an unpartitioned asset
    (default: 2 hourly runs). `resources`: resources the definitions do not bind (or
    replacements). `sources`: per upstream asset key, overrides of what its column schema
    says (`columns`, `key`, `event_time`, `table`, ...) or an `idemtest.Source`. `key` /
    `ignore`: the target table's key (default: a unique column of its column schema) and
    columns left out. `setup`: DDL of tables the assets write but do not create. `job`: the
    job whose `op_retry_policy` applies, when several select the assets. `concurrency`:
    "partitions" (default for partitioned assets: a backfill runs partitions at once),
    "same-partition", or "none" (e.g. a pool limited to 1)."""
    base = caller_dir()
    if isinstance(select, str):
        select = [select]
    select = tuple(select) if isinstance(select, Iterable) else ()
    if not select or not all(isinstance(s, str) and s.strip() for s in select):
        raise SpecError(f"select={select!r} must name the asset keys to check, e.g. select=['orders_daily'] (a key with a prefix: 'analytics/orders_daily')")
    if concurrency not in (None, "none", "partitions", "same-partition"):
        raise SpecError(f"concurrency={concurrency!r}; use 'partitions', 'same-partition' or 'none'")
    if schedule is not None and not isinstance(schedule, Schedule):
        raise SpecError(f"schedule={schedule!r}; build one with idemtest.hourly(...), daily(...), every(...) or windows([...])")
    if sources is not None and not isinstance(sources, Mapping):
        raise SpecError(f"sources={sources!r} must map upstream asset keys ('raw/orders') to a dict of overrides or an idemtest.Source")
    chosen = None if exercise is None else frozenset([exercise] if isinstance(exercise, str) else exercise)
    definition = DagsterCheck(
        assets=assets, select=select, resources=resources, partitions=partitions, schedule=schedule, run_delay=run_delay,
        max_lateness=max_lateness, sources=dict(sources or {}), targets=targets, key=key,
        ignore=tuple([ignore] if isinstance(ignore, str) else ignore), setup=setup, job=job, concurrency=concurrency,
        timeout=timeout, exercise=chosen, base=base, name="dagster_" + "_".join(s.replace("/", "_") for s in select),
    )

    def test(idempotency: Any) -> None:
        skip_unless_enabled(idempotency)
        plan = plan_or_skip(lambda: definition.plan(idempotency.dialect))
        try:
            idempotency.check(plan.spec, plan.load, examples=examples or DEFAULT_EXAMPLES, base_dir=base, systematic_max=systematic_max)
        except CheckFailure as failure:
            raise _with_note(failure, plan) from None

    return as_user_test(
        test,
        name="test_dagster_" + "_".join(s.replace("/", "_") for s in select),
        doc=f"idemtest: Dagster assets {list(select)} of {assets if isinstance(assets, str) else type(assets).__name__}",
        attr="idemtest_dagster",
        definition=definition,
    )


def _with_note(failure: CheckFailure, plan: Plan) -> CheckFailure:
    p = plan.partitions
    what = {"time": "its time partitions", "static": "its static partition keys (one window each)", "none": "its scheduled runs (unpartitioned)"}[p.kind]
    keys = [k for k in p.keys if k is not None]
    return with_note(
        failure,
        f"Dagster: each run is `dagster.materialize(..., partition_key=...)` in process; windows are {what}"
        + (f" {keys}" if keys else "")
        + f"; retries: {plan.spec.retries} ({plan.retry_source}), {plan.spec.retry_delay} apart",
    )


def definition_of(test: Any) -> DagsterCheck | None:
    """The Dagster check a test was built with (for tools such as bench/dagster_bench.py)."""
    found = getattr(test, "idemtest_dagster", None)
    return found if isinstance(found, DagsterCheck) else None
