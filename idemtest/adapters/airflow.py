"""Airflow DAGs as idemtest checks (`idemtest[airflow]`).

    import idemtest
    test_tutorial = idemtest.airflow.check(dag="dags/tutorial.py", tasks=["merge_data"], sources=[...], targets=[...], setup="schema.sql")

Every run of a scenario is one DAG run of the user's own DAG for one data interval,
executed in this process without a scheduler or a metadata database:

- windows are the DAG's data intervals, read from its timetable (`schedule`) from
  `start_date` on; retries and retry delay come from the tasks (`default_args`, with
  Airflow's defaults where unset); `max_active_runs`, `catchup` and `depends_on_past`
  decide which perturbations exist (no concurrent runs where `max_active_runs=1` or
  `depends_on_past`, no out-of-order catch-up where `catchup=False`), so a scenario is
  one Airflow can produce;
- the tasks (the `tasks=` ones and everything upstream of them) run in dependency
  order: a copy of each operator (`prepare_for_execution`) gets its templated fields
  rendered by Airflow's own Jinja (`render_template_fields`) from a context built from
  the window (`logical_date`, `data_interval_start/end`, `ds`, `ts`, `params`, ...),
  then `execute(context)`; return values are XComs that later tasks pull;
- every `conn_id` the DAG names is an `AIRFLOW_CONN_<ID>` variable pointing at the
  sandbox database (set for the run, restored after), so hooks connect through
  psycopg2's `connect`, which idemtest intercepts: crashes land between the hooks' own
  statements;
- the DAG run's task states and XComs, and Airflow Variables, are kept in the sandbox
  (idemtest's state table), written through the run's connection as Airflow writes its
  metadata database: a retry after a crash re-runs the task that crashed and the ones
  after it, with the XComs of those that succeeded; a second run of a window (a
  duplicate or a backfill) is a "clear" of the checked tasks and their downstream.

PostgreSQL is the backend (`--idem-db postgresql://...`): the checks skip, naming the
option, on the default DuckDB sandbox.
"""

from __future__ import annotations

import atexit
import copy
import difflib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .._errors import (
    AirflowDagError,
    CheckFailure,
    LoadError,
    MissingExtraError,
    SpecError,
)
from .._extras import require
from ..sandbox.base import user_paths
from ..spec import ALL_PERTURBATIONS, Source, Spec, Target, windows
from ._shared import as_user_test, caller_dir, skip_unless_enabled, with_note

if TYPE_CHECKING:
    from ..context import RunContext

__all__ = ["AirflowCheck", "AirflowDagError", "Plan", "check", "definition_of"]

#: operator kinds a check runs (subclasses included), by module and class name
SUPPORTED = (
    "airflow.providers.common.sql.operators.sql.SQLExecuteQueryOperator (and PostgresOperator)",
    "airflow.operators.python.PythonOperator (and TaskFlow @task)",
    "airflow.operators.empty.EmptyOperator",
)
#: a DAG run costs a few hundred milliseconds: fewer scenarios than a plain check
DEFAULT_EXAMPLES = 15
DEFAULT_SYSTEMATIC_MAX = 12
DEFAULT_PERIODS = 3
#: where the DAG run's task states and XComs, and Variables, live in the state table
RUN_KEY = "airflow:dagrun:{dag_id}:{run_id}"
VAR_KEY = "airflow:variable:{key}"
_CONN_ID = re.compile(r"""\b\w*conn_id\s*=\s*["']([A-Za-z0-9_][A-Za-z0-9_.\-]*)["']""")


# --- Airflow's import-time setup --------------------------------------------------------

_home: Path | None = None
_home_lock = threading.Lock()


def _import_airflow() -> Any:
    """Import airflow with AIRFLOW_HOME on a temp folder idemtest owns (removed at exit):
    Airflow writes its config, logs and a SQLite file there at import; task.execute
    needs no initialised metadata database."""
    global _home
    with _home_lock:
        if sys.modules.get("airflow") is not None:
            # imported before idemtest (a DAG object from a module that imports airflow): its
            # home and metadata database are the user's; the secrets backend, read lazily, is not
            os.environ["AIRFLOW__SECRETS__BACKEND"] = ""
            return sys.modules["airflow"]
        _home = Path(tempfile.mkdtemp(prefix="idemtest-airflow-"))
        atexit.register(shutil.rmtree, _home, True)
        # forced for the rest of the process, whatever the environment says (Airflow reads
        # its AIRFLOW__* variables again on every conf.get): a check never reads or writes a
        # real Airflow's metadata database or secrets backend; only the logging level is the user's
        os.environ.update({k: v.format(home=_home) for k, v in _AIRFLOW_ENV.items() if k not in os.environ or k != "AIRFLOW__LOGGING__LOGGING_LEVEL"})
        airflow = require("airflow", "airflow")
        require("airflow.providers.common.sql.operators.sql", "airflow")
        require("airflow.providers.postgres.hooks.postgres", "airflow")
        # Airflow's task loggers print every statement at INFO: keep the test output readable
        for name in ("airflow", "airflow.task", "airflow.providers"):
            logging.getLogger(name).setLevel(os.environ.get("IDEMTEST_AIRFLOW_LOG", "WARNING").upper())
        return airflow


