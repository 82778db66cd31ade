"""Orchestrator definitions: find the jobs (Airflow, Dagster, Prefect, cron), their tasks
and cadence, and the rules about how they are scheduled and retried."""

from __future__ import annotations

import ast
import builtins
import re
import sys

from .astwalk import walk
from .model import Job, Task
from .python_rules import (
    FileInfo,
    _asset_key_parts,
    contains_wall_clock,
    dotted,
    imports_of,
    kw,
    literal,
)
from .sql_rules import Hit

MAX_SANE_RETRIES = 10
DB_IO_MANAGERS = re.compile(
    r"(DuckDB|Snowflake|BigQuery|Postgres|Deltalake)\w*IOManager|duckdb_\w*io_manager|"
    r"snowflake_\w*io_manager|bigquery_\w*io_manager"
)


def _module_dicts(tree: ast.Module) -> dict[str, ast.expr]:
    out: dict[str, ast.expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and \
                isinstance(stmt.targets[0], ast.Name):
            out[stmt.targets[0].id] = stmt.value
    return out


def _dict_items(node: ast.expr | None, names: dict[str, ast.expr]) -> dict[str, ast.expr]:
    if isinstance(node, ast.Name):
        node = names.get(node.id)
    if isinstance(node, ast.Dict):
        return {k.value: v for k, v in zip(node.keys, node.values, strict=False)
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and v is not None}
    if isinstance(node, ast.Call) and dotted(node.func) == "dict":
        return {k.arg: k.value for k in node.keywords if k.arg}
    return {}


def _cadence(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    value = literal(node)
    return str(value) if value is not None else ast.unparse(node)


def _retry_hits(where: ast.AST, retries: ast.expr | None, delay: ast.expr | None,
                what: str, default_delay: bool = False) -> list[Hit]:
    """`default_delay`: the orchestrator waits between tries even when no delay is given
    (Airflow: retry_delay defaults to 300 s), so a missing delay is no finding."""
    if retries is None:
        return []
    n = literal(retries)
    line = retries.lineno
    if isinstance(n, (int, float)) and (n < 0 or n > MAX_SANE_RETRIES):
        return [(line, "IDM103", f"{what} retries={n} is unbounded")]
    if isinstance(n, int) and n > 0 and delay is None and not default_delay:
        return [(line, "IDM103", f"{what} retries={n} without a retry delay")]
    return []


_NO_WRITE_OPERATORS = {"EmptyOperator", "DummyOperator", "LatestOnlyOperator",
                       "ShortCircuitOperator", "BranchPythonOperator"}
_NO_WRITE_COMMAND = re.compile(r"^\s*(echo|sleep|true|date|printf|exit\s+0)\b")
_NO_WRITE_CALLS = {"print", "info", "debug", "warning", "log", "sleep", "format", "pprint"}
# calls that fetch, parse or count and change no data: a task made only of them (an API
# fetched and its rows counted for a branch) writes nothing
_READ_ONLY_CALLS = {"get", "json", "loads", "DataFrame", "xcom_pull", "raise_for_status",
                    "read_csv", "read_json", "read_parquet", "read_excel", "len", "str", "int",
                    "float", "bool", "round", "sum", "min", "max", "sorted", "list", "dict",
                    "isinstance", "range", "enumerate", "zip", "items", "keys", "values"}


def _unscheduled(schedule: ast.expr | None) -> bool:
    """schedule=None / "@once" (every branch of a conditional): nothing runs on its own, so
    catch-up, overlap and retry hygiene do not arise. A missing schedule is Airflow 2's daily."""
    if schedule is None:
        return False
    if isinstance(schedule, ast.IfExp):
        return _unscheduled(schedule.body) and _unscheduled(schedule.orelse)
    if isinstance(schedule, ast.Constant):
        return schedule.value is None or schedule.value == "@once"
    return False


def unscheduled_dags_only(tree: ast.Module) -> bool:
    """The module defines Airflow DAGs, every one of them with no schedule (`@once`, None):
    what their tasks run is run by hand (or once)."""
    dags = [n for n in walk(tree) if isinstance(n, ast.Call)
            and dotted(n.func).rsplit(".", 1)[-1] == "DAG"]
    dags += [d for f in walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for d in f.decorator_list if isinstance(d, ast.Call)
             and dotted(d.func).rsplit(".", 1)[-1] == "dag"]
    if not dags:
        return False
    for d in dags:
        args = {k.arg: k.value for k in d.keywords if k.arg}
        schedule = args.get("schedule", args.get("schedule_interval", args.get("timetable")))
        if schedule is None or not _unscheduled(schedule):
            return False
    return True


def _never_starts(args: dict[str, ast.expr], default_args: dict[str, ast.expr],
                  schedule: ast.expr | None, calls: list[ast.Call]) -> bool:
    """No schedule and no start_date (on the DAG, in default_args or on a task): Airflow
    below 2.8 refuses the DAG, later versions give the scheduler no interval to start from,
    and Airflow 3's default schedule is None. Such a DAG runs only when triggered by hand."""
    if schedule is not None or "start_date" in args or "start_date" in default_args:
        return False
    if "default_args" in args and not default_args:
        return False  # default_args we cannot read may carry a start_date
    return not any(kw(c, "start_date") is not None for c in calls
                   if dotted(c.func).endswith(("Operator", "Sensor")))


_NOT_PROJECT = {"airflow", "pendulum", "dateutil", "pytz"}


def _project_callables(tree: ast.Module) -> tuple[set[str], bool]:
    """Names imported from the project's own modules (`from method_1.load import load_tasks`,
    relative imports), and whether a project module is star-imported."""
    names: set[str] = set()
    star = False
    for n in walk(tree):
        if not isinstance(n, ast.ImportFrom):
            continue
        top = (n.module or "").split(".")[0]
        if n.level == 0 and (not top or top in sys.stdlib_module_names or top in _NOT_PROJECT):
            continue
        for a in n.names:
            if a.name == "*":
                star = True
            else:
                names.add(a.asname or a.name)
    return names, star


def _writes_nothing(body: ast.AST | None, funcs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef],
                    owner: ast.AST, dag_names: set[str] | None = None,
                    project: tuple[set[str], bool] = (set(), False),
                    module: ast.Module | None = None) -> bool:
    """Every task of the DAG is an Empty/Dummy operator, an `echo`, or a function that only
    prints: such a DAG changes no data, so its scheduling cannot duplicate or lose any. A
    call handed the DAG (`build_load_task(dag, ...)`) makes tasks we cannot see: they may write."""
    if body is None:
        return False
    tasks = 0
    imported, star = project
    for n in walk(body):
        if isinstance(n, ast.Call):
            short = dotted(n.func).rsplit(".", 1)[-1]
            # a project module's task or task-group builder (`etl_task_group(...)`) makes
            # tasks this file cannot see: they may write
            if isinstance(n.func, ast.Name) and n.func.id not in funcs and short not in _NO_WRITE_CALLS \
                    and (n.func.id in imported or (star and not hasattr(builtins, n.func.id))):
                return False
            if not short.endswith("Operator"):
                if dag_names and any(isinstance(a, ast.Name) and a.id in dag_names
                                     for a in n.args):
                    return False
                continue
            tasks += 1
            if short in _NO_WRITE_OPERATORS:
                continue
            cmd = literal(kw(n, "bash_command"))
            if short == "BashOperator" and isinstance(cmd, str) and _NO_WRITE_COMMAND.match(cmd):
                continue
            if short == "BashOperator" and _no_write_script(kw(n, "bash_command"), module):
                continue
            cb = kw(n, "python_callable")
            if short == "PythonOperator" and isinstance(cb, ast.Name) and cb.id in funcs \
                    and _only_prints(funcs[cb.id], funcs):
                continue
            return False
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n is not owner and any(
                dotted(d).split(".")[-1] == "task" or dotted(d).startswith("task.")
                for d in n.decorator_list):
            tasks += 1
            if not _only_prints(n, funcs):
                return False
    return tasks > 0


_JINJA_BLOCK = re.compile(r"^\s*\{%.*%\}\s*$")


def _no_write_script(cmd: ast.expr | None, tree: ast.Module | None) -> bool:
    """A bash_command held in a module-level string (`templated_command = \"\"\"...\"\"\"`)
    whose every line is an `echo`/`date`/`sleep` or a Jinja `{% for %}` block tag: the
    tutorial's templated task prints and writes nothing."""
    if tree is None or not isinstance(cmd, ast.Name):
        return False
    values = [st.value for st in tree.body if isinstance(st, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == cmd.id for t in st.targets)]
    if len(values) != 1 or not isinstance(values[0], ast.Constant) \
            or not isinstance(values[0].value, str):
        return False
    lines = [ln for ln in values[0].value.splitlines() if ln.strip() and not _JINJA_BLOCK.match(ln)]
    return bool(lines) and all(_NO_WRITE_COMMAND.match(ln) for ln in lines)


def _only_prints(f: ast.FunctionDef | ast.AsyncFunctionDef,
                 funcs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] | None = None,
                 depth: int = 0) -> bool:
    # the body only: `@task(sla=timedelta(seconds=10))` is the decorator's call, not the task's
    for n in (m for stmt in f.body for m in walk(stmt)):
        if not isinstance(n, ast.Call):
            continue
        name = dotted(n.func)
        if name.rsplit(".", 1)[-1] in _NO_WRITE_CALLS | _READ_ONLY_CALLS:
            continue
        # a helper of this file that only logs (`say_hello(log)`) writes nothing either
        g = funcs.get(name) if funcs else None
        if g is None or g is f or depth > 2 or not _only_prints(g, funcs, depth + 1):
            return False
    return True