_AIRFLOW_ENV = {
    "AIRFLOW_HOME": "{home}",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:///{home}/airflow.db",
    "AIRFLOW__SECRETS__BACKEND": "",
}


# --- the DAG -----------------------------------------------------------------------------


def load_dag(dag: Any, dag_id: str | None = None, base: Path | None = None) -> tuple[Any, Path | None]:
    """The DAG object and its file: `dag` is a DAG, or the path of a DAG file (relative
    to the working directory or to the test module), imported as Airflow's DagBag would."""
    _import_airflow()
    from airflow.models.dag import DAG

    if isinstance(dag, DAG):
        file = getattr(dag, "fileloc", None)
        return dag, Path(file) if file else None
    if not isinstance(dag, (str, os.PathLike)):
        raise AirflowDagError(f"dag={dag!r}: pass an airflow DAG object or the path of a DAG file")
    path = Path(dag)
    candidates = user_paths(path, base)
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise AirflowDagError(f"dag={str(dag)!r}: no such file (looked at {' and '.join(str(c) for c in candidates)}); pass the path of the DAG file")
    found = found.resolve()
    name = f"idemtest_airflow_dag_{abs(hash(str(found)))}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, found)
        if spec is None or spec.loader is None:
            raise AirflowDagError(f"dag={str(dag)!r}: {found} is not a Python file Airflow can import")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except MissingExtraError:
            raise
        except ModuleNotFoundError as e:
            raise AirflowDagError(
                f"the DAG file {found} does not import: {type(e).__name__}: {e}; install what it imports "
                "(providers: apache-airflow-providers-*) in the test environment"
            ) from None
        except Exception as e:
            raise AirflowDagError(f"the DAG file {found} does not import: {type(e).__name__}: {e}; fix it until `python {found}` runs") from None
        sys.modules[name] = module
    dags = {d.dag_id: d for d in vars(module).values() if isinstance(d, DAG)}
    if not dags:
        raise AirflowDagError(f"the DAG file {found} defines no DAG at module level (a `with DAG(...) as dag:` or a `@dag` function called at the bottom)")
    if dag_id is None:
        if len(dags) > 1:
            raise AirflowDagError(f"the DAG file {found} defines {len(dags)} DAGs {sorted(dags)}; pass dag_id=")
        return next(iter(dags.values())), found
    if dag_id not in dags:
        raise AirflowDagError(f"dag_id={dag_id!r}: {found} defines {sorted(dags)}")
    return dags[dag_id], found


def _operator_kind(task: Any) -> str | None:
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import PythonOperator
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

    if isinstance(task, SQLExecuteQueryOperator):
        return "sql"
    if isinstance(task, PythonOperator):
        return "python"
    if isinstance(task, EmptyOperator):
        return "empty"
    return None


def select_tasks(dag: Any, tasks: Sequence[str] | None) -> tuple[list[Any], list[str]]:
    """The tasks a run executes, in dependency order: the checked ones and everything
    upstream of them (what they read), and the checked ids."""
    known = [t.task_id for t in dag.topological_sort()]
    if tasks is None:
        checked = known
    else:
        if isinstance(tasks, str):
            tasks = [tasks]
        checked = list(tasks)
        for tid in checked:
            if tid not in dag.task_dict:
                close = difflib.get_close_matches(tid, known, n=2)
                hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
                raise AirflowDagError(f"tasks= names {tid!r}: DAG {dag.dag_id!r} has no such task{hint}; its tasks are {known}")
    wanted = set(checked)
    for tid in checked:
        wanted |= {t.task_id for t in dag.task_dict[tid].get_flat_relatives(upstream=True)}
    ordered = [t for t in dag.topological_sort() if t.task_id in wanted]
    for t in ordered:
        if _operator_kind(t) is None:
            raise AirflowDagError(
                f"task {t.task_id!r} of DAG {dag.dag_id!r} is a {type(t).__module__}.{type(t).__name__}, which idemtest "
                f"cannot run yet; supported operator kinds: {'; '.join(SUPPORTED)}"
            )
    return ordered, checked


def _as_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def dag_windows(dag: Any, periods: int, start: datetime | None = None, schedule: Any = None) -> list[tuple[datetime, datetime]]:
    """The first `periods` data intervals the DAG's timetable schedules from its start
    date (or `start`), as naive UTC datetimes. `schedule` (the check's): how a DAG is
    triggered when its own schedule says nothing, e.g. None and run by manual triggers
    or `airflow dags backfill`, one run per interval."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    timetable = dag.timetable
    if schedule is not None:
        from airflow.models.dag import create_timetable

        try:
            timetable = create_timetable(schedule, dag.timezone)
            timetable.validate()  # a bad cron expression fails here, not in the first run
        except Exception as e:
            raise AirflowDagError(f"schedule={schedule!r} is not an Airflow schedule ({type(e).__name__}: {e}); pass a cron expression, '@daily', or a timedelta") from None
    if not getattr(timetable, "can_be_scheduled", True) or type(timetable).__name__ in ("NullTimetable", "OnceTimetable", "DatasetTriggeredTimetable", "AssetTriggeredTimetable"):
        raise AirflowDagError(
            f"DAG {dag.dag_id!r} has schedule={timetable.summary!r}: it has no data intervals to check; "
            "give it a schedule (e.g. schedule='@daily' or a cron expression), or, when it is triggered by hand "
            "or by `airflow dags backfill` for each date, pass the check schedule='@daily' (one run per interval)"
        )
    earliest = start or dag.start_date
    if earliest is None:
        earliest = min((t.start_date for t in dag.tasks if t.start_date), default=None)
    if earliest is None:
        raise AirflowDagError(f"DAG {dag.dag_id!r} has no start_date; set one on the DAG (start_date=pendulum.datetime(...)) or pass start=")
    import pendulum

    earliest_p = pendulum.instance(_as_utc(earliest))
    restriction = TimeRestriction(earliest=earliest_p, latest=None, catchup=True)
    out: list[tuple[datetime, datetime]] = []
    last: DataInterval | None = None
    for _ in range(periods):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None:
            break
        last = info.data_interval
        out.append((_naive(last.start), _naive(last.end)))
    if not out:
        raise AirflowDagError(f"DAG {dag.dag_id!r}: its timetable schedules no run after {earliest_p}; check start_date and end_date")
    return out


def _search_folders(paths: Sequence[str | os.PathLike[str]] | str | None, base: Path | None) -> tuple[str, ...]:
    """`template_searchpath=` as absolute folders (relative ones: the working directory, then
    the test module's folder); a folder that is in neither place is a SpecError."""
    if paths is None:
        return ()
    out = []
    for p in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        path = Path(p)
        candidates = user_paths(path, base)
        found = next((c for c in candidates if c.is_dir()), None)
        if found is None:
            raise SpecError(f"template_searchpath={str(p)!r}: no such folder (looked at {' and '.join(str(c) for c in candidates)}); name the folder that holds the DAG's SQL files")
        out.append(str(found.resolve()))
    return tuple(out)


def _naive(t: Any) -> datetime:
    d = datetime(t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond, tzinfo=t.tzinfo)
    return _as_utc(d).replace(tzinfo=None)


@dataclass(frozen=True)
class Semantics:
    """What the DAG allows, read from the DAG and its tasks (Airflow's defaults where unset)."""

    retries: int
    retry_delay: timedelta
    catchup: bool
    max_active_runs: int
    depends_on_past: bool
    exercise: frozenset[str]
    concurrency: str
    why: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"retries={self.retries}, retry_delay={self.retry_delay}, catchup={self.catchup}, "
            f"max_active_runs={self.max_active_runs}, depends_on_past={self.depends_on_past}"
        )


def semantics(dag: Any, tasks: Sequence[Any]) -> Semantics:
    """The scenario space the DAG allows. Retries are per task in Airflow; a scenario's
    retry bound is the smallest of the tasks it runs (never more retries than a task has)."""
    retries = min((int(t.retries or 0) for t in tasks), default=0)
    delay = min((t.retry_delay for t in tasks if t.retries == retries), default=timedelta(minutes=5))
    if not isinstance(delay, timedelta):
        delay = timedelta(seconds=float(delay))
    depends = any(bool(t.depends_on_past) for t in tasks)
    mar = int(dag.max_active_runs)
    exercise = set(ALL_PERTURBATIONS)
    why: dict[str, str] = {}
    if mar <= 1 or depends:
        exercise.discard("concurrent")
        why["concurrent"] = "max_active_runs=1" if mar <= 1 else "depends_on_past=True"
    if not dag.catchup or mar <= 1 or depends:
        # out-of-order runs are catch-up runs finishing in another order than scheduled
        exercise.discard("out_of_order")
        why["out_of_order"] = "catchup=False" if not dag.catchup else ("max_active_runs=1" if mar <= 1 else "depends_on_past=True")
    return Semantics(
        retries=retries,
        retry_delay=delay,
        catchup=bool(dag.catchup),
        max_active_runs=mar,
        depends_on_past=depends,
        exercise=frozenset(exercise),
        concurrency="partitions" if "concurrent" in exercise else "none",
        why=why,
    )


def conn_ids(dag: Any, tasks: Sequence[Any], file: Path | None, extra: Iterable[str]) -> list[str]:
    """Every connection id the DAG names: SQL operators' `conn_id`, and `*conn_id="..."`
    literals in the DAG file (hooks built inside Python tasks)."""
    found: list[str] = []
    for t in tasks:
        cid = getattr(t, "conn_id", None)
        if isinstance(cid, str) and cid:
            found.append(cid)
    if file is not None and file.is_file():
        found += _CONN_ID.findall(file.read_text(errors="replace"))
    found += list(extra)
    return sorted(set(found))