def _module_wall_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to a wall-clock expression (`START = days_ago(1)`)."""
    out: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and contains_wall_clock(stmt.value):
            out |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
    return out


def _task_from_call(call: ast.Call, info: FileInfo,
                    funcs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]) -> Task | None:
    name = dotted(call.func).rsplit(".", 1)[-1]
    if not name.endswith(("Operator", "Sensor")):
        return None
    task_id = literal(kw(call, "task_id"))
    task = Task(str(task_id or name), call.lineno)
    tables = info.tables.get(id(call))
    callable_ = kw(call, "python_callable")
    if tables is None and isinstance(callable_, ast.Name) and callable_.id in funcs:
        tables = info.tables.get(id(funcs[callable_.id]))
    if tables:
        task.inputs, task.outputs = list(tables[0]), list(tables[1])
    return task


def review_orchestration(path: str, tree: ast.Module, info: FileInfo) -> tuple[list[Hit], list[Job]]:
    hits: list[Hit] = []
    jobs: list[Job] = []
    names = _module_dicts(tree)
    funcs = {n.name: n for n in walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    calls = [n for n in walk(tree) if isinstance(n, ast.Call)]

    # ---- Airflow ---------------------------------------------------------------------
    dag_defs: list[tuple[ast.Call, ast.Call | ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for c in calls:
        if dotted(c.func).rsplit(".", 1)[-1] == "DAG":
            dag_defs.append((c, c))
    for f in funcs.values():
        for d in f.decorator_list:
            if dotted(d).rsplit(".", 1)[-1] == "dag":
                call = d if isinstance(d, ast.Call) else ast.Call(func=d, args=[], keywords=[])
                dag_defs.append((call, f))
    all_task_retries = [kw(c, "retries") for c in calls
                        if dotted(c.func).endswith(("Operator", "Sensor"))]
    wall_names = _module_wall_names(tree)
    project = _project_callables(tree)
    for call, owner in dag_defs:
        line = getattr(call, "lineno", None) or owner.lineno
        args = {k.arg: k.value for k in call.keywords if k.arg}
        default_args = _dict_items(args.get("default_args"), names)
        dag_id = literal(args.get("dag_id")) or (literal(call.args[0]) if call.args else None) \
            or getattr(owner, "name", "dag")
        schedule = args.get("schedule", args.get("schedule_interval", args.get("timetable")))
        body = owner if owner is not call else _with_body(tree, call, len(dag_defs) == 1)
        # catchup in default_args is ignored by Airflow (it is a DAG argument, not a task's);
        # a DAG with no schedule (`schedule=None`, run only when triggered) has no interval to
        # catch up on, so there the misplaced key changes nothing.
        dflt_catchup = default_args.get("catchup")
        if dflt_catchup is not None and "catchup" not in args and not _unscheduled(schedule):
            hits.append((dflt_catchup.lineno, "IDM108", f"DAG {dag_id}"))
        # Hygiene matters only for a DAG that runs on a schedule and changes data.
        hygiene = not _unscheduled(schedule) and not (
            all(k.arg for k in call.keywords)
            and _never_starts(args, default_args, schedule, calls)) and not _writes_nothing(
            body, funcs, owner, _dag_names(tree, call) if owner is call else None, project, tree)
        if hygiene and "catchup" not in args:
            hits.append((line, "IDM101", f"DAG {dag_id}"))
        if hygiene and "max_active_runs" not in args:
            hits.append((line, "IDM102", f"DAG {dag_id}"))
        retries = default_args.get("retries", args.get("retries"))
        delay = default_args.get("retry_delay", args.get("retry_delay"))
        if hygiene and retries is None and not any(r is not None for r in all_task_retries):
            hits.append((line, "IDM103", f"DAG {dag_id} sets no retries"))
        if hygiene:
            hits.extend(_retry_hits(call, retries, delay, f"DAG {dag_id}", default_delay=True))
        for src in (default_args, args):
            dop = src.get("depends_on_past")
            if dop is not None and literal(dop) is True:
                hits.append((dop.lineno, "IDM104", f"DAG {dag_id}"))
            sd = src.get("start_date")
            if src is default_args and "start_date" in args:
                sd = None  # the DAG's own start_date overrides the one of default_args
            if sd is not None and hygiene and (contains_wall_clock(sd) or (
                    isinstance(sd, ast.Name) and sd.id in wall_names)):
                hits.append((sd.lineno, "IDM105", f"DAG {dag_id}: {ast.unparse(sd)[:60]}"))
        job = Job(path, line, "airflow", str(dag_id), _cadence(schedule))
        for n in walk(body) if body is not None else []:
            if isinstance(n, ast.Call) and n is not call:
                t = _task_from_call(n, info, funcs)
                if t:
                    job.tasks.append(t)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n is not owner and \
                    any(dotted(d).split(".")[-1] == "task" or dotted(d).startswith("task.")
                        for d in n.decorator_list):
                ins, outs = info.tables.get(id(n), ([], []))
                job.tasks.append(Task(n.name, n.lineno, list(ins), list(outs)))
        jobs.append(job)
    # Task-level retries (operators and TaskFlow/Prefect @task decorators).
    airflow_file = "airflow" in imports_of(tree)
    for c in calls:
        short = dotted(c.func).rsplit(".", 1)[-1]
        if short.endswith(("Operator", "Sensor")) or short in {"task", "op", "asset"}:
            delay = kw(c, "retry_delay") or kw(c, "retry_delay_seconds")
            airflow_task = short.endswith(("Operator", "Sensor")) or (
                short == "task" and airflow_file and "prefect" not in imports_of(tree))
            hits.extend(_retry_hits(c, kw(c, "retries"), delay, short,
                                    default_delay=airflow_task))
            rp = kw(c, "retry_policy")
            if isinstance(rp, ast.Call):
                hits.extend(_retry_hits(rp, kw(rp, "max_retries"), kw(rp, "delay"), "RetryPolicy"))

    # ---- Dagster -----------------------------------------------------------------------
    uses_db_io = any(DB_IO_MANAGERS.search(dotted(c.func)) for c in calls)
    # Time-window partitions that start at "now - N days": the partition set slides with the
    # clock of each code load, the oldest days drop out and can never be backfilled.
    for c in calls:
        short = dotted(c.func).rsplit(".", 1)[-1]
        if short.endswith("PartitionsDefinition") and "dagster" in imports_of(tree):
            sd = kw(c, "start_date") or (c.args[0] if c.args else None)
            if sd is not None and (contains_wall_clock(sd) or any(
                    isinstance(n, ast.Name) and n.id in wall_names for n in walk(sd))):
                hits.append((sd.lineno, "IDM105", f"{short}: {ast.unparse(sd)[:60]}"))
    dagster_tasks: list[Task] = []
    for f in funcs.values():
        for d in f.decorator_list:
            short = dotted(d).rsplit(".", 1)[-1]
            if short not in {"asset", "multi_asset", "op"}:
                continue
            dcall = d if isinstance(d, ast.Call) else None
            ins, outs = info.tables.get(id(f), ([], []))
            params = [a.arg for a in f.args.args if a.arg not in {"context", "self"}]
            dagster_tasks.append(Task(f.name, f.lineno, sorted(set(ins) | set(params)),
                                      list(outs) or ([f.name] if short != "op" else [])))
            io_key = literal(kw(dcall, "io_manager_key")) if dcall is not None else None
            if dcall is not None and isinstance(io_key, str) and io_key in info.appending_io \
                    and short == "asset" and not _returns_none(f):
                # the project's IO manager appends the returned frame (it clears the table
                # only for assets whose key carries its guard word)
                guard = info.appending_io[io_key]
                if guard is None or guard.lower() not in _asset_key_parts(dcall, f):
                    partitioned = kw(dcall, "partitions_def") is not None
                    hits.append((d.lineno, "IDM107" if partitioned else "IDM202",
                                 f"asset {f.name} appended by IO manager {io_key}"))
            if dcall is not None and kw(dcall, "partitions_def") is not None and uses_db_io \
                    and short == "asset":
                meta = kw(dcall, "metadata")
                keys = set(_dict_items(meta, names)) if meta is not None else set()
                if "partition_expr" not in keys and not _returns_none(f):
                    hits.append((d.lineno, "IDM107", f"asset {f.name}"))
    schedules = []
    for c in calls:
        short = dotted(c.func).rsplit(".", 1)[-1]
        if short == "ScheduleDefinition" or short == "schedule":
            schedules.append(_cadence(kw(c, "cron_schedule")) or "?")
        elif short == "build_schedule_from_partitioned_job":
            schedules.append("from partitions")
        elif short.endswith("PartitionsDefinition") and short != "PartitionsDefinition":
            schedules.append(short.replace("PartitionsDefinition", "").lower() + " partitions")
    if dagster_tasks:
        jobs.append(Job(path, dagster_tasks[0].line, "dagster", path.rsplit("/", 1)[-1],
                        ", ".join(dict.fromkeys(schedules)) or None, dagster_tasks))

    # ---- Prefect -------------------------------------------------------------------------
    flows = {}
    for f in funcs.values():
        for d in f.decorator_list:
            if dotted(d).rsplit(".", 1)[-1] == "flow" and "prefect" in imports_of(tree):
                flows[f.name] = f
    task_funcs = {n for n, f in funcs.items() for d in f.decorator_list
                  if dotted(d).rsplit(".", 1)[-1] == "task"}
    for name, f in flows.items():
        cadence = None
        for c in calls:
            if isinstance(c.func, ast.Attribute) and c.func.attr in {"serve", "deploy", "to_deployment"} \
                    and dotted(c.func.value) == name:
                cadence = _cadence(kw(c, "cron") or kw(c, "interval") or kw(c, "rrule"))
                if cadence and kw(c, "concurrency_limit") is None:
                    hits.append((c.lineno, "IDM102", f"deployment of flow {name}"))
        job = Job(path, f.lineno, "prefect", name, cadence)
        for n in walk(f):
            if isinstance(n, ast.Call) and dotted(n.func) in task_funcs:
                tf = funcs[dotted(n.func)]
                ins, outs = info.tables.get(id(tf), ([], []))
                job.tasks.append(Task(tf.name, tf.lineno, list(ins), list(outs)))
        jobs.append(job)
    return hits, jobs


def _returns_none(f: ast.AST) -> bool:
    # An asset that writes the table itself and returns nothing does not go through the
    # IO manager's handle_output.
    return not any(isinstance(n, ast.Return) and n.value is not None for n in walk(f))


def _dag_names(tree: ast.Module, call: ast.Call) -> set[str]:
    """Names the DAG object is bound to (`dag = DAG(...)`, `with DAG(...) as dag`)."""
    out = {t.id for n in walk(tree) if isinstance(n, ast.Assign) and n.value is call
           for t in n.targets if isinstance(t, ast.Name)}
    out |= {i.optional_vars.id for n in walk(tree) if isinstance(n, (ast.With, ast.AsyncWith))
            for i in n.items if i.context_expr is call and isinstance(i.optional_vars, ast.Name)}
    return out


def _with_body(tree: ast.Module, call: ast.Call, only_dag: bool = False) -> ast.AST | None:
    """Where the DAG's tasks are: `with DAG(...):`'s block; for `dag = DAG(...)`, the
    `with dag:` blocks and the statements creating operators with `dag=dag`; failing both,
    the module when it defines this DAG only."""
    for n in walk(tree):
        if isinstance(n, (ast.With, ast.AsyncWith)) and any(i.context_expr is call for i in n.items):
            return n
    names = _dag_names(tree, call)
    if names:
        def named(e: ast.AST | None) -> bool:
            return isinstance(e, ast.Name) and e.id in names

        parts: list[ast.stmt] = [n for n in walk(tree) if isinstance(n, (ast.With, ast.AsyncWith))
                                 and any(named(i.context_expr) for i in n.items)]
        parts += [st for st in tree.body if not isinstance(st, (ast.With, ast.AsyncWith)) and any(
            isinstance(c, ast.Call) and (named(kw(c, "dag")) or any(named(a) for a in c.args))
            for c in walk(st))]
        if parts:
            return ast.Module(body=parts, type_ignores=[])
    return tree if only_dag else None


# ---- cron -----------------------------------------------------------------------------
_CRON_LINE = re.compile(r"^\s*(@\w+|(?:\S+\s+){4}\S+)\s+(.+)$")
_ENV_LINE = re.compile(r"^\s*\w+\s*=")
_LOCKERS = re.compile(r"\b(flock|run-one|lockrun|solo|setlock|chronic\s+flock|lckdo)\b")


def review_crontab(path: str, text: str) -> tuple[list[Hit], list[Job]]:
    hits: list[Hit] = []
    jobs: list[Job] = []
    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or _ENV_LINE.match(line):
            continue
        m = _CRON_LINE.match(line)
        if not m:
            continue
        schedule, command = m.group(1), m.group(2)
        fields = schedule.split()
        if not fields[0].startswith("@") and not all(re.fullmatch(r"[\d*/,\-A-Za-z]+", f) for f in fields):
            continue
        # /etc/cron.d lines carry a user name before the command.
        cmd = command.split(" #", 1)[0].strip()
        # Name the job after the script it runs, not after a trailing redirection.
        words = [w for w in cmd.split() if ">" not in w and not w.startswith("&")]
        scripts = [w for w in words if w.endswith((".py", ".sh", ".sql", ".R", ".rb", ".js"))]
        name = scripts[-1] if scripts else (words[0] if words else cmd)
        job = Job(path, i, "cron", name.rsplit("/", 1)[-1], schedule,
                  [Task(cmd[:80], i)])
        jobs.append(job)
        if schedule != "@reboot" and not _LOCKERS.search(cmd):
            hits.append((i, "IDM106", f"`{cmd[:60]}`"))
    return hits, jobs


def is_crontab(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return name in {"crontab", "cron"} or name.endswith((".cron", ".crontab")) or "/cron.d/" in path