def _env_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + re.sub(r"[^A-Za-z0-9]", "_", conn_id).upper()


# --- the DAG run ----------------------------------------------------------------------


class _RunTI:
    """The task instance a task sees: XComs in the DAG run's record, no database."""

    def __init__(self, dag_run: _DagRun, task: Any, try_number: int) -> None:
        self._run = dag_run
        self.task = task
        self.task_id = task.task_id
        self.dag_id = task.dag_id
        self.run_id = dag_run.run_id
        self.map_index = -1
        self.try_number = try_number
        self.max_tries = task.retries
        self.log = logging.getLogger("airflow.task")

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self._run.push(self.task_id, key, value)

    def xcom_pull(self, task_ids: str | Iterable[str] | None = None, dag_id: str | None = None, key: str = "return_value", default: Any = None, **_: Any) -> Any:
        def one(tid: str | None) -> Any:
            value = self._run.pull(tid, key)
            return default if value is _MISSING else value

        if task_ids is None or isinstance(task_ids, str):
            return one(task_ids)
        return [one(t) for t in task_ids]

    def get_relevant_upstream_map_indexes(self, *_: Any, **__: Any) -> None:
        return None


_MISSING: Any = object()


class _DagRun:
    """One DAG run's record: which tasks succeeded (and how often each was tried), and
    their XComs; kept in the sandbox as Airflow keeps it in its metadata database."""

    def __init__(self, run: RunContext, dag_id: str, run_id: str) -> None:
        self.ctx = run
        self.run_id = run_id
        self.key = RUN_KEY.format(dag_id=dag_id, run_id=run_id)
        self.done: list[str] = []
        self.tries: dict[str, int] = {}
        self.xcom: dict[str, dict[str, Any]] = {}
        self.exists = False

    def load(self) -> None:
        record = self.ctx.state.get(self.key)
        _end_read(self.ctx)
        if record is not None:
            self.exists = True
            self.done = list(record["done"])
            self.tries = dict(record["tries"])
            self.xcom = {t: dict(v) for t, v in record["xcom"].items()}

    def save(self) -> None:
        try:
            record = {"done": self.done, "tries": self.tries, "xcom": self.xcom}
            json.dumps(record, default=str)
        except (TypeError, ValueError) as e:
            raise AirflowDagError(f"an XCom of DAG run {self.run_id} is not JSON-serialisable ({e}); Airflow's XCom backend stores JSON") from None
        self.ctx.state.set(self.key, record)
        self.ctx.conn.commit()

    def clear(self, task_ids: Iterable[str]) -> None:
        gone = set(task_ids)
        self.done = [t for t in self.done if t not in gone]
        for t in gone:
            self.xcom.pop(t, None)

    def push(self, task_id: str, key: str, value: Any) -> None:
        self.xcom.setdefault(task_id, {})[key] = _jsonable(value)

    def pull(self, task_id: str | None, key: str) -> Any:
        if task_id is None:
            for values in reversed(list(self.xcom.values())):
                if key in values:
                    return values[key]
            return _MISSING
        return self.xcom.get(task_id, {}).get(key, _MISSING)


def _jsonable(value: Any) -> Any:
    """An XCom value as Airflow's JSON XCom backend round-trips it (tuples become lists)."""
    from .._json import dumps, loads

    try:
        return loads(dumps(value))
    except (TypeError, ValueError) as e:
        raise AirflowDagError(f"XCom value {value!r:.80} is not JSON-serialisable ({e}); Airflow's XCom backend stores JSON") from None


def _end_read(run: RunContext) -> None:
    # a read through run.conn opens a transaction on PostgreSQL: end it (Airflow's own
    # metadata reads do not hold locks in the sandbox either)
    run.conn.commit()


_current = threading.local()  # the RunContext of the DAG run executing on this thread


def _variables_patch() -> None:
    """Variable.get/set/delete of the run's thread go to the sandbox's state table,
    through the run's connection (each write committed, as Airflow commits its metadata
    database); outside a run they are Airflow's own."""
    from airflow.models.variable import Variable

    if getattr(Variable.get, "_idemtest", False):
        return
    orig_get, orig_set, orig_delete = Variable.get, Variable.set, Variable.delete

    def get(key: str, default_var: Any = _MISSING, deserialize_json: bool = False, **kw: Any) -> Any:
        run = getattr(_current, "run", None)
        if run is None:
            return orig_get(key, default_var, deserialize_json, **kw) if default_var is not _MISSING else orig_get(key, deserialize_json=deserialize_json, **kw)
        env = os.environ.get(f"AIRFLOW_VAR_{key.upper()}")
        seeded = getattr(_current, "variables", {})
        if key in seeded:
            value = seeded[key]
        elif env is not None:
            value = env
        else:
            value = run.state.get(VAR_KEY.format(key=key), _MISSING)
            _end_read(run)
        if value is _MISSING:
            if default_var is not _MISSING:
                return default_var
            raise KeyError(f"Variable {key} does not exist")
        return json.loads(value) if deserialize_json else value

    def set_(key: str, value: Any, description: str | None = None, serialize_json: bool = False, **kw: Any) -> None:
        run = getattr(_current, "run", None)
        if run is None:
            orig_set(key, value, description, serialize_json, **kw)
            return
        run.state.set(VAR_KEY.format(key=key), json.dumps(value, indent=2) if serialize_json else str(value))
        run.conn.commit()

    def delete(key: str, **kw: Any) -> int:
        run = getattr(_current, "run", None)
        if run is None:
            return int(orig_delete(key, **kw))
        run.conn.execute(f"DELETE FROM {_state_table()} WHERE key = %s", [VAR_KEY.format(key=key)])
        run.conn.commit()
        return 1

    for f in (get, set_, delete):
        cast(Any, f)._idemtest = True
    patched = cast(Any, Variable)
    patched.get, patched.set, patched.delete = staticmethod(get), staticmethod(set_), staticmethod(delete)


def _state_table() -> str:
    from .._defaults import STATE_TABLE

    return STATE_TABLE


_env_lock = threading.Lock()
_env_users: dict[str, int] = {}
_env_saved: dict[str, str | None] = {}


@contextmanager
def connections_to(uri: str, ids: Iterable[str]) -> Iterator[None]:
    """`AIRFLOW_CONN_<ID>` = the sandbox for each id while a run needs it (runs of one
    scenario at once share them), the previous values back when the last one ends."""
    names = [_env_name(i) for i in ids]
    with _env_lock:
        if not any(_env_users.values()):
            _bind_hook_connect(True)
        for n in names:
            if _env_users.get(n, 0) == 0:
                _env_saved[n] = os.environ.get(n)
            _env_users[n] = _env_users.get(n, 0) + 1
            os.environ[n] = uri
    try:
        yield
    finally:
        with _env_lock:
            for n in names:
                _env_users[n] -= 1
                if _env_users[n] == 0:
                    old = _env_saved.pop(n, None)
                    if old is None:
                        os.environ.pop(n, None)
                    else:
                        os.environ[n] = old
            if not any(_env_users.values()):
                _bind_hook_connect(False)


_hook_connect: list[Any] = []  # the provider's own reference, while a run rebinds it


def _bind_hook_connect(on: bool) -> None:
    """apache-airflow-providers-postgres 6.5+ keeps `ppg2_connect = psycopg2.connect` from
    its import, before idemtest's sandbox patches psycopg2.connect: point it at the
    patched function while runs execute, back at its own afterwards."""
    module: Any = sys.modules.get("airflow.providers.postgres.hooks.postgres")
    if module is None or not hasattr(module, "ppg2_connect"):
        return
    import psycopg2

    if on:
        _hook_connect.append(module.ppg2_connect)
        module.ppg2_connect = psycopg2.connect
    elif _hook_connect:
        module.ppg2_connect = _hook_connect.pop()


def _sandbox_uri(run: RunContext) -> str:
    from ..sandbox.postgres.dsn import make_url, parse_dsn

    p = parse_dsn(str(run.dsn))
    return make_url({k: v for k, v in p.items() if k in ("host", "port", "user", "password", "dbname")})


def _context(dag: Any, task: Any, ti: _RunTI, start: datetime, end: datetime, run_id: str) -> Any:
    """The template context Airflow builds for a scheduled run of this interval."""
    import pendulum
    from airflow import macros
    from airflow.utils.context import ConnectionAccessor, Context, VariableAccessor

    s = pendulum.instance(start.replace(tzinfo=timezone.utc))
    e = pendulum.instance(end.replace(tzinfo=timezone.utc))
    params = task.params.dump() if hasattr(task.params, "dump") else dict(task.params)
    dag_run = _DagRunView(run_id, s, e)
    values: dict[str, Any] = {
            "dag": dag,
            "task": task,
            "ti": ti,
            "task_instance": ti,
            "run_id": run_id,
            "dag_run": dag_run,
            "params": params,
            "logical_date": s,
            "data_interval_start": s,
            "data_interval_end": e,
            "ds": s.strftime("%Y-%m-%d"),
            "ds_nodash": s.strftime("%Y%m%d"),
            "ts": s.isoformat(),
            "ts_nodash": s.strftime("%Y%m%dT%H%M%S"),
            "ts_nodash_with_tz": s.isoformat().replace("-", "").replace(":", ""),
            "prev_data_interval_start_success": None,
            "prev_data_interval_end_success": None,
            "prev_start_date_success": None,
            "prev_end_date_success": None,
            "macros": macros,
            "var": {"json": VariableAccessor(deserialize_json=True), "value": VariableAccessor(deserialize_json=False)},
            "conn": ConnectionAccessor(),
            "inlets": list(task.inlets),
            "outlets": list(task.outlets),
            "conf": None,
            "test_mode": False,
            "expanded_ti_count": None,
            "map_index_template": None,
            "templates_dict": getattr(task, "templates_dict", None),
            "triggering_dataset_events": {},
    }
    build: Any = Context
    return build(values)


@dataclass
class _DagRunView:
    run_id: str
    data_interval_start: Any
    data_interval_end: Any
    conf: dict[str, Any] = field(default_factory=dict)
    run_type: str = "scheduled"

    @property
    def logical_date(self) -> Any:
        return self.data_interval_start

    execution_date = logical_date


@contextmanager
def _task_process(run: RunContext) -> Iterator[None]:
    """Each Airflow task runs in a process of its own: when it ends, the connections it
    opened drop (an open or failed transaction is rolled back), whatever it left behind.
    Here: the connections the task opened during the run are closed after it."""
    ctl = run._ctl
    if ctl is None:
        yield
        return
    with ctl._lock:
        closers, probes = len(ctl.closers), len(ctl.txn_probes)
    try:
        yield
    finally:
        if ctl.crashed is None:
            with ctl._lock:
                mine = ctl.closers[closers:]
                del ctl.closers[closers:]
                del ctl.txn_probes[probes:]
            for close in reversed(mine):
                try:
                    close()
                except Exception:  # already closed by the task: nothing to drop
                    pass


def _run_id(start: datetime) -> str:
    return f"scheduled__{start.replace(tzinfo=timezone.utc).isoformat()}"


def execute_task(dag: Any, task: Any, dag_run: _DagRun, start: datetime, end: datetime) -> None:
    """One task instance: a fresh copy of the operator, templates rendered by Airflow's
    Jinja from the run's context, `execute`, its return value pushed as XCom."""
    tries = dag_run.tries.get(task.task_id, 0) + 1
    dag_run.tries[task.task_id] = tries
    ti = _RunTI(dag_run, task, tries)
    instance = task.prepare_for_execution() if hasattr(task, "prepare_for_execution") else copy.copy(task)
    ti.task = instance
    context = _context(dag, instance, ti, start, end, dag_run.run_id)
    instance.render_template_fields(context)
    from airflow.exceptions import AirflowSkipException
    from airflow.models import baseoperator

    # what TaskInstance passes so the operator knows it runs inside a task instance; the
    # guard's thread-local exists only on the thread that imported Airflow
    kwargs: dict[str, Any] = {}
    guard = getattr(baseoperator, "ExecutorSafeguard", None)
    from airflow.models import base as models_base

    if guard is not None and hasattr(models_base, "_sentinel"):
        if getattr(guard._sentinel, "callers", None) is None:
            guard._sentinel.callers = {}
        kwargs[f"{instance.__class__.__name__}__sentinel"] = models_base._sentinel
    try:
        result = instance.execute(context, **kwargs)
    except AirflowSkipException:
        result = None
    if result is not None and getattr(instance, "do_xcom_push", True):
        if getattr(instance, "multiple_outputs", False) and isinstance(result, Mapping):
            for k, v in result.items():
                dag_run.push(task.task_id, str(k), v)
        dag_run.push(task.task_id, "return_value", result)


# --- the check ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one check runs: the Spec built from the DAG, and the load (one DAG run)."""

    spec: Spec
    load: Callable[[RunContext], Any]
    semantics: Semantics
    tasks: tuple[str, ...]
    checked: tuple[str, ...]
    conn_ids: tuple[str, ...]


@dataclass
class Observed:
    """What the check's runs did (tests and bench read it): the windows run and the
    largest attempt number of a DAG run."""

    windows: set[tuple[datetime, datetime]] = field(default_factory=set)
    max_attempt: int = 0
    dag_runs: int = 0
    task_runs: int = 0
    clears: int = 0
    config_error: AirflowDagError | None = None  # a declaration error met inside a run
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class AirflowCheck:
    """A declared Airflow check; `plan()` loads the DAG (once) and builds it."""

    dag: Any
    dag_id: str | None
    tasks: tuple[str, ...] | None
    sources: tuple[Source, ...]
    targets: tuple[Target, ...]
    setup: Any
    periods: int
    start: datetime | None
    max_lateness: timedelta | str | float
    conn_ids: tuple[str, ...]
    variables: Mapping[str, Any]
    exercise: frozenset[str] | None
    timeout: timedelta | str | float
    base: Path | None
    name: str
    schedule: Any = None
    template_searchpath: tuple[str, ...] = ()
    observed: Observed = field(default_factory=Observed)
    _plan: Plan | None = None

    def plan(self) -> Plan:
        if self._plan is not None:
            return self._plan
        dag, file = load_dag(self.dag, self.dag_id, self.base)
        if self.template_searchpath:
            # the DAG names its deployment's folder (e.g. /opt/airflow/sql): the check's
            # folders are searched first, then the DAG's own (Airflow: DAG folder, then these)
            own = dag.template_searchpath or []
            dag.template_searchpath = [*self.template_searchpath, *([own] if isinstance(own, str) else own)]
        ordered, checked = select_tasks(dag, self.tasks)
        sem = semantics(dag, ordered)
        exercise = sem.exercise
        if self.exercise is not None:
            beyond = self.exercise - sem.exercise
            if beyond:
                reasons = ", ".join(f"{p} ({sem.why.get(p, 'not a perturbation')})" for p in sorted(beyond))
                raise SpecError(f"exercise= asks for {reasons}, which DAG {dag.dag_id!r} cannot produce; leave them out")
            exercise = self.exercise
        bounds = dag_windows(dag, self.periods, self.start, self.schedule)
        ids = conn_ids(dag, ordered, file, self.conn_ids)
        if not ids:
            raise AirflowDagError(
                f"DAG {dag.dag_id!r} names no connection id (conn_id=... / postgres_conn_id=...) idemtest could point at the sandbox; "
                "pass conn_ids=['my_pg_conn'] naming the connections its tasks use"
            )
        spec = Spec(
            sources=list(self.sources),
            targets=list(self.targets),
            schedule=windows(bounds),
            setup=self.setup,
            max_lateness=self.max_lateness,
            retries=sem.retries,
            retry_delay=sem.retry_delay,
            timeout=self.timeout,
            exercise=exercise,
            concurrency=sem.concurrency,  # type: ignore[arg-type]
            dialect="postgres",
            name=self.name,
        )
        _variables_patch()
        load = _make_load(dag, ordered, checked, ids, dict(self.variables), self.observed)
        self._plan = Plan(spec, load, sem, tuple(t.task_id for t in ordered), tuple(checked), tuple(ids))
        return self._plan


def _downstream(tasks: Sequence[Any], checked: Iterable[str]) -> list[str]:
    """The checked tasks and everything downstream of them among the tasks run."""
    run = {t.task_id: t for t in tasks}
    out = set(checked)
    for tid in list(out):
        out |= {t.task_id for t in run[tid].get_flat_relatives(upstream=False)} & set(run)
    return [t.task_id for t in tasks if t.task_id in out]


def _make_load(dag: Any, tasks: list[Any], checked: list[str], ids: list[str], variables: dict[str, Any], observed: Observed) -> Callable[[RunContext], Any]:
    cleared = _downstream(tasks, checked)

    def dag_run(run: RunContext) -> None:
        """One DAG run for the run's window (a retry resumes it at the task that failed)."""
        start, end = run.window.start, run.window.end
        record = _DagRun(run, dag.dag_id, _run_id(start))
        record.load()
        if run.attempt == 1 and record.exists:
            # the window ran before: a second run is `airflow tasks clear` of the checked tasks (+ downstream)
            record.clear(cleared)
            record.save()  # `airflow tasks clear` writes the cleared states at once
            with observed.lock:
                observed.clears += 1
        with observed.lock:
            observed.windows.add((start, end))
            observed.max_attempt = max(observed.max_attempt, run.attempt)
            observed.dag_runs += run.attempt == 1
        seeded = {k: (v(run) if callable(v) else v) for k, v in variables.items()}
        seeded = {k: str(v) for k, v in seeded.items()}
        _current.run, _current.variables = run, seeded
        try:
            with connections_to(_sandbox_uri(run), ids):
                for task in tasks:
                    if task.task_id in record.done:
                        continue
                    with _task_process(run):
                        try:
                            execute_task(dag, task, record, start, end)
                        except Exception as e:
                            unmapped = _unmapped_conn(e, ids)
                            if unmapped is None:
                                raise
                            observed.config_error = unmapped
                            raise unmapped from None
                    with observed.lock:
                        observed.task_runs += 1
                    record.done.append(task.task_id)
                    record.save()  # the task instance is marked success
        finally:
            _current.run = None
            _current.variables = {}

    dag_run.__qualname__ = f"DAG run of {dag.dag_id}"
    return dag_run


def _unmapped_conn(error: Exception, ids: Sequence[str]) -> AirflowDagError | None:
    """Airflow's "The conn_id `x` isn't defined" for an id idemtest did not map, as the fix."""
    m = re.search(r"conn_id `([^`]+)` isn't defined", str(error))
    if m is None or m.group(1) in ids:
        return None
    return AirflowDagError(
        f"a task uses conn_id {m.group(1)!r}, which idemtest did not point at the sandbox (it mapped {list(ids)}: "
        f"the SQL operators' conn_id and the `conn_id=\"...\"` literals of the DAG file); pass conn_ids=[{m.group(1)!r}]"
    )




def check(
    *,
    dag: Any,
    tasks: Sequence[str] | str | None = None,
    sources: Iterable[Source] = (),
    targets: Iterable[Target],
    setup: Any = None,
    dag_id: str | None = None,
    periods: int = DEFAULT_PERIODS,
    start: datetime | str | None = None,
    max_lateness: timedelta | str | float = timedelta(0),
    conn_ids: Iterable[str] = (),
    variables: Mapping[str, Any] | None = None,
    exercise: Iterable[str] | None = None,
    timeout: timedelta | str | float = timedelta(seconds=60),
    examples: int | None = None,
    schedule: Any = None,
    template_searchpath: Sequence[str | os.PathLike[str]] | str | None = None,
) -> Callable[..., None]:
    """A pytest test that checks the Airflow DAG `dag` (a DAG object, or the path of its
    file relative to the working directory or the test module): assign it to a `test_` name.

    `tasks`: the task ids checked (their upstream tasks run too; default: every task).
    `sources` / `targets` / `setup`: the tables the DAG reads and writes, and the DDL of a
    fresh sandbox (Airflow does not declare them). `periods`: how many of the DAG's data
    intervals a scenario runs (from `start_date`, or `start`). `conn_ids`: connection ids
    the DAG uses that its file does not spell as `conn_id="..."` literals. `variables`:
    Airflow Variables seeded for every run (a value, or a function of the RunContext, e.g.
    `lambda run: run.landing`), as `AIRFLOW_VAR_<KEY>` would. `exercise`: narrow the
    perturbations (never beyond what the DAG allows). `schedule`: for a DAG without one
    (`schedule=None`, run by manual triggers or `airflow dags backfill` for each date), the
    intervals it is run for, e.g. '@daily'. `template_searchpath`: folders (relative to the
    test module) holding the SQL files the DAG names, searched before the DAG's own
    `template_searchpath` (which names the deployment's folders, e.g. /opt/airflow/sql)."""
    from ..spec import parse_time

    base = caller_dir()
    targets = tuple(targets)
    if not targets:
        raise SpecError("targets= is empty: name the tables the DAG writes, e.g. targets=[idemtest.Target('employees', key='serial_number')]")
    if not isinstance(periods, int) or periods < 1:
        raise SpecError(f"periods={periods!r} must be a whole number of data intervals, at least 1")
    chosen = None if exercise is None else frozenset([exercise] if isinstance(exercise, str) else exercise)
    label = Path(str(dag)).stem if isinstance(dag, (str, os.PathLike)) else getattr(dag, "dag_id", "dag")
    definition = AirflowCheck(
        dag=dag,
        dag_id=dag_id,
        tasks=None if tasks is None else tuple([tasks] if isinstance(tasks, str) else tasks),
        sources=tuple(sources),
        targets=targets,
        setup=setup,
        periods=periods,
        start=parse_time(start, "start") if start is not None else None,
        max_lateness=max_lateness,
        conn_ids=tuple(conn_ids),
        variables=dict(variables or {}),
        exercise=chosen,
        timeout=timeout,
        base=base,
        name=f"airflow_{dag_id or label}",
        schedule=schedule,
        template_searchpath=_search_folders(template_searchpath, base),
    )

    def test(idempotency: Any) -> None:
        import pytest

        skip_unless_enabled(idempotency)
        if idempotency.dialect != "postgres":
            pytest.skip(
                "Airflow checks run on PostgreSQL (the database Airflow's SQL operators and PostgresHook talk to); "
                "run them with --idem-db postgresql://user@host:5432/postgres"
            )
        try:
            plan = definition.plan()
        except MissingExtraError as e:
            if os.environ.get("IDEMTEST_REQUIRE_AIRFLOW"):
                raise
            pytest.skip(str(e))
        try:
            idempotency.check(plan.spec, plan.load, examples=examples or DEFAULT_EXAMPLES, base_dir=base, systematic_max=DEFAULT_SYSTEMATIC_MAX)
        except CheckFailure as failure:
            raise _with_dag(failure, plan, definition) from None
        except LoadError:
            if definition.observed.config_error is not None:
                raise definition.observed.config_error from None  # the declaration, not the DAG, is wrong
            raise

    name = "_".join(definition.tasks) if definition.tasks else "dag"
    return as_user_test(test, name=f"test_airflow_{label}_{name}", doc=f"idemtest: Airflow DAG {label}", attr="idemtest_airflow", definition=definition)


def _with_dag(failure: CheckFailure, plan: Plan, definition: AirflowCheck) -> CheckFailure:
    return with_note(
        failure,
        f"airflow: each run is one DAG run of tasks {list(plan.tasks)} (checked: {list(plan.checked)}) "
        f"in dependency order; from the DAG: {plan.semantics.describe()}; a retry re-runs the failed task and the ones after it, "
        f"a second run of a window clears {list(plan.checked)} and their downstream tasks",
    )


def definition_of(test: Any) -> AirflowCheck | None:
    """The Airflow check a test was built with (tests and tools read its plan and what it observed)."""
    found = getattr(test, "idemtest_airflow", None)
    return found if isinstance(found, AirflowCheck) else None

