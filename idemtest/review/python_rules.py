"""Python files: find SQL in strings, follow one scope's writes in order, and apply the
Python-only rules (`to_sql`, wall-clock watermarks, run-time windows)."""

from __future__ import annotations

import ast
import builtins
import re
import weakref
from dataclasses import dataclass, field

from .astwalk import walk
from .sql_rules import (
    BACKFILL_NAME,
    Event,
    Hit,
    Scope,
    _cleared_tables,
    _is_staging,
    _is_state,
    _kind,
    scope_hits,
    scope_tables,
)
from .sqlparse import parse_sql, same_table
from .templating import ident, normalise_placeholders

SQL_LIKE = re.compile(
    r"^\s*(?:--[^\n]*\n\s*)*(?:"
    r"select\b[\s\S]*\bfrom\b|insert\s+(?:into|overwrite)\b|update\s+\S+\s+set\b|"
    r"delete\s+from\b|merge\s+into\b|copy\s+\S+(?:\s*\([^)]*\))?\s+(?:from|to)\b|copy\s+into\b|"
    r"truncate\s+(?:table\s+)?\S+|drop\s+(?:table|view)\b|"
    r"create\s+(?:or\s+replace\s+)?(?:(?:temp|temporary|transient)\s+)?(?:table|view)\b|"
    r"with\s+\w+\s+as\s*\(|alter\s+table\b|begin\b|start\s+transaction\b)",
    re.I,
)
WALL_CLOCK_CALLS = (
    "datetime.now", "datetime.utcnow", "datetime.today", "date.today", "time.time",
    "pendulum.now", "pendulum.today", "timezone.utcnow", "Timestamp.now", "Timestamp.utcnow",
    "Timestamp.today", "arrow.now", "arrow.utcnow", "days_ago",
)
WM_VAR = re.compile(
    r"watermark|high_?water|cursor|since|checkpoint|bookmark|(^|_)state$|"
    r"last_(run|load|sync|update|updated|ts|seen|loaded|extracted|synced|modified|success)"
)
SAVE_STATE = re.compile(
    r"^(save|set|update|write|put|store|persist|commit|advance|bump)_?"
    r"(watermark|state|cursor|checkpoint|bookmark|high_?water|last_\w+)"
)
DAY_VAR = re.compile(
    r"^(day|ds|date|run_date|target_date|yesterday|today|partition|partition_date|process_date|"
    r"load_date|batch_date|window_start|window_end|start|end|start_date|end_date|run_day)$"
)
DATE_PARAM = re.compile(
    r"day|date|ds$|^ds|start|end|window|partition|interval|logical|context|period|since|"
    r"^ts$|execution|month|hour|year|^kwargs$"
)
PARTITION_PARAM = re.compile(
    r"^(day|date|ds|month|year|hour|week|partition|partition_key|partition_date|run_date|"
    r"target_date|load_date|batch_date|process_date|logical_date|execution_date|"
    r"data_interval_start|snapshot_date|as_of|as_of_date)$"
)
INCREMENTAL = re.compile(
    r"watermark|since|cursor|last_|incremental|high_?water|checkpoint|data_interval|"
    r"logical_date|partition_key|execution_date|(^|_)ds($|_)|window"
)
SQL_OPERATORS = re.compile(
    r"(Postgres|SQLExecuteQuery|Snowflake|BigQuery|BigQueryInsertJob|BigQueryExecuteQuery|MySql|"
    r"Sqlite|Redshift\w*|Trino|DatabricksSql|Mssql|Oracle|Duck\w*|Jdbc|Vertica|Exasol|"
    r"Common\w*Sql|SqlExecute)\w*Operator$"
)
# `destination_dataset_table`: the contrib BigQueryOperator's (Airflow 1) destination
_DESTINATIONS = {"destination_project_dataset_table", "destination_dataset_table",
                 "destination_table", "destination"}
TXN_CONTEXT = {"begin", "transaction", "atomic", "begin_nested"}


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    if isinstance(node, ast.Call):
        return dotted(node.func)
    return ""


def is_wall_clock_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and any(
        (name := dotted(node.func)) == c or name.endswith("." + c) for c in WALL_CLOCK_CALLS
    )


def contains_wall_clock(node: ast.AST) -> bool:
    return any(is_wall_clock_call(n) for n in walk(node))


def kw(call: ast.Call, name: str) -> ast.expr | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def literal(node: ast.AST | None) -> object:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


@dataclass
class PyString:
    text: str
    line: int


# What `query += ...` may glue onto a query: a filter, not a second statement.
_FILTER_TAIL = re.compile(r"^\s*(?:where|and|or)\b", re.I)
# What `sql = f"{sql} ..."` may glue onto a query: a filter, an ordering or a page size.
_GLUED_TAIL = re.compile(r"^\s*(?:where|and|or|order\s+by|limit)\b", re.I)


def string_of(node: ast.AST) -> PyString | None:
    """The text of a str constant, f-string or `"...".format(args)`, placeholders replaced by
    identifiers (a positional `{}` by the name of its argument)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == "format" and isinstance(node.func.value, ast.Constant) \
            and isinstance(node.func.value.value, str):
        args = iter(node.args)
        text = re.sub(r"\{\}", lambda _: ident(ast.unparse(next(args, ast.Name("x")))),
                      node.func.value.value)
        return PyString(text, node.lineno)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return PyString(node.value, node.lineno)
    if isinstance(node, ast.JoinedStr):
        parts: list[str] = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
            elif isinstance(v, ast.FormattedValue):
                parts.append(ident(ast.unparse(v.value)))
        return PyString("".join(parts), node.lineno)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        # "insert ... values ('" + row["name"] + "')": SQL glued together with `+`
        leaves = _concat_leaves(node)
        if not (isinstance(leaves[0], ast.Constant) and isinstance(leaves[0].value, str)):
            return None
        text = "".join(x.value if isinstance(x, ast.Constant) and isinstance(x.value, str)
                       else _repeated(x) or ident(ast.unparse(x)) for x in leaves)
        return PyString(text, node.lineno)
    return None


def _repeated(node: ast.expr) -> str | None:
    """`"%s," * (len(row) - 1)`: a placeholder list built by repetition, taken once."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for side in (node.left, node.right):
            if isinstance(side, ast.Constant) and isinstance(side.value, str):
                return side.value
    return None


def _concat_leaves(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _concat_leaves(node.left) + _concat_leaves(node.right)
    return [node]


@dataclass
class FileInfo:
    path: str
    dialect: str | None
    autocommit: bool = False
    module_sql: dict[str, ast.expr] = field(default_factory=dict)
    used_in_functions: set[str] = field(default_factory=set)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    # id(FunctionDef or operator Call) -> (inputs, outputs), for the job inventory
    tables: dict[int, tuple[list[str], list[str]]] = field(default_factory=dict)
    # functions and methods that only return a SQL string (`_get_cleanup_statement`)
    sql_returners: dict[str, ast.expr] = field(default_factory=dict)
    # (line, tables) of each clear (DELETE/TRUNCATE) run by an Airflow SQL operator task
    op_clears: list[tuple[int, set[str]]] = field(default_factory=list)
    # callables whose date parameters default to the import-time clock (project.py)
    clock_defaults: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # resource keys of appending IO managers found elsewhere in the project (project.py)
    appending_io: dict[str, str | None] = field(default_factory=dict)
    # (line, file name) of each SQL operator task given a `.sql` file
    op_files: list[tuple[int, str]] = field(default_factory=list)
    # .sql file name -> the tables it inserts into, across the project (project.py)
    sql_file_writes: dict[str, set[str]] = field(default_factory=dict)
    # (line, table built from a parameter) of each to_sql append in an Airflow task function:
    # the load half of a reload whose clear is another task, maybe in another module
    task_appends: list[tuple[int, bool]] = field(default_factory=list)
    # lines of the IDM202 findings that are such a load half (dropped, the clear is IDM301)
    reload_halves: set[int] = field(default_factory=set)
    # SQL-returning functions of the project's other modules, by the name this file calls
    # them with (`queries.insert_day`): run where this file executes what they return
    imported_sql: dict[str, ast.FunctionDef] = field(default_factory=dict)


_IMPORTS: weakref.WeakKeyDictionary[ast.AST, frozenset[str]] = weakref.WeakKeyDictionary()


def imports_of(tree: ast.Module) -> frozenset[str]:
    """Top-level package names the module imports (asked ~15 times a file: kept per tree)."""
    known = _IMPORTS.get(tree)
    if known is not None:
        return known
    out: set[str] = set()
    for n in walk(tree):
        if isinstance(n, ast.Import):
            out |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module:
            out.add(n.module.split(".")[0])
    _IMPORTS[tree] = found = frozenset(out)
    return found


def _file_autocommit(tree: ast.Module) -> bool:
    imports = imports_of(tree)
    for n in walk(tree):
        if (isinstance(n, ast.keyword) and n.arg == "autocommit" and literal(n.value) is True) or (isinstance(n, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "autocommit" for t in n.targets) \
                and literal(n.value) is True):
            return True
    # DuckDB autocommits every execute() unless a transaction is begun explicitly; Dagster's
    # DuckDBResource.get_connection() hands out such a connection too.
    duck = any("duckdb" in i for i in imports)
    # The Snowflake connector autocommits each statement too (its `autocommit` defaults to
    # True server-side); a connection opened with autocommit=False says otherwise.
    snow = bool(imports & {"snowflake", "prefect_snowflake"}) and not any(
        isinstance(n, ast.keyword) and n.arg == "autocommit" and literal(n.value) is False
        for n in walk(tree))
    return (duck or snow) and not imports & {"psycopg", "psycopg2", "sqlalchemy"}


_EXEC_CALLS = {"execute", "executescript", "exec_driver_sql", "run", "run_query",
               "execute_query", "query", "sql"}


def sql_returners(tree: ast.Module) -> dict[str, ast.expr]:
    """Functions and methods whose body is one `return` of a SQL string: their callers run
    that statement (`con.execute(text(self._cleanup_sql(table)))`)."""
    out: dict[str, ast.expr] = {}
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = [b for b in f.body if not (isinstance(b, ast.Expr)
                                          and isinstance(b.value, ast.Constant))]
        if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
            s = string_of(body[0].value)
            if s is not None and SQL_LIKE.match(s.text):
                out[f.name] = body[0].value
    return out


def _returner_called(n: ast.AST, returners: dict[str, ast.expr]) -> ast.expr | None:
    """The SQL string a call of a returner gives (`self._sql(...)`, `_sql(...)`)."""
    if not isinstance(n, ast.Call):
        return None
    f = n.func
    name = f.id if isinstance(f, ast.Name) else (
        f.attr if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
        and f.value.id in {"self", "cls"} else None)
    return returners.get(name) if name else None


_KEYED_INSERT = re.compile(r"^\s*insert\s+or\s+(?:replace|ignore)\s+into\b", re.I)


def returned_sql_text(f: ast.AST) -> ast.expr | None:
    """The SQL string a function or lambda only returns (`def insert_day(day, women=False):
    return f"insert into {'t_w' if women else 't'} ..."`, `lambda w: f"drop table ..."`)."""
    if isinstance(f, ast.Lambda):
        value: ast.expr | None = f.body
    elif isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
        body = [b for b in f.body if not (isinstance(b, ast.Expr)
                                          and isinstance(b.value, ast.Constant))]
        if not body or not isinstance(body[-1], ast.Return) \
                or not all(isinstance(b, ast.Assign) for b in body[:-1]):
            return None
        value = body[-1].value
        # `q = lambda w: f"..."; query = q(women); return query`: the text is the lambda's
        bound = {t.id: b.value for b in body[:-1] if isinstance(b, ast.Assign)
                 for t in b.targets if isinstance(t, ast.Name)}
        if isinstance(value, ast.Name):
            value = bound.get(value.id)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) \
                and isinstance(bound.get(value.func.id), ast.Lambda):
            value = bound[value.func.id].body  # type: ignore[attr-defined]
    else:
        return None
    s = string_of(value) if value is not None else None
    if s is None or not (SQL_LIKE.match(s.text) or _KEYED_INSERT.match(s.text)):
        return None
    return value


def _bound_args(f: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
                call: ast.Call) -> dict[str, object]:
    """Parameter -> the literal value the call gives it (or its literal default); parameters
    given something else are left out (unknown)."""
    a = f.args
    params = [p.arg for p in a.posonlyargs + a.args]
    out: dict[str, object] = {}
    for p, d in zip(params[len(params) - len(a.defaults):], a.defaults, strict=False):
        out[p] = literal(d)
    for kwarg, kd in zip(a.kwonlyargs, a.kw_defaults, strict=False):
        if kd is not None:
            out[kwarg.arg] = literal(kd)
    given = dict(zip(params, call.args, strict=False))
    given.update({k.arg: k.value for k in call.keywords if k.arg})
    for p, v in given.items():
        val = literal(v)
        if val is None:
            out.pop(p, None)
        else:
            out[p] = val
    return out


def _render_returned(value: ast.expr, bound: dict[str, object]) -> PyString | None:
    """The text a SQL-returning function gives for these arguments: `{'t_w' if women else
    't'}` takes the branch the bound value picks (the `else` one when it is not known)."""
    if not isinstance(value, ast.JoinedStr):
        return string_of(value)
    parts: list[str] = []
    for v in value.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            parts.append(v.value)
        elif isinstance(v, ast.FormattedValue):
            x = v.value
            if isinstance(x, ast.IfExp):
                test, negate = x.test, False
                if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                    test, negate = test.operand, True
                key = test.id if isinstance(test, ast.Name) else None
                pick = (bool(bound[key]) != negate) if key in bound else False
                x = x.body if pick else x.orelse
            if isinstance(x, ast.Constant) and isinstance(x.value, str):
                parts.append(x.value)
            else:
                parts.append(ident(ast.unparse(x)))
    return PyString("".join(parts), value.lineno)


class _ScopeWalker:
    """Collects the events of one scope in source order (nested defs are other scopes)."""

    def __init__(self, info: FileInfo, scope: Scope, func: ast.AST | None) -> None:
        self.info = info
        self.scope = scope
        self.func = func
        self.wall_names: set[str] = set()
        self.seen_strings: set[int] = set()
        self.op_autocommit = False
        self.hook_names: set[str] = set()  # variables bound to an Airflow `...Hook(...)`
        # operator tasks: (first event, end event, call), and the variables bound to them
        self.op_blocks: list[tuple[int, int, ast.Call]] = []
        self.op_names: dict[str, ast.Call] = {}
        self.sql_vars: dict[str, PyString] = {}  # `query = "SELECT ..."`, for `query += ...`
        # `drop_sql = lambda w: f"drop table ..."`: local SQL-returning lambdas
        self.sql_lambdas: dict[str, ast.Lambda] = {}
        # `insert_sql = queries.insert_day(day)`: a variable holding what a SQL-returning
        # function gave, (function, call, the text keeps its own line)
        self.helper_vars: dict[str, tuple[ast.AST, ast.Call, bool]] = {}

    # --- emitting -------------------------------------------------------------
    def sql_string(self, node: ast.AST) -> None:
        s = string_of(node)
        if s is not None and isinstance(node, ast.JoinedStr) and any(
                isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.IfExp)
                for v in node.values):
            # `{'t_women' if women else 't'}`: one of two tables, taken as a SQL-returning
            # helper takes it (the `else` one), so the clear and the load name the same table
            s = _render_returned(node, {})
        if s is None or id(node) in self.seen_strings or not SQL_LIKE.match(s.text):
            return
        self.seen_strings.add(id(node))
        parsed = parse_sql(normalise_placeholders(s.text), self.info.dialect, s.line)
        for line, reason in parsed.errors:
            self.info.skipped.append((line, reason))
        for st in parsed.statements:
            self.scope.events.append(Event("sql", st.line, stmt=st))
            if self.op_autocommit:
                self.scope.events.append(Event("commit", st.line))

    def returned_sql(self, node: ast.expr, line: int) -> None:
        """The statement a SQL-returning helper gives, run where it is called."""
        s = string_of(node)
        if s is None:
            return
        parsed = parse_sql(normalise_placeholders(s.text), self.info.dialect, line)
        for st in parsed.statements:
            self.scope.events.append(Event("sql", st.line, stmt=st))

    # --- walking ------------------------------------------------------------------
    def walk_body(self, body: list[ast.stmt]) -> None:
        for i, stmt in enumerate(body):
            if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # docstring
            self.visit(stmt)

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if not isinstance(node, ast.Lambda):
                for d in node.decorator_list:
                    self.visit(d)
            return
        if isinstance(node, (ast.With, ast.AsyncWith)):
            self.visit_with(node)
            return
        if isinstance(node, ast.Assign):
            self.visit_assign(node)
            return
        if isinstance(node, ast.AugAssign):
            self.visit_augassign(node)
        if isinstance(node, ast.Call):
            if string_of(node) is not None:  # "...".format(...)
                self.seen_strings.add(id(node.func.value))  # type: ignore[attr-defined]
                self.sql_string(node)
            self.visit_call(node)
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and self.func is not None:
            const = self.info.module_sql.get(node.id)
            if const is not None:
                self.sql_string(const)
            return
        if isinstance(node, (ast.Constant, ast.JoinedStr)):
            if self.func is None and any(id(node) == id(v) for v in self._module_used_values()):
                return  # emitted where a function uses it
            self.sql_string(node)
            return
        if isinstance(node, ast.BinOp) and self.func is not None and string_of(node) is not None:
            # the glued statement is the SQL, not its first fragment
            self.sql_string(node)
            self.seen_strings |= {id(x) for x in walk(node)
                                  if isinstance(x, (ast.BinOp, ast.Constant, ast.JoinedStr))}
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    def _module_used_values(self) -> list[ast.expr]:
        return [v for k, v in self.info.module_sql.items() if k in self.info.used_in_functions]

    def visit_with(self, node: ast.With | ast.AsyncWith) -> None:
        txn = False
        for item in node.items:
            self.visit(item.context_expr)
            ctx = item.context_expr
            name = dotted(ctx)
            last = name.rsplit(".", 1)[-1]
            if last in TXN_CONTEXT or (isinstance(ctx, ast.Name) and not self.scope.autocommit) \
                    or (last == "connect" and not self.scope.autocommit):
                txn = True
        if txn:
            self.scope.events.append(Event("begin", node.lineno))
        for stmt in node.body:
            self.visit(stmt)
        if txn:
            self.scope.events.append(Event("commit", node.end_lineno or node.lineno))

    def visit_augassign(self, node: ast.AugAssign) -> None:
        """`query += f" WHERE updated_at > '{last}'"`: a filter glued onto a query built just
        before is judged as part of it (alone, neither piece shows the cursor it reads)."""
        if not (isinstance(node.op, ast.Add) and isinstance(node.target, ast.Name)):
            return
        base = self.sql_vars.get(node.target.id)
        frag = string_of(node.value)
        if base is None or frag is None or not _FILTER_TAIL.match(frag.text):
            return
        # pad so each piece keeps its own source lines
        gap = frag.line - base.line - base.text.count("\n")
        glued = base.text + ("\n" * gap if gap > 0 else " ") + frag.text
        self.seen_strings.add(id(node.value))
        parsed = parse_sql(normalise_placeholders(glued), self.info.dialect, base.line)
        for st in parsed.statements:
            self.scope.events.append(Event("sql", st.line, stmt=st))

    def _glue_onto_itself(self, name: str, value: ast.expr) -> bool:
        """`sql = f"{sql} where OBJECTID > %(left)s"`, then `sql = f"{sql} order by ... LIMIT
        100"`: a query rebound to itself plus a filter or an ordering is judged whole, like
        `query += ...` (alone, neither piece shows the cursor it reads or how it pages)."""
        base = self.sql_vars.get(name)
        if base is None or not isinstance(value, ast.JoinedStr) or not value.values:
            return False
        head = value.values[0]
        if not (isinstance(head, ast.FormattedValue) and isinstance(head.value, ast.Name)
                and head.value.id == name):
            return False
        frag = string_of(ast.JoinedStr(values=value.values[1:], lineno=value.lineno))
        if frag is None or not _GLUED_TAIL.match(frag.text):
            return False
        gap = value.lineno - base.line - base.text.count("\n")
        glued = base.text + ("\n" * gap if gap > 0 else " ") + frag.text
        self.seen_strings.add(id(value))
        self.sql_vars[name] = PyString(glued, base.line)
        parsed = parse_sql(normalise_placeholders(glued), self.info.dialect, base.line)
        for st in parsed.statements:
            self.scope.events.append(Event("sql", st.line, stmt=st))
        return True

    def visit_assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if len(names) == 1 and len(node.targets) == 1 \
                and self._glue_onto_itself(names[0], node.value):
            return
        if len(names) == 1:
            self.note_helper_sql(names[0], node.value)
        text = string_of(node.value)
        if len(names) == 1 and text is not None and SQL_LIKE.match(text.text):
            self.sql_vars[names[0]] = text
        if isinstance(node.value, ast.Call) and dotted(node.value.func).endswith("Hook"):
            self.hook_names.update(names)
        if isinstance(node.value, ast.Call) and SQL_OPERATORS.search(
                dotted(node.value.func).rsplit(".", 1)[-1]):
            self.op_names.update({n: node.value for n in names})
        if not contains_wall_clock(node.value):
            return
        self.wall_names.update(names)
        if any(WM_VAR.search(n.lower()) for n in names):
            self.info.hits.append((node.lineno, "IDM401", f"{names[0]} from the wall clock"))
        elif (self.func is not None and any(DAY_VAR.match(n.lower()) for n in names)
              and not isinstance(node.value, (ast.BoolOp, ast.IfExp))
              and not self._has_date_param()):
            self.info.hits.append((node.lineno, "IDM501", f"{names[0]} from the wall clock"))

    def _has_date_param(self) -> bool:
        f = self.func
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return False
        a = f.args
        params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
        params += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
        return any(DATE_PARAM.search(p.lower()) for p in params)

    def note_helper_sql(self, name: str, value: ast.expr) -> None:
        if isinstance(value, ast.Lambda) and returned_sql_text(value) is not None:
            self.sql_lambdas[name] = value
        elif isinstance(value, ast.Call):
            helper = self._sql_helper(value)
            if helper is not None:
                self.helper_vars[name] = (helper[0], value, helper[1])

    def _sql_helper(self, call: ast.Call) -> tuple[ast.AST, bool] | None:
        """The SQL-returning function a call runs: a local lambda (its text is in this file)
        or a function of an imported project module (its text is elsewhere)."""
        name = dotted(call.func)
        if isinstance(call.func, ast.Name) and name in self.sql_lambdas:
            return self.sql_lambdas[name], True
        f = self.info.imported_sql.get(name)
        return (f, False) if f is not None else None

    def helper_sql(self, arg: ast.expr, line: int) -> None:
        """`conn.execute(queries.insert_day(day))`, `conn.execute(insert_sql)`: the statement
        the helper returns runs here (on its own line when it is written in this file)."""
        if isinstance(arg, ast.Name) and arg.id in self.helper_vars:
            f, call, own_line = self.helper_vars[arg.id]
        elif isinstance(arg, ast.Call) and (h := self._sql_helper(arg)) is not None:
            (f, own_line), call = h, arg
        else:
            return
        value = returned_sql_text(f)
        if value is None or not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef,
                                               ast.Lambda)):
            return
        s = _render_returned(value, _bound_args(f, call))
        if s is None:
            return
        parsed = parse_sql(normalise_placeholders(s.text), self.info.dialect,
                           s.line if own_line else line)
        for st in parsed.statements:
            self.scope.events.append(Event("sql", st.line if own_line else line, stmt=st))

    def visit_call(self, node: ast.Call) -> None:
        name = dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        if last in _EXEC_CALLS and node.args and (self.helper_vars or self.sql_lambdas
                                                  or self.info.imported_sql):
            self.helper_sql(node.args[0], node.lineno)
        if last in _EXEC_CALLS and self.info.sql_returners:
            # only where it is run: the same helper handed to a log line executes nothing
            for a in list(node.args) + [k.value for k in node.keywords]:
                for n in walk(a):
                    returned = _returner_called(n, self.info.sql_returners)
                    if returned is not None:
                        self.returned_sql(returned, node.lineno)
        is_operator = bool(SQL_OPERATORS.search(last))
        # An Airflow DB hook's run() is one transaction of its own: it commits on return.
        hook_run = last == "run" and isinstance(node.func, ast.Attribute) and (
            "hook" in dotted(node.func.value).lower()
            or dotted(node.func.value) in self.hook_names)
        if hook_run:
            self.scope.events.append(Event("begin", node.lineno))
        saved = self.op_autocommit
        if is_operator:
            self.op_autocommit = literal(kw(node, "autocommit")) is True
            start = len(self.scope.events)
        for child in ast.iter_child_nodes(node):
            self.visit(child)
        if is_operator:
            self.op_autocommit = saved
            if kw(node, "write_disposition") is not None:
                self.job_load(node)  # its query's result written into a destination table
            # Each SQL task runs in its own connection: it has committed when the next starts.
            op_scope = Scope(self.scope.file, "op", self.scope.events[start:])
            self.info.op_clears += [(ev.line, _cleared_tables(ev.stmt)) for ev in op_scope.events
                                    if ev.kind == "sql" and ev.stmt is not None
                                    and _kind(ev.stmt) == "clear"]
            self.info.tables[id(node)] = scope_tables(op_scope)
            sql = literal(kw(node, "sql"))
            if isinstance(sql, str) and sql.strip().lower().endswith(".sql"):
                self.info.op_files.append((node.lineno, sql.strip().rsplit("/", 1)[-1]))
            self.scope.events.append(Event("commit", node.lineno))
            self.op_blocks.append((start, len(self.scope.events), node))
            return
        if (hook_run or last in {"execute", "executescript"}) and node.args \
                and self._opaque(node.args[0]):
            # SQL handed in by the caller (`self.pre_sql`, a parameter): it may clear the
            # target, so what follows is not known to be a bare append.
            self.scope.events.append(Event("opaque", node.lineno))
        if hook_run:
            self.scope.events.append(Event("commit", node.end_lineno or node.lineno))
            return
        if isinstance(node.func, ast.Attribute):
            if last == "insert_rows":
                self.insert_rows(node)
            elif last.startswith("load_table_from_"):
                self.bigquery_load(node)
            elif last in {"commit", "rollback"} and not node.args:
                self.scope.events.append(Event("commit", node.lineno))
            elif last == "begin" and not node.args:
                self.scope.events.append(Event("begin", node.lineno))
            elif last in {"to_sql", "to_gbq"}:
                self.to_sql(node)
            elif last == "copy_from" and len(node.args) + len(node.keywords) >= 2:
                self.copy_from(node)
        if last == "write_pandas":
            self.write_pandas(node)
        if kw(node, "write_disposition") is not None:
            self.job_load(node)
        if SAVE_STATE.match(last.lower()) or name.endswith("Variable.set"):
            args = list(node.args) + [k.value for k in node.keywords]
            if any(contains_wall_clock(a) or (isinstance(a, ast.Name) and a.id in self.wall_names)
                   for a in args):
                self.info.hits.append((node.lineno, "IDM401", f"{last}() given the wall clock"))
            self.scope.events.append(Event("save_state", node.lineno))

    def order_by_dependencies(self, body: ast.AST) -> None:
        """Put the operator tasks' events in the order the DAG runs them (`a >> b`,
        `b << a`, `a.set_downstream(b)`), not the order they are written in: a DELETE task
        declared after the load it precedes still runs first."""
        blocks = self.op_blocks
        if len(blocks) < 2:
            return
        index = {id(call): i for i, (_, _, call) in enumerate(blocks)}

        def ends(n: ast.AST) -> list[int]:
            if isinstance(n, ast.BinOp):
                return ends(n.right)  # `a >> b` is b
            items = n.elts if isinstance(n, (ast.List, ast.Tuple)) else [n]
            return [index[id(self.op_names[e.id])] for e in items
                    if isinstance(e, ast.Name) and e.id in self.op_names
                    and id(self.op_names[e.id]) in index]

        after: dict[int, set[int]] = {i: set() for i in range(len(blocks))}
        for n in walk(body):
            pairs: list[tuple[ast.AST, ast.AST]] = []
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.RShift):
                pairs.append((n.left, n.right))
            elif isinstance(n, ast.BinOp) and isinstance(n.op, ast.LShift):
                pairs.append((n.right, n.left))
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.args \
                    and n.func.attr in {"set_downstream", "set_upstream"}:
                this, other = n.func.value, n.args[0]
                pairs.append((this, other) if n.func.attr == "set_downstream"
                             else (other, this))
            for up, down in pairs:
                for u in ends(up):
                    after[u] |= {d for d in ends(down) if d != u}
        if not any(after.values()):
            return
        before = {i: sum(i in v for v in after.values()) for i in after}
        order: list[int] = []
        ready = sorted(i for i, c in before.items() if c == 0)
        while ready:
            i = ready.pop(0)
            order.append(i)
            for d in sorted(after[i]):
                before[d] -= 1
                if before[d] == 0:
                    ready.append(d)
            ready.sort()
        if len(order) != len(blocks) or order == sorted(order):
            return  # a cycle (an unread edge) or already in order
        events = self.scope.events
        spans = [events[a:b] for a, b, _ in blocks]
        out: list[Event] = []
        pos, slot = 0, 0
        for a, b, _ in blocks:  # the blocks' places keep the other events around them
            out += events[pos:a] + spans[order[slot]]
            pos, slot = b, slot + 1
        self.scope.events = out + events[pos:]

    def _table_arg(self, node: ast.Call, pos: int, name: str) -> str | None:
        table_node = node.args[pos] if len(node.args) > pos else kw(node, name)
        table = literal(table_node)
        if not isinstance(table, str):
            table = ident(ast.unparse(table_node)) if table_node is not None else None
        return table.lower() if table else None

    def copy_from(self, node: ast.Call) -> None:
        """psycopg2 `cursor.copy_from(file, table)`: a COPY ... FROM STDIN in the cursor's
        transaction (committed with it, or at once on an autocommit connection)."""
        table = self._table_arg(node, 1, "table")
        if not table:
            return
        name = table if re.fullmatch(r"[\w.]+", table) else ident(table)
        parsed = parse_sql(f"COPY {name} FROM STDIN", self.info.dialect or "postgres",
                           node.lineno)
        for st in parsed.statements:
            self.scope.events.append(Event("sql", node.lineno, stmt=st))

    def write_pandas(self, node: ast.Call) -> None:
        """snowflake write_pandas(conn, df, table_name): a COPY that appends unless
        overwrite=True."""
        mode = "replace" if literal(kw(node, "overwrite")) is True else "append"
        self.scope.events.append(Event("rows", node.lineno,
                                       table=self._table_arg(node, 2, "table_name"),
                                       if_exists=mode))

    def bigquery_load(self, node: ast.Call) -> None:
        """client.load_table_from_*(source, destination, job_config=...): a load job appends
        (WRITE_APPEND) unless its job configuration says otherwise."""
        cfg = kw(node, "job_config")
        if cfg is not None and not isinstance(cfg, ast.Call):
            return  # configured elsewhere: unknown mode
        wd_node = kw(cfg, "write_disposition") if isinstance(cfg, ast.Call) else None
        if wd_node is not None:
            wd = literal(wd_node)
            text = wd if isinstance(wd, str) else dotted(wd_node)
            if not text.endswith("APPEND"):
                return  # WRITE_TRUNCATE / WRITE_EMPTY
        self.scope.events.append(Event("rows", node.lineno,
                                       table=self._table_arg(node, 1, "destination"),
                                       if_exists="append"))

    def job_load(self, node: ast.Call) -> None:
        """A load job given a write mode and a destination (GCSToBigQueryOperator, a
        BigQuery job): a write of its own, committed when the job ends. Its append mode is
        operator_appends' business; here it only orders the writes (DELETE, then load)."""
        dest = next((k.value for k in node.keywords if k.arg in _DESTINATIONS), None)
        if dest is None:
            return
        s = string_of(dest)
        table = s.text if s is not None else ident(ast.unparse(dest))
        self.scope.events.append(Event("load", node.lineno, table=table.lower()))

    def _opaque(self, arg: ast.expr) -> bool:
        f = self.func
        params: set[str] = set()
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = {p.arg for p in f.args.posonlyargs + f.args.args + f.args.kwonlyargs}
        return (isinstance(arg, ast.Attribute) and dotted(arg).startswith("self.")) or (
            isinstance(arg, ast.Name) and arg.id in params)

    def insert_rows(self, node: ast.Call) -> None:
        """DbApiHook.insert_rows(table, rows, commit_every=N, replace=False): appends rows and
        commits every N of them, on its own connection."""
        table_node = node.args[0] if node.args else kw(node, "table")
        table = literal(table_node)
        if not isinstance(table, str):
            table = ident(ast.unparse(table_node)) if table_node is not None else None
        upsert = literal(kw(node, "replace")) is True
        self.scope.events.append(Event(
            "rows", node.lineno, table=table.lower() if table else None,
            if_exists="upsert" if upsert else "append"))

    def to_sql(self, node: ast.Call) -> None:
        """DataFrame.to_sql(name, con, if_exists=...) and pandas-gbq's
        DataFrame.to_gbq(destination_table, if_exists=...): the same write modes."""
        name_kw = "destination_table" if node.func.attr == "to_gbq" else "name"  # type: ignore[attr-defined]
        table_node = node.args[0] if node.args else kw(node, name_kw)
        table = literal(table_node)
        if not isinstance(table, str):
            table = ident(ast.unparse(table_node)) if table_node is not None else None
        if_exists = literal(kw(node, "if_exists")) or "fail"
        if _empty_frame(node.func.value):  # type: ignore[attr-defined]
            # df.head(0).to_sql(...) loads no row: it (re)creates the table for what follows
            if if_exists != "replace":
                return
            if_exists = "create"
        schema = literal(kw(node, "schema"))
        if table and isinstance(schema, str):
            table = f"{schema}.{table}"
        self.scope.events.append(Event(
            "to_sql", node.lineno, table=table.lower() if table else None,
            if_exists=str(if_exists), has_method=kw(node, "method") is not None,
            fixed_table=isinstance(literal(table_node), str)))


def _empty_frame(node: ast.expr) -> bool:
    """`df[:0]`, `df.iloc[:0]`, `df.head(0)`: a frame of no rows (its columns only)."""
    if isinstance(node, ast.Subscript):
        sl = node.slice
        return isinstance(sl, ast.Slice) and sl.upper is not None and literal(sl.upper) == 0
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == "head" and node.args:
        return literal(node.args[0]) == 0
    return False


def _scope_context(scope: Scope, node: ast.AST, name: str, path: str) -> None:
    idents: set[str] = set()
    for n in walk(node):
        if isinstance(n, ast.Name):
            idents.add(n.id.lower())
        elif isinstance(n, ast.arg):
            idents.add(n.arg.lower())
        elif isinstance(n, ast.Attribute):
            idents.add(n.attr.lower())
        elif isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub) and \
                isinstance(n.right, ast.Call) and dotted(n.right.func).split(".")[-1] in {
                    "timedelta", "Timedelta", "relativedelta", "duration"}:
            scope.lookback = True
    scope.incremental = any(INCREMENTAL.search(i) for i in idents)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = node.args
        scope.partitioned = any(PARTITION_PARAM.match(p.arg.lower())
                                for p in a.posonlyargs + a.args + a.kwonlyargs)
    scope.lookback = scope.lookback or any("lookback" in i for i in idents)
    stem = path.rsplit("/", 1)[-1].lower()
    scope.backfill = bool(BACKFILL_NAME.search(name.lower()) or BACKFILL_NAME.search(stem))


_WRITE_SQL = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(insert|bulk\s+insert|merge|copy|upsert|update\s+\S+\s+set|"
                        r"delete\s+from|truncate|replace\s+into)\b", re.I)
LOAD_CALLS = {"to_sql", "to_gbq", "insert_rows", "write_pandas", "load_table_from_dataframe",
              "load_table_from_uri", "load_table_from_file", "copy_expert", "copy_from",
              "executemany", "bulk_insert_mappings", "bulk_save_objects", "insert_many",
              "insert_one", "bulk_load", "upsert"}
_BROAD = {"Exception", "BaseException"}
# a database library's base error: every failed write raises one, so around a load it is as
# broad as Exception
_DB_BASE_ERRORS = {"SQLAlchemyError", "DBAPIError", "DatabaseError", "psycopg2.Error",
                   "psycopg.Error", "connector.Error", "sqlite3.Error", "pymysql.Error",
                   # the cloud storage and warehouse clients' base errors, likewise
                   "GoogleCloudError", "GoogleAPICallError", "GoogleAPIError", "ClientError",
                   "BotoCoreError", "AzureError"}
# object-store writes, and helpers named for what they do (`write_csv_s3`, `insert_batch`)
_OBJECT_WRITES = {"put_object", "upload_file", "upload_fileobj", "upload_blob",
                  "upload_from_filename", "upload_from_string"}
_WRITE_HELPER = re.compile(r"^(write|insert|upsert|merge)_")


def _is_load(node: ast.AST, returners: dict[str, ast.expr] | None = None) -> bool:
    """Does `node` write data: a load call, an object-store upload, a helper named for a
    write, a write statement in a string (or returned by a helper it calls), or dlt's run()?"""
    for n in walk(node):
        returned = _returner_called(n, returners or {})
        if returned is not None:
            rs = string_of(returned)
            if rs is not None and _WRITE_SQL.match(rs.text):
                return True
        if isinstance(n, ast.Call):
            name = dotted(n.func)
            last = name.rsplit(".", 1)[-1]
            if last in LOAD_CALLS or last in _OBJECT_WRITES or _WRITE_HELPER.match(last) or (
                    last == "run" and "pipeline" in name.lower()) or (
                    # an AWS Glue sink: `glueContext.write_dynamic_frame.from_options(...)`
                    last.startswith("from_") and "write_dynamic_frame" in name):
                return True
            # a database transaction committed: whatever it wrote fails with it (a consumer's
            # offset commit is IDM405's business)
            if last == "commit" and not n.args and not re.search(r"consumer|kafka|offset",
                                                                name, re.I):
                return True
        s = string_of(n) if isinstance(n, (ast.Constant, ast.JoinedStr)) else None
        if s is not None and _WRITE_SQL.match(s.text):
            return True
    return False


_CREATE_SQL = re.compile(r"^\s*create\s+(table|schema)\b", re.I)


_DROP_SQL = re.compile(r"^\s*drop\s+(table|view|schema)\b", re.I)


def _drops_only(body: list[ast.stmt]) -> bool:
    """The block's SQL only drops (`DROP TABLE IF EXISTS t` then commit) and it calls no load:
    its commit writes no rows, and a failed drop loses none (what comes next fails loudly on
    the table still there, or does not care)."""
    texts = [st.text for b in body for n in walk(b)
             if isinstance(n, (ast.Constant, ast.JoinedStr, ast.Call))
             and (st := string_of(n)) is not None and st.text.strip()]
    sql = [x for x in texts if _DROP_SQL.match(x) or _WRITE_SQL.match(x) or _CREATE_SQL.match(x)]
    calls = {dotted(n.func).rsplit(".", 1)[-1] for b in body for n in walk(b)
             if isinstance(n, ast.Call)}
    return bool(sql) and all(_DROP_SQL.match(x) for x in sql) and not calls & (
        LOAD_CALLS | _OBJECT_WRITES) and not any(_WRITE_HELPER.match(c) for c in calls)


_CONTAINER_SQL = re.compile(r"^\s*create\s+(schema|database)\b|^\s*create\s+table\b(?![\s\S]*\bas\b"
                            r"\s*\(?\s*(select|with)\b)", re.I)


def _creates_containers_only(body: list[ast.stmt]) -> bool:
    """The block's SQL only creates an empty container (`CREATE SCHEMA IF NOT EXISTS s`, a
    `CREATE TABLE` with no `AS SELECT`) and it calls no load: a failure swallowed there loses
    no rows (the load that needs the schema fails loudly on its own)."""
    texts = [st.text for b in body for n in walk(b)
             if isinstance(n, (ast.Constant, ast.JoinedStr, ast.Call))
             and (st := string_of(n)) is not None and st.text.strip()]
    sql = [x for x in texts if _DROP_SQL.match(x) or _WRITE_SQL.match(x) or _CREATE_SQL.match(x)
           or _CONTAINER_SQL.match(x)]
    calls = {dotted(n.func).rsplit(".", 1)[-1] for b in body for n in walk(b)
             if isinstance(n, ast.Call)}
    return bool(sql) and all(_CONTAINER_SQL.match(x) for x in sql) and not calls & (
        LOAD_CALLS | _OBJECT_WRITES) and not any(_WRITE_HELPER.match(c) for c in calls)


_WEB_FRAMEWORKS = {"fastapi", "flask", "starlette", "django", "aiohttp", "sanic", "quart"}
_WEB_APPS = {"FastAPI", "Flask", "APIRouter", "Blueprint", "Starlette", "Sanic", "Quart"}


def serves_requests(tree: ast.Module) -> bool:
    """The module builds a web application (`app = FastAPI()`, `Flask(__name__)`) and imports
    no orchestrator: its functions answer requests. A failure there goes back to the caller of
    the request, no scheduler retries or reports it as a run: not IDM206's risk."""
    imports = imports_of(tree)
    return bool(imports & _WEB_FRAMEWORKS) and not imports & _ORCHESTRATORS and any(
        isinstance(n, ast.Call) and dotted(n.func).rsplit(".", 1)[-1] in _WEB_APPS
        for n in walk(tree))


def _reloads(body: list[ast.stmt]) -> bool:
    """The handler loads the data itself, outside any `try` of its own (`except: df.to_sql(t,
    if_exists="replace")` after a failed append): the fallback write fails loudly if it fails,
    so the load's failure is not swallowed (what the fallback does to the table is its own
    finding)."""
    guarded = {id(x) for b in body for t in walk(b) if isinstance(t, ast.Try)
               for x in walk(t)}
    return any(isinstance(n, ast.Call) and id(n) not in guarded
               and dotted(n.func).rsplit(".", 1)[-1] in LOAD_CALLS
               for b in body for n in walk(b))


def _local_loaders(tree: ast.Module) -> set[str]:
    """Module-level functions of this module whose body calls a load (`df.to_sql(...)`,
    `copy_expert`, ...) outside any `try` of their own: `def load_data(df): df.to_sql(...)`.
    A `try` calling one of them by name is around a load, as if the call were inline."""
    names: set[str] = set()
    for f in tree.body:
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        guarded = {id(x) for t in walk(f) if isinstance(t, ast.Try) for x in walk(t)}
        if any(isinstance(n, ast.Call) and id(n) not in guarded
               and dotted(n.func).rsplit(".", 1)[-1] in LOAD_CALLS for n in walk(f)):
            names.add(f.name)
    return names


def swallowed_load_errors(tree: ast.Module, loaders: set[str] | None = None) -> list[Hit]:
    """IDM206: a broad `except` around a load whose handler neither re-raises nor exits.
    `loaders`: names of functions of other project modules that write data (imported here);
    a `try` calling one of them is around a load too."""
    hits: list[Hit] = []
    if serves_requests(tree):
        return hits
    returners = sql_returners(tree)
    # variables holding a write statement built before the `try` (`sql = f"BULK INSERT {t} ..."`
    # then `conn.execute(text(sql))` inside it)
    sql_vars = {a.targets[0].id for a in walk(tree) if isinstance(a, ast.Assign)
                and len(a.targets) == 1 and isinstance(a.targets[0], ast.Name)
                and isinstance(a.value, (ast.Constant, ast.JoinedStr))
                and (st := string_of(a.value)) is not None and _WRITE_SQL.match(st.text)}

    def runs_sql_var(node: ast.AST) -> bool:
        return any(isinstance(c, ast.Call) and dotted(c.func).rsplit(".", 1)[-1] in {"execute", "text"}
                   and any(isinstance(a, ast.Name) and a.id in sql_vars for a in c.args)
                   for c in walk(node))

    loader_names = (loaders or set()) | _local_loaders(tree)

    def calls_loader(node: ast.AST) -> bool:
        return bool(loader_names) and any(isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                                     and c.func.id in loader_names for c in walk(node))

    for t in walk(tree):
        if not isinstance(t, ast.Try) or not any(
                _is_load(s, returners) or runs_sql_var(s) or calls_loader(s) for s in t.body):
            continue
        if _drops_only(t.body) or _creates_containers_only(t.body):
            continue
        if any(isinstance(c, ast.Call) and dotted(c.func).rsplit(".", 1)[-1] == "to_sql"
               and literal(kw(c, "if_exists")) == "replace"
               for s in t.finalbody for c in walk(s)):
            # the `finally` replaces the table whatever happened above (its own failure is not
            # caught here): a swallowed failure of the `try` loses nothing
            continue
        for h in t.handlers:
            names = {dotted(e) for e in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type])} \
                if h.type is not None else {"BaseException"}
            if not names & _BROAD and not any(
                    n.rsplit(".", 1)[-1] in _DB_BASE_ERRORS
                    or ".".join(n.rsplit(".", 2)[-2:]) in _DB_BASE_ERRORS for n in names):
                continue
            escapes = any(isinstance(n, ast.Raise) or (isinstance(n, ast.Call) and _fails(n))
                          for b in h.body for n in walk(b))
            # `except: CREATE TABLE ...`: the handler's fallback runs SQL of its own, whose
            # failure raises (truncate-or-create); nothing is swallowed
            fallback = any(isinstance(n, (ast.Constant, ast.JoinedStr)) and (st := string_of(n))
                           is not None and _CREATE_SQL.match(st.text)
                           for b in h.body for n in walk(b)) or _reloads(h.body)
            if not escapes and not fallback:
                hits.append((h.lineno, "IDM206", "the load's failure is logged or ignored"))
    return hits


_SUCCESS_WORD = re.compile(r"^(succeeded|success|successful|completed|complete|ok)$", re.I)


def _all_done(v: ast.expr | None) -> bool:
    return v is not None and (dotted(v).rsplit(".", 1)[-1] == "ALL_DONE"
                              or str(literal(v)).lower() == "all_done")


def _marks_success(f: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The body records the job as succeeded whatever happened: `success=True`, or a
    status keyword given a success word (`task_status="succeeded"`)."""
    for n in walk(f):
        if not isinstance(n, ast.Call):
            continue
        for k in n.keywords:
            v = literal(k.value)
            if k.arg and (("success" in k.arg.lower() and v is True) or (
                    "status" in k.arg.lower() and isinstance(v, str) and _SUCCESS_WORD.match(v))):
                return True
    return False


def success_whatever_upstream(tree: ast.Module) -> list[Hit]:
    """IDM206: an Airflow task run with trigger_rule ALL_DONE (it runs after upstream failures
    too) that marks the job succeeded. Such a final task records success for a run whose loads
    failed, and as the DAG's leaf it turns the run green: nothing retries."""
    if "airflow" not in imports_of(tree):
        return []
    funcs = {f.name: f for f in walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    hits: list[Hit] = []
    for f in funcs.values():
        for d in f.decorator_list:
            if isinstance(d, ast.Call) and dotted(d.func).rsplit(".", 1)[-1] == "task" \
                    and _all_done(kw(d, "trigger_rule")) and _marks_success(f):
                hits.append((d.lineno, "IDM206", f"{f.name} runs after failures (ALL_DONE) "
                                                 "and marks the job succeeded"))
    for n in walk(tree):
        cb = kw(n, "python_callable") if isinstance(n, ast.Call) else None
        if isinstance(n, ast.Call) and isinstance(cb, ast.Name) and cb.id in funcs \
                and _all_done(kw(n, "trigger_rule")) and _marks_success(funcs[cb.id]):
            hits.append((n.lineno, "IDM206", f"{cb.id} runs after failures (ALL_DONE) "
                                             "and marks the job succeeded"))
    return hits


_CLEAR_HELPER = re.compile(r"^(truncate|clear|empty|purge|wipe)(_\w+)?$|"
                           r"^delete_(all|rows|table|data|from|partition)\w*$")
_LOAD_HELPER = re.compile(r"^(insert|load|append|copy|write|upsert|bulk_insert)(_\w+)?$")


def _table_refs(call: ast.Call) -> set[str]:
    """The table a helper call names: variables (or keywords) called `table...`, literals."""
    refs: set[str] = set()
    pairs = [(None, a) for a in call.args] + [(k.arg, k.value) for k in call.keywords]
    for arg, v in pairs:
        tableish = bool(arg and "table" in arg)
        if isinstance(v, ast.Name) and (tableish or "table" in v.id.lower()):
            refs.add("name:" + v.id)
        elif isinstance(v, ast.Constant) and isinstance(v.value, str) and tableish:
            refs.add("literal:" + v.value.lower())
    return refs


def _asset_key_parts(dec: ast.Call, f: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The components of an asset's key: `key_prefix` (or `key`) and its name, lower case."""
    named = literal(kw(dec, "name"))
    parts = {(named if isinstance(named, str) else f.name).lower()}
    for arg in ("key_prefix", "key"):
        v = literal(kw(dec, arg))
        if isinstance(v, str):
            parts |= {p.lower() for p in v.split("/")}
        elif isinstance(v, (list, tuple)):
            parts |= {str(p).lower() for p in v}
    return parts


def asset_clear_then_io_manager_load(scopes: list[tuple[ast.AST | None, Scope]]) -> list[Hit]:
    """IDM301: a Dagster asset that deletes rows of a table and commits, feeding a downstream
    asset whose IO manager writes that table (its key names it). Each asset is a step of its
    own: a failure of the write step (or a retry of it alone) leaves the rows deleted."""
    assets: dict[str, tuple[ast.FunctionDef | ast.AsyncFunctionDef, ast.Call | None, Scope]] = {}
    for f, sc in scopes:
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for d in f.decorator_list:
            if dotted(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1] == "asset":
                assets[f.name] = (f, d if isinstance(d, ast.Call) else None, sc)
    hits: list[Hit] = []
    for name, (_, _, sc) in assets.items():
        cleared = [(ev.line, t) for ev in sc.events
                   if ev.kind == "sql" and ev.stmt is not None and _kind(ev.stmt) == "clear"
                   for t in _cleared_tables(ev.stmt) if not _is_staging(t)]
        if not cleared:
            continue
        for g, dec, _ in assets.values():
            if dec is None or kw(dec, "io_manager_key") is None or name not in {
                    a.arg for a in g.args.posonlyargs + g.args.args + g.args.kwonlyargs}:
                continue
            parts = _asset_key_parts(dec, g)
            for line, t in cleared:
                names = [p.strip('"`[]').lower() for p in t.split(".")]
                if names[-1] in parts and all(p in parts for p in names[-2:]):
                    hits.append((line, "IDM301", f"{t} cleared in asset {name}, written by the "
                                                 f"IO manager of asset {g.name}"))
    return hits


def operator_clear_then_python_load(tree: ast.Module, info: FileInfo,
                                    scopes: list[tuple[ast.AST | None, Scope]]) -> list[Hit]:
    """IDM301: a SQL operator task deletes or truncates a table that a Python task of the
    same DAG file loads (a TaskFlow `@task`, or a `python_callable`). Two tasks, two
    transactions: a failed or retried load leaves the table emptied."""
    if not info.op_clears:
        return []
    callables = {v.id for n in walk(tree) if isinstance(n, ast.Call)
                 for v in [kw(n, "python_callable")] if isinstance(v, ast.Name)}
    loaded: set[str] = set()
    for f, sc in scopes:
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) or not (
                f.name in callables or any(
                    dotted(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1] == "task"
                    for d in f.decorator_list)):
            continue
        loaded |= {ev.table for ev in sc.events
                   if ev.kind in {"to_sql", "rows", "load"} and ev.table}
    hits: list[Hit] = []
    for line, tables in info.op_clears:
        for t in sorted(tables):
            if not _is_staging(t) and any(same_table(t, w) for w in loaded):
                hits.append((line, "IDM301", f"{t} is cleared by an operator task and loaded "
                                             "by a Python task"))
    return hits


def _airflow_task(f: ast.AST, callables: set[str]) -> bool:
    return isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
        f.name in callables or any(
            dotted(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1] == "task"
            for d in f.decorator_list))


def _param_table(t: str, f: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Is the table name built from the function's parameters (`f"TRUNCATE {schema}.{table}"`,
    placeholders keep the variable's name, `_ref` added to reserved words)?"""
    params = {a.arg for a in f.args.args + f.args.kwonlyargs}
    return any(p.removesuffix("_ref") in params for p in t.split("."))


def task_clear_then_task_load(tree: ast.Module, info: FileInfo,
                              scopes: list[tuple[ast.AST | None, Scope]]) -> list[Hit]:
    """IDM301: an Airflow task function (TaskFlow `@task` or a `python_callable`) that only
    empties a table (TRUNCATE, or DELETE without WHERE) and loads nothing: the reload is
    another task, committed on its own, so a failed or skipped load leaves the table empty.
    The other task's `to_sql` append of that table (same name, or both named by parameters)
    is the load half of that reload, not an IDM202 append (`info.reload_halves`)."""
    if "airflow" not in imports_of(tree):
        return []
    callables = {v.id for n in walk(tree) if isinstance(n, ast.Call)
                 for v in [kw(n, "python_callable")] if isinstance(v, ast.Name)}
    hits: list[Hit] = []
    cleared: list[tuple[str, bool]] = []
    for f, sc in scopes:
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) or not _airflow_task(f, callables):
            continue
        info.task_appends.extend((ev.line, not ev.fixed_table) for ev in sc.events
                                 if ev.kind == "to_sql" and ev.if_exists == "append" and ev.table)
        writes = any(ev.kind in {"to_sql", "rows", "load"} or (
            ev.kind == "sql" and ev.stmt is not None and _kind(ev.stmt) == "write") for ev in sc.events)
        if writes:
            continue
        messages = _message_lines(f)
        for ev in sc.events:
            st = ev.stmt
            if ev.kind != "sql" or st is None or _kind(st) != "clear" or st.expr.args.get("where") \
                    or ev.line in messages:
                continue
            for t in sorted(_cleared_tables(st)):
                if _is_staging(t) or _is_state(t):
                    continue
                cleared.append((t, _param_table(t, f)))
                hits.append((ev.line, "IDM301", f"{t} is emptied by a task of its own; "
                                                "the reload is another task"))
    for f, sc in scopes:
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) or not _airflow_task(f, callables):
            continue
        for ev in sc.events:
            if ev.kind == "to_sql" and ev.if_exists == "append" and ev.table and any(
                    same_table(t, ev.table) or (by_param and not ev.fixed_table)
                    for t, by_param in cleared):
                info.reload_halves.add(ev.line)
    return hits


_LOG_CALLS = {"print", "info", "debug", "warning", "warn", "error", "exception", "critical", "log"}


def _message_lines(f: ast.AST) -> set[int]:
    """Lines of the strings handed to print/logging: `print("truncate failed")` parses as a
    TRUNCATE statement but runs nothing."""
    return {a.lineno for c in walk(f) if isinstance(c, ast.Call)
            and dotted(c.func).rsplit(".", 1)[-1] in _LOG_CALLS
            for a in list(c.args) + [k.value for k in c.keywords]
            if isinstance(a, (ast.Constant, ast.JoinedStr))}


def _only_clears(sc: Scope, f: ast.AST) -> list[int]:
    """Lines of the whole-table clears (TRUNCATE, DELETE without WHERE) of a scope that
    writes nothing else."""
    lines: list[int] = []
    messages = _message_lines(f)
    for ev in sc.events:
        if ev.line in messages:
            continue
        if ev.kind in {"to_sql", "rows", "load"}:
            return []
        st = ev.stmt
        if ev.kind != "sql" or st is None:
            continue
        kind = _kind(st)
        if kind == "write":
            return []
        if kind == "clear" and not st.expr.args.get("where") and any(
                not _is_staging(t) and not _is_state(t) for t in _cleared_tables(st)):
            lines.append(ev.line)
    return lines


def helper_function_clear_then_load(info: FileInfo,
                                    scopes: list[tuple[ast.AST | None, Scope]]) -> list[Hit]:
    """IDM301: a function of the module that only empties a table and commits
    (`def truncate_table(cfg): ... TRUNCATE ...; trans.commit()`), called by another
    function that then calls a loading function of the module (or a load-named helper).
    The TRUNCATE is committed before the load starts: a failed load leaves the table empty."""
    clears: dict[str, list[int]] = {}
    writers: set[str] = set()
    for f, sc in scopes:
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if any(ev.kind in {"to_sql", "rows", "load"} or (ev.kind == "sql" and ev.stmt is not None
               and _kind(ev.stmt) == "write") for ev in sc.events) or _is_load(f):
            writers.add(f.name)
        lines = _only_clears(sc, f)
        commits = info.autocommit or any(
            isinstance(c, ast.Call) and dotted(c.func).rsplit(".", 1)[-1] == "commit"
            for c in walk(f))
        if lines and commits:
            clears[f.name] = lines
    if not clears:
        return []
    hits: list[Hit] = []
    done: set[str] = set()
    for f, _ in scopes:
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        calls = sorted((c.lineno, dotted(c.func).rsplit(".", 1)[-1]) for c in walk(f)
                        if isinstance(c, ast.Call))
        for i, (_, name) in enumerate(calls):
            if name in clears and name not in done and name != f.name and any(
                    later in writers or _LOAD_HELPER.match(later.lstrip("_"))
                    for _, later in calls[i + 1:]):
                done.add(name)
                hits.extend((ln, "IDM301", f"{name}() commits the clear; the load is called "
                                           "after it") for ln in clears[name])
    return hits


def operator_clear_then_file_load(info: FileInfo) -> list[Hit]:
    """IDM301: a SQL operator task drops, deletes or truncates a table that another operator
    task of the file loads from its `.sql` file (`sql="sql/load.sql"`, read across the
    project). Each task commits on its own: a failed load leaves the table empty or missing."""
    hits: list[Hit] = []
    for line, tables in info.op_clears:
        for t in sorted(tables):
            if _is_staging(t):
                continue
            if any(ln != line and any(same_table(t, w) for w in info.sql_file_writes.get(f, ()))
                   for ln, f in info.op_files):
                hits.append((line, "IDM301", f"{t} is cleared by an operator task and loaded "
                                             "by another task's SQL file"))
                break
    return hits


def clock_defaults_of(tree: ast.Module) -> dict[str, list[tuple[int, str]]]:
    """Functions (a class by its __init__) with a date parameter whose default is read from
    the wall clock: Python evaluates it once, when the module is imported."""
    out: dict[str, list[tuple[int, str]]] = {}
    for node in walk(tree):
        f, name = None, None
        if isinstance(node, ast.ClassDef):
            f = next((b for b in node.body if isinstance(b, ast.FunctionDef)
                      and b.name == "__init__"), None)
            name = node.name
        elif isinstance(node, ast.FunctionDef) and node.name != "__init__":
            f, name = node, node.name
        if f is None or name is None:
            continue
        a = f.args
        params = a.posonlyargs + a.args
        offset = len(params) - len(a.defaults)
        hits = [(i - (1 if params and params[0].arg in {"self", "cls"} else 0), p.arg)
                for i, p in enumerate(params) if i >= offset
                and DAY_VAR.match(p.arg.lower()) and contains_wall_clock(a.defaults[i - offset])]
        hits += [(-1, p.arg) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=False)
                 if d is not None and DAY_VAR.match(p.arg.lower()) and contains_wall_clock(d)]
        # a fixed start with an end at today is the whole history up to now, reloaded whole
        # on every run: no day is cut off by the clock (only the window's start can be)
        fixed_start = [p.arg for p, d in zip(params[offset:], a.defaults, strict=False)
                       if p.arg.lower() in _WINDOW_START and not contains_wall_clock(d)]
        fixed_start += [p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=False)
                        if d is not None and p.arg.lower() in _WINDOW_START
                        and not contains_wall_clock(d)]
        if hits and not fixed_start:
            out[name] = hits
    return out


_WINDOW_START = {"start", "start_date", "window_start", "from_date", "since", "begin_date"}


_MONGO_CURSOR_VALUE = re.compile(r"watermark|high_?water|cursor|since|checkpoint|bookmark|"
                                 r"threshold|(^|_)last(_|$)|prev_max|max_\w+")


def mongo_cursors(tree: ast.Module) -> list[Hit]:
    """IDM402/IDM403 for a MongoDB filter `{col: {"$gt": last_loaded}}` built from a saved
    cursor: the same late-row and tie risks as `WHERE col > %s` in SQL. A surrogate key
    (`_id`, `id`) has no ties and follows insertion order; a load-time stamp needs no
    lookback."""
    from .sql_rules import ID_COLUMN, LOAD_TIME_COLUMN

    hits: list[Hit] = []
    for n in walk(tree):
        if not isinstance(n, ast.Dict):
            continue
        for k, v in zip(n.keys, n.values, strict=False):
            if not isinstance(v, ast.Dict):
                continue
            ops = {literal(x): y for x, y in zip(v.keys, v.values, strict=False) if x is not None}
            op = "$gt" if "$gt" in ops else "$gte" if "$gte" in ops else None
            if op is None or "$lt" in ops or "$lte" in ops:
                continue  # a bounded window, not a cursor
            value = ops[op]
            names = [m.id if isinstance(m, ast.Name) else m.attr for m in walk(value)
                     if isinstance(m, (ast.Name, ast.Attribute))]
            if not any(_MONGO_CURSOR_VALUE.search(x.lower()) for x in names):
                continue
            col = literal(k) if k is not None else None
            col = col.lower() if isinstance(col, str) else ""
            if ID_COLUMN.match(col):
                continue
            lookback = any(isinstance(m, ast.BinOp) and isinstance(m.op, ast.Sub)
                           for m in walk(value))
            if not lookback and not LOAD_TIME_COLUMN.search(col):
                hits.append((v.lineno, "IDM402", f"{col or 'cursor'} {op} the saved cursor"))
            if op == "$gt":
                hits.append((v.lineno, "IDM403", f"{col or 'cursor'} $gt the saved cursor"))
    return hits


def _http_failed(test: ast.expr) -> bool:
    """`resp.status_code != 200`, `resp.status_code >= 400`, `not resp.ok`."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return isinstance(test.operand, ast.Attribute) and test.operand.attr == "ok"
    if isinstance(test, ast.Compare) and len(test.ops) == 1 \
            and isinstance(test.left, ast.Attribute) and test.left.attr == "status_code":
        op, right = test.ops[0], literal(test.comparators[0])
        return (isinstance(op, ast.NotEq) and right == 200) or (
            isinstance(op, (ast.GtE, ast.Gt)) and isinstance(right, int) and 300 <= right <= 500)
    return False


def _empty_data(v: ast.expr | None) -> bool:
    """`pd.DataFrame()`, `[]`, `{}`: no rows, the same value a source with no new data gives."""
    if isinstance(v, (ast.List, ast.Dict, ast.Tuple)):
        return not (v.elts if not isinstance(v, ast.Dict) else v.keys)
    return isinstance(v, ast.Call) and not v.args and not v.keywords \
        and dotted(v.func).rsplit(".", 1)[-1] == "DataFrame"


def http_failure_as_no_data(tree: ast.Module) -> list[Hit]:
    """IDM206 for `if resp.status_code != 200: ... return pd.DataFrame()`: a rate limit or a
    5xx comes back as an empty result, which the caller loads as a period with no rows and
    ends in success; the period stays missing. (None, or a raise, fails loudly downstream.)"""
    hits: list[Hit] = []
    for n in walk(tree):
        if isinstance(n, ast.If) and _http_failed(n.test):
            rets = [b for b in n.body if isinstance(b, ast.Return)]
            if rets and not any(isinstance(b, ast.Raise) for b in n.body) \
                    and _empty_data(rets[-1].value):
                hits.append((n.lineno, "IDM206", "an HTTP error returned as empty data"))
    return hits


def partitioned_parquet_appends(tree: ast.Module) -> list[Hit]:
    """IDM201 for `df.to_parquet(path, partition_cols=[...])`: pyarrow writes each partition
    as a new uniquely named file beside those already in the folder (existing_data_behavior
    "overwrite_or_ignore"), so a re-run or a retry adds the same rows again. Reported unless
    the call asks for "delete_matching", which replaces the partitions it writes."""
    hits: list[Hit] = []
    for n in walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                and n.func.attr == "to_parquet" and kw(n, "partition_cols") is not None \
                and literal(kw(n, "existing_data_behavior")) != "delete_matching":
            hits.append((n.lineno, "IDM201", "to_parquet(partition_cols=...) adds files on "
                                             "each write"))
    return hits


def append_mode_defaults(tree: ast.Module) -> list[Hit]:
    """IDM202 for a Prefect flow whose `if_exists` parameter defaults to "append" and is
    handed on to a load (`load_to_postgres(df, table, if_exists)`): a deployment's scheduled
    or retried run takes the flow's defaults, so the helper's to_sql appends the same rows
    again. Reported on the default, the value a user changes. (A task's default is not: the
    flow calling it passes its own.)"""
    hits: list[Hit] = []
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) or not any(
                dotted(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1]
                == "flow" for d in f.decorator_list):
            continue
        a = f.args
        params = a.posonlyargs + a.args
        pairs = list(zip(params[len(params) - len(a.defaults):], a.defaults, strict=False))
        pairs += [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=False)
                  if d is not None]
        for p, d in pairs:
            if p.arg != "if_exists" or literal(d) != "append":
                continue
            passed = any(isinstance(c, ast.Call) and any(
                isinstance(x, ast.Name) and x.id == p.arg
                for x in [*c.args, *(k.value for k in c.keywords)]) for c in walk(f))
            if passed:
                hits.append((d.lineno, "IDM202", f"{f.name}() appends by default "
                                                 f"(if_exists=\"append\")"))
    return hits


def clock_default_windows(tree: ast.Module, info: FileInfo) -> list[Hit]:
    """IDM501: a callable whose date parameters default to the wall clock at import, called
    without them in a task or flow: the window is the day the worker imported the code, not
    the run's, so a late, retried or backfilled run loads the wrong day."""
    if not info.clock_defaults or not imports_of(tree) & _ORCHESTRATORS:
        return []
    # a callable this file defines is the one its calls reach, whatever another module
    # of the same name defaults to
    local = {d.name for d in walk(tree) if isinstance(
        d, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    own = clock_defaults_of(tree)
    hits: list[Hit] = []
    for n in walk(tree):
        if not isinstance(n, ast.Call):
            continue
        name = dotted(n.func).rsplit(".", 1)[-1]
        params = own.get(name) if name in local else info.clock_defaults.get(name)
        if not params or any(k.arg is None for k in n.keywords) or any(
                isinstance(a, ast.Starred) for a in n.args):
            continue
        given = {k.arg for k in n.keywords}
        if all(p not in given and not (0 <= i < len(n.args)) for i, p in params):
            hits.append((n.lineno, "IDM501", f"{dotted(n.func)}() takes its "
                                             f"{params[0][1]} from the clock at import"))
    return hits


def helper_clear_then_load(tree: ast.Module) -> list[Hit]:
    """IDM301 for helpers named for what they do: `dest.truncate_table(schema, table)` and
    then `self.insert_data(schema, table, rows)` of the same table in one function, outside a
    transaction block. Each helper runs (and commits) its own statements, so a failure of the
    load leaves the table empty until the next run."""
    hits: list[Hit] = []
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        in_txn: set[int] = set()
        for w in walk(f):
            if isinstance(w, (ast.With, ast.AsyncWith)) and any(
                    dotted(i.context_expr).rsplit(".", 1)[-1] in TXN_CONTEXT for i in w.items):
                in_txn |= {id(n) for n in walk(w)}
        calls = sorted(((c, c.func.attr) for c in walk(f) if isinstance(c, ast.Call)
                        and isinstance(c.func, ast.Attribute) and id(c) not in in_txn),
                       key=lambda ca: (ca[0].lineno, ca[0].col_offset))
        for i, (c, attr) in enumerate(calls):
            if not _CLEAR_HELPER.match(attr):
                continue
            refs = {r for r in _table_refs(c) if not _is_staging(r.split(":", 1)[1])}
            if refs and any(_LOAD_HELPER.match(a) and refs & _table_refs(d)
                            for d, a in calls[i + 1:]):
                hits.append((c.lineno, "IDM301", f"{attr}() then a load of the same table, "
                                                 "each committing on its own"))
    return hits


_APPEND_HELPER = re.compile(r"^(insert|append|load)(_\w+)?$")
_CURSOR_KW = re.compile(r"^max_|watermark|cursor|since|incremental|(^|_)last_|high_?water")


def _cursor_given(c: ast.Call) -> bool:
    # `**kwargs` may carry it
    return any(k.arg is None or (_CURSOR_KW.search(k.arg) and literal(k.value) is not None)
               for k in c.keywords)


def helper_without_its_cursor(tree: ast.Module) -> list[Hit]:
    """IDM201: an insert/append helper called with a cursor keyword (`max_field=`, `since=`)
    in some calls of the file and without it in others. The file itself shows the helper
    loads only what is past the cursor when given one; the calls without it append the
    whole source again on every run."""
    groups: dict[str, list[ast.Call]] = {}
    for c in walk(tree):
        if isinstance(c, ast.Call):
            last = dotted(c.func).rsplit(".", 1)[-1]
            if _APPEND_HELPER.match(last):
                groups.setdefault(last, []).append(c)
    hits: list[Hit] = []
    for last, calls in groups.items():
        if len(calls) < 2 or not any(_cursor_given(c) for c in calls):
            continue
        for c in calls:
            if not _cursor_given(c):
                hits.append((c.lineno, "IDM201", f"{last}() without the cursor its other calls "
                                                 "pass: the whole source is appended again"))
    return hits


_STATE_REF = re.compile(r"state|watermark|cursor|checkpoint|bookmark", re.I)
_CURSOR_VALUE = re.compile(r"latest|last|max|cursor|watermark|state|high_?water", re.I)
_MODE_KW = re.compile(r"write_?(mode|disposition)|if_exists|mode$|overwrite|replace|truncate|"
                      r"merge|upsert|(unique|primary)_?keys?$")


def cursor_saved_by_a_later_task(tree: ast.Module) -> list[Hit]:
    """IDM201: a task function reads the cursor from a state store, appends the window with a
    load helper given no write mode (a BigQuery load job's default is WRITE_APPEND) and hands
    the new cursor to XCom for a later task to save. If that task fails, or this one is
    retried after its load, the next run starts from the old cursor and appends the window
    again."""
    hits: list[Hit] = []
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        calls = [c for c in walk(f) if isinstance(c, ast.Call)]
        reads_state = any(_STATE_REF.search(ast.unparse(a)) for c in calls
                          for a in list(c.args) + [k.value for k in c.keywords]
                          if dotted(c.func).rsplit(".", 1)[-1] != "xcom_push")
        pushes_cursor = any(dotted(c.func).rsplit(".", 1)[-1] == "xcom_push" and any(
            _CURSOR_VALUE.search(ast.unparse(v)) for v in list(c.args) + [
                k.value for k in c.keywords]) for c in calls)
        if not (reads_state and pushes_cursor):
            continue
        for c in calls:
            last = dotted(c.func).rsplit(".", 1)[-1]
            if _APPEND_HELPER.match(last) and not any(
                    k.arg is None or _MODE_KW.search(k.arg) for k in c.keywords):
                hits.append((c.lineno, "IDM201", f"{last}() appends the window; the cursor is "
                                                 "saved by a later task"))
    return hits


# task arguments that are about scheduling the task, not the data it processes
_SCHEDULING_ARGS = {"start_date", "end_date", "default_args", "dag", "execution_timeout",
                    "retry_delay", "max_retry_delay", "sla", "timeout", "poke_interval"}


def _module_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements run at import, in order (into `if`/`try`/`with`, not into defs)."""
    out: list[ast.stmt] = []
    for st in body:
        out.append(st)
        if isinstance(st, (ast.If, ast.For, ast.While, ast.With)):
            out += _module_statements(st.body) + _module_statements(st.orelse
                                                                    if not isinstance(st, ast.With)
                                                                    else [])
        elif isinstance(st, ast.Try):
            out += _module_statements(st.body + [s for h in st.handlers for s in h.body]
                                      + st.orelse + st.finalbody)
    return out


def parse_time_dates(tree: ast.Module) -> list[Hit]:
    """IDM501 in an Airflow DAG file: a date read from the wall clock at import (when the
    scheduler parses the file) and handed to a task's arguments (its SQL, params, paths). A
    retried, late or backfilled run gets the day the file was last parsed, not its logical
    date. Reported where the clock is read."""
    if "airflow" not in imports_of(tree):
        return []
    origin: dict[str, int] = {}  # module name -> line of the wall-clock read it comes from
    for st in _module_statements(tree.body):
        if not isinstance(st, ast.Assign):
            continue
        names = [t.id for t in st.targets if isinstance(t, ast.Name)]
        if contains_wall_clock(st.value):
            line = next(c.lineno for c in walk(st.value)
                        if isinstance(c, ast.Call) and is_wall_clock_call(c))
        else:
            used = [n.id for n in walk(st.value) if isinstance(n, ast.Name) and n.id in origin]
            if not used:
                for n in names:
                    origin.pop(n, None)  # rebound to something else
                continue
            line = origin[used[0]]
        origin.update({n: line for n in names})
    if not origin:
        return []
    hits: list[Hit] = []
    for c in walk(tree):
        if not (isinstance(c, ast.Call)
                and dotted(c.func).rsplit(".", 1)[-1].endswith(("Operator", "Sensor"))):
            continue
        args = list(c.args) + [k.value for k in c.keywords if k.arg not in _SCHEDULING_ARGS]
        for a in args:
            for u in walk(a):
                if isinstance(u, ast.Name) and isinstance(u.ctx, ast.Load) and u.id in origin:
                    hits.append((origin[u.id], "IDM501", f"{u.id} is the date the file was "
                                                         "parsed, handed to a task"))
    return hits


# exceptions a fetch raises (requests, httpx, aiohttp, urllib), and the broad ones
_FETCH_ERRORS = re.compile(r"(HTTP|Request|Connection|Timeout|Client|URL)\w*(Error|Exception)$|"
                           r"^(Base)?Exception$")
_FETCH_CALLS = re.compile(r"^(get|post|request|urlopen|raise_for_status|fetch\w*|json)$")


def _skips_item(body: list[ast.stmt]) -> bool:
    """The handler (or `if`) body moves on to the next item: a `continue` and no raise."""
    nodes = [n for b in body for n in walk(b)]
    return any(isinstance(n, ast.Continue) for n in nodes) and not any(
        isinstance(n, ast.Raise) or (isinstance(n, ast.Call) and _fails(n)) for n in nodes)


_READ_CALLS = re.compile(r"^(read_sql\w*|read_csv|read_parquet|read_json|read_excel|read_gbq|"
                         r"to_dataframe|fetch_pandas_all|fetchall)$")


def _broad_handler(h: ast.ExceptHandler) -> bool:
    names = {dotted(e) for e in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type])} \
        if h.type is not None else {"BaseException"}
    return bool(names & _BROAD) or any(
        n.rsplit(".", 1)[-1] in _DB_BASE_ERRORS or ".".join(n.rsplit(".", 2)[-2:])
        in _DB_BASE_ERRORS for n in names)


def empty_frame_on_read_error(tree: ast.Module) -> list[Hit]:
    """IDM206: a broad `except` around a read that hands on an empty DataFrame instead
    (`df = pd.DataFrame()`). The run goes on as if the source had no rows: a load that
    replaces its target writes it without them, an append loses the window, and the run
    reports success, so nothing retries it."""
    hits: list[Hit] = []
    for t in walk(tree):
        if not isinstance(t, ast.Try) or not any(
                isinstance(c, ast.Call) and _READ_CALLS.match(dotted(c.func).rsplit(".", 1)[-1])
                for b in t.body for c in walk(b)):
            continue
        for h in t.handlers:
            nodes = [n for b in h.body for n in walk(b)]
            if not _broad_handler(h) or any(
                    isinstance(n, ast.Raise) or (isinstance(n, ast.Call) and _fails(n))
                    for n in nodes):
                continue
            if any(isinstance(n, (ast.Assign, ast.Return)) and isinstance(n.value, ast.Call)
                   and dotted(n.value.func).rsplit(".", 1)[-1] == "DataFrame"
                   and not n.value.args and not n.value.keywords for n in nodes):
                hits.append((h.lineno, "IDM206", "a failed read becomes an empty frame: the "
                                                 "run goes on without the source's rows"))
    return hits


def _counts_reported_skip(body: list[ast.stmt], tree: ast.Module) -> bool:
    """The handler only counts the item it skips (`skipped_invalid += 1`) in a counter the
    module reads again (into the asset's metadata, a log line, a check): the skip is reported
    with the run's result, an item-level validation, not a swallowed failure."""
    counters = {b.target.id for b in body if isinstance(b, ast.AugAssign)
                and isinstance(b.target, ast.Name) and isinstance(b.op, ast.Add)}
    if not counters or not all(isinstance(b, ast.AugAssign) for b in body):
        return False
    read = {n.id for n in walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return counters <= read


def skipped_fetch_errors(tree: ast.Module) -> list[Hit]:
    """IDM206 in Dagster code: a failed fetch skipped with `continue` (in its `except`, or
    `if isinstance(r, Exception)` over `gather(..., return_exceptions=True)`). The asset returns
    what was collected and its IO manager replaces the table or partition with it: the run
    succeeds and the rows of the failed requests are gone until someone re-materialises."""
    if "dagster" not in imports_of(tree):
        return []  # elsewhere the collected rows may be appended, and a skip re-fetched later
    hits: list[Hit] = []
    # a `try` that ends a loop's body: a handler that only logs falls through to the next item
    loop_ends = {id(lp.body[-1]) for lp in walk(tree)
                 if isinstance(lp, (ast.For, ast.AsyncFor, ast.While)) and lp.body}
    # nodes of asset/op bodies (what they yield is materialised; a partition mapping is not)
    in_compute = {id(x) for f in walk(tree)
                  if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                      dotted(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1]
                      in {"asset", "op", "multi_asset", "graph_asset"} for d in f.decorator_list)
                  for x in walk(f)}
    for n in walk(tree):
        if isinstance(n, ast.Try) and any(
                isinstance(c, ast.Call) and _FETCH_CALLS.match(dotted(c.func).rsplit(".", 1)[-1])
                for s in n.body for c in walk(s)):
            for h in n.handlers:
                types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
                falls_through = id(n) in loop_ends and not n.finalbody and not any(
                    isinstance(x, (ast.Raise, ast.Return, ast.Break))
                    or (isinstance(x, ast.Call) and _fails(x))
                    for b in h.body for x in walk(b))
                if any(t is None or _FETCH_ERRORS.search(dotted(t).rsplit(".", 1)[-1])
                       for t in types) and (_skips_item(h.body) or falls_through) \
                        and not _counts_reported_skip(h.body, tree):
                    hits.append((h.lineno, "IDM206", "a failed fetch is skipped: the asset "
                                                     "publishes a partial result"))
        elif isinstance(n, ast.If) and id(n) in in_compute and _http_failed(n.test) \
                and _skips_item(n.body):
            # `if resp.status_code != 200: continue`: a 5xx or a rate limit taken for "no data"
            hits.append((n.lineno, "IDM206", "a failed fetch is skipped: the asset publishes "
                                             "a partial result"))
        elif isinstance(n, ast.If) and isinstance(n.test, ast.Call) \
                and dotted(n.test.func) == "isinstance" and len(n.test.args) == 2 \
                and _FETCH_ERRORS.search(dotted(n.test.args[1])) and _skips_item(n.body):
            hits.append((n.lineno, "IDM206", "a failed fetch is skipped: the asset publishes "
                                             "a partial result"))
    return hits


# an HTTP request of a client (requests, httpx, a session, urllib)
_HTTP_CLIENT = re.compile(r"(^|\.)(requests|httpx|\w*session|\w*client|urllib\w*(\.request)?)$",
                          re.I)


def _http_fetch(call: ast.Call) -> bool:
    name = dotted(call.func)
    head, _, last = name.rpartition(".")
    return last in {"urlopen", "urlretrieve"} or (
        last in {"get", "post", "request"} and bool(_HTTP_CLIENT.search(head)))


def _lands(node: ast.AST) -> bool:
    """Does the code write what it fetched to a file: one opened for writing, a frame or
    JSON dumped to it? (A failed load into a database is swallowed_load_errors' business.)"""
    for n in walk(node):
        if not isinstance(n, ast.Call):
            continue
        last = dotted(n.func).rsplit(".", 1)[-1]
        if last == "open":
            mode = literal(n.args[1]) if len(n.args) > 1 else literal(kw(n, "mode"))
            if isinstance(mode, str) and mode[:1] in {"w", "a"}:
                return True
        elif last in {"to_csv", "to_json", "to_parquet", "to_excel", "dump"}:
            return True
    return False


def swallowed_downloads(tree: ast.Module) -> list[Hit]:
    """IDM206: the fetch of an extract step fails and its `except` (a fetch error, or any)
    turns the failure into a normal outcome: it breaks off the polling loop, or returns or
    records a status message. The file the step writes is not written, the run takes its
    normal way to the end as a success, and the next step loads what the last run left there
    (or nothing), with no retry and no alert. The write is in the `try`, or after it in the
    same block (the `break` skips it). A handler that only logs falls through: the next step
    meets the missing file and fails loudly."""
    hits: list[Hit] = []
    blocks = [b for n in walk(tree) for f in ("body", "orelse", "finalbody")
              if isinstance(b := getattr(n, f, None), list)]
    after: dict[int, list[ast.stmt]] = {}
    for b in blocks:
        for i, st in enumerate(b):
            if isinstance(st, ast.Try):
                after[id(st)] = b[i + 1:]
    for t in walk(tree):
        if not isinstance(t, ast.Try) or not any(
                isinstance(c, ast.Call) and _http_fetch(c) for s in t.body for c in walk(s)):
            continue
        if not any(_lands(s) for s in t.body + after.get(id(t), [])):
            continue
        for h in t.handlers:
            types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
            nodes = [x for b in h.body for x in walk(b)]
            if any(isinstance(x, (ast.Raise, ast.Continue)) or (
                    isinstance(x, ast.Call) and (_fails(x) or _lands(x))) for x in nodes):
                continue
            settles = any(isinstance(x, (ast.Break, ast.Return, ast.Assign)) for x in nodes)
            if settles and any(ty is None or _FETCH_ERRORS.search(dotted(ty).rsplit(".", 1)[-1])
                               for ty in types):
                hits.append((h.lineno, "IDM206", "a failed download is noted and the run "
                                                 "ends as a success"))
    return hits


_SEARCH_CLIENTS = {"elasticsearch", "opensearchpy", "elasticsearch7", "elasticsearch8"}
_BULK_CALLS = {"bulk", "streaming_bulk", "parallel_bulk", "async_bulk"}
_SEARCH_ERRORS = re.compile(r"^(BulkIndexError|ApiError|TransportError|ElasticsearchException|"
                            r"OpenSearchException|ConnectionError)$")


def swallowed_search_index_writes(tree: ast.Module) -> list[Hit]:
    """IDM206 on an Elasticsearch/OpenSearch load: `helpers.bulk(client, actions, ...)` (or
    the client's own `bulk`/`index`/`update`) writes the index. With `raise_on_error=False`
    and `raise_on_exception=False` no failed document and no transport error raises: the
    errors come back as a list the task logs (finding on the `raise_on_error` keyword), unless
    an `if` on the returned errors raises. An `except` (broad, or `BulkIndexError` and the
    client's errors) around such a write that neither re-raises nor fails the task swallows
    the failed load (finding on the `except`)."""
    hits: list[Hit] = []
    if not imports_of(tree) & _SEARCH_CLIENTS:
        return hits

    def es_write(c: ast.AST) -> bool:
        if not isinstance(c, ast.Call) or not isinstance(c.func, (ast.Attribute, ast.Name)):
            return False
        name = dotted(c.func)
        last = name.rsplit(".", 1)[-1]
        return last in _BULK_CALLS or (last in {"index", "update", "update_by_query",
                                                "delete_by_query"} and "." in name
                                       and any(k.arg in {"index", "document", "body", "doc"}
                                               for k in c.keywords))

    quiet: set[int] = set()  # bulk calls that raise on nothing: no `except` of theirs is reached
    funcs = [f for f in walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inner = {id(x) for f in funcs for x in walk(f) if x is not f}
    for f in funcs + [tree]:
        for a in walk(f):
            if f is tree and id(a) in inner:
                continue
            if not isinstance(a, (ast.Assign, ast.Expr)):
                continue
            c = a.value
            if not (isinstance(c, ast.Call) and dotted(c.func).rsplit(".", 1)[-1] in _BULK_CALLS
                    and es_write(c)):
                continue
            roe = next((k for k in c.keywords if k.arg == "raise_on_error"), None)
            rox = next((k for k in c.keywords if k.arg == "raise_on_exception"), None)
            if roe is None or rox is None or literal(roe.value) is not False \
                    or literal(rox.value) is not False:
                continue
            quiet.add(id(c))
            # `success, errors = helpers.bulk(...)` then `if errors: raise ...`: reported
            bound = {n.id for t in getattr(a, "targets", []) for n in walk(t)
                     if isinstance(n, ast.Name)}
            if any(isinstance(i, ast.If) and {n.id for n in walk(i.test)
                                               if isinstance(n, ast.Name)} & bound
                   and any(isinstance(x, ast.Raise) or (isinstance(x, ast.Call) and _fails(x))
                           for b in i.body for x in walk(b))
                   for i in walk(f)):
                continue
            hit = (roe.value.lineno, "IDM206", "the bulk write neither raises on failed "
                                               "documents nor on errors: its failures are only logged")
            if hit not in hits:
                hits.append(hit)
    for t in walk(tree):
        if not isinstance(t, ast.Try):
            continue
        writes = [c for s in t.body for c in walk(s) if es_write(c) and id(c) not in quiet]
        if not writes:
            continue
        for h in t.handlers:
            types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
            names = {dotted(ty).rsplit(".", 1)[-1] for ty in types if ty is not None}
            if h.type is not None and not names & _BROAD and not any(
                    _SEARCH_ERRORS.match(n) for n in names):
                continue
            if any(isinstance(x, ast.Raise) or (isinstance(x, ast.Call) and _fails(x))
                   for b in h.body for x in walk(b)):
                continue
            hits.append((h.lineno, "IDM206", "the index write's failure is logged and the task "
                                             "succeeds"))
    return hits


def _fails(call: ast.Call) -> bool:
    """A call that ends the run as a failure. `exit()`, `sys.exit()` and `sys.exit(0)` end it
    with status 0: the scheduler running the script sees a success."""
    last = dotted(call.func).rsplit(".", 1)[-1]
    if last in {"abort", "fail"}:
        return True
    if last not in {"exit", "_exit"}:
        return False
    code = call.args[0] if call.args else kw(call, "code") or kw(call, "status")
    return code is not None and not (isinstance(code, ast.Constant) and code.value in (0, None))


_FILE_WRITERS = {"to_csv", "to_json"}


def file_appends(tree: ast.Module) -> list[Hit]:
    """IDM201: `df.to_csv(path, mode="a")` in a scheduled task appends the rows to what the
    file already holds, so a re-run or retry writes them twice. Not when the same function
    first writes the file afresh (`mode="w"`, `os.remove`, `open(path, "w")`): chunks appended
    to a file the run created are one output."""
    hits: list[Hit] = []
    scopes = [n for n in walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for f in scopes + [tree]:
        calls = sorted((n for n in walk(f) if isinstance(n, ast.Call)),
                       key=lambda c: (c.lineno, c.col_offset))
        fresh: set[str] = set()
        for c in calls:
            last = dotted(c.func).rsplit(".", 1)[-1]
            target = c.args[0] if c.args else kw(c, "path_or_buf")
            key = ast.unparse(target) if target is not None else ""
            removes = last in {"remove", "unlink"} and bool(c.args)
            truncates = last == "open" and len(c.args) > 1 and \
                str(literal(c.args[1]) or "").startswith("w")
            if removes or truncates:
                fresh.add(ast.unparse(c.args[0]))
            elif last in _FILE_WRITERS and isinstance(c.func, ast.Attribute) and target is not None:
                mode = literal(kw(c, "mode"))
                if (mode is None and kw(c, "mode") is None) or mode == "w":
                    fresh.add(key)
                elif isinstance(mode, str) and mode.startswith("a") and key not in fresh:
                    hits.append((c.lineno, "IDM201", f"{last}(mode='a') appends to {key[:40]}"))
    return hits


_OFFSET_COMMITS = {"commit", "commitSync", "commit_sync", "commitAsync", "commit_async",
                   "store_offsets", "commit_offsets"}
_CONSUMERS = re.compile(r"consumer|kafka|reader", re.I)


def _consumer_names(tree: ast.Module) -> set[str]:
    out: set[str] = set()
    for n in walk(tree):
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) and \
                dotted(n.value.func).rsplit(".", 1)[-1] in {"KafkaConsumer", "Consumer",
                                                              "AIOKafkaConsumer"}:
            out |= {dotted(t) for t in n.targets}
    return out


def offset_commits_before_writes(tree: ast.Module) -> list[Hit]:
    """IDM405: in a consume loop, the offsets are committed before the write that follows."""
    hits: list[Hit] = []
    consumers = _consumer_names(tree)
    for loop in walk(tree):
        if not isinstance(loop, (ast.For, ast.AsyncFor, ast.While)):
            continue
        commits: list[int] = []
        loads: list[int] = []
        for n in walk(loop):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                    and n.func.attr in _OFFSET_COMMITS:
                owner = dotted(n.func.value)
                if owner in consumers or _CONSUMERS.search(owner):
                    commits.append(n.lineno)
            elif isinstance(n, (ast.Expr, ast.Assign)) and _is_load(n):
                loads.append(n.lineno)
        for c in commits:
            if any(ld > c for ld in loads) and not any(ld < c for ld in loads):
                hits.append((c, "IDM405", "offsets committed before the load"))
    return hits


_KAFKA_LIBS = {"kafka", "confluent_kafka", "aiokafka"}


def auto_commit_consumers(tree: ast.Module) -> list[Hit]:
    """IDM405 for a Kafka consumer left with auto-commit on (the default of confluent-kafka,
    kafka-python and aiokafka) in a module that writes what it consumes: offsets are committed
    on a timer whatever became of the messages, so a crash or a failed write loses them.
    Reported on the consumer's construction, where `enable.auto.commit` belongs. A config not
    written out in the call (a variable) is not judged."""
    if not imports_of(tree) & _KAFKA_LIBS:
        return []
    hits: list[Hit] = []
    for n in walk(tree):
        if not isinstance(n, ast.Call):
            continue
        last = dotted(n.func).rsplit(".", 1)[-1]
        if last in {"KafkaConsumer", "AIOKafkaConsumer"}:
            flag = kw(n, "enable_auto_commit")
            # unset (and no **config) is the default, on; anything but a literal True is off
            # or unknown
            unset = flag is None and not any(k.arg is None for k in n.keywords)
            if not unset and (flag is None or literal(flag) is not True):
                continue
        elif last in {"Consumer", "DeserializingConsumer"}:
            conf = n.args[0] if n.args else kw(n, "conf")
            if not isinstance(conf, ast.Dict) or None in conf.keys:
                continue
            flag = {literal(k): v for k, v in zip(conf.keys, conf.values, strict=False)}.get(
                "enable.auto.commit")
            if flag is not None and str(literal(flag)).lower() != "true":
                continue
        else:
            continue
        if any(_is_load(st) for st in walk(tree) if isinstance(st, (ast.Expr, ast.Assign))):
            hits.append((n.lineno, "IDM405", f"{last} auto-commits offsets before the write"))
    return hits


_FAKE_LIBS = {"faker", "mimesis", "factory"}
_ORCHESTRATORS = {"airflow", "dagster", "prefect", "dlt", "luigi", "kedro", "mage_ai"}


# calls that take rows in from somewhere (a file, an API, a query, a listing)
_INPUT_CALLS = re.compile(r"^(open|read\w*|get|urlopen|request|fetch\w*|query|load|loads|"
                          r"listdir|scandir|glob|iterdir|input|download\w*|scan\w*|"
                          r"list_objects\w*|list_blobs|consume|poll|sql)$")


def _reads_input(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.Call) and _INPUT_CALLS.match(dotted(n.func).rsplit(".", 1)[-1])
               for n in walk(tree))


def is_data_generator(tree: ast.Module) -> bool:
    """A script that makes up rows (faker, mimesis, or `random` with no input at all) and
    writes them, run by no orchestrator and reading no source table: demo data, not a
    pipeline."""
    imports = imports_of(tree)
    if imports & _ORCHESTRATORS or not (
            imports & _FAKE_LIBS or ("random" in imports and not _reads_input(tree))):
        return False
    for n in walk(tree):
        s = string_of(n) if isinstance(n, (ast.Constant, ast.JoinedStr)) else None
        if s is not None and re.search(r"\bselect\b[\s\S]*\bfrom\b", s.text, re.I):
            return False  # it reads a table: a transform, whatever fills its rows
    return True


def _dlt_disposition(wd: object) -> object:
    """A write disposition as its name: the dict form `{"disposition": "merge", "strategy":
    ...}` by its `disposition` (dlt's default, append, when the key is absent); any other
    value that is not a plain string is unknown (None)."""
    if isinstance(wd, dict):
        return wd.get("disposition", "append")
    return wd if isinstance(wd, str) else None


def _dlt_incremental_param(f: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Does the resource take a `dlt.sources.incremental(...)` cursor as a parameter default?
    dlt keeps the cursor's last value (and the keys of the rows at it) in the pipeline state
    committed with the load, so a rerun starts past what was loaded and drops the boundary
    rows it already holds: an append with an incremental cursor is no blind append."""
    defaults = [*f.args.defaults, *(x for x in f.args.kw_defaults if x is not None)]
    return any(isinstance(x, ast.Call) and dotted(x.func).endswith("incremental")
               and dotted(x.func).split(".")[0] in {"dlt", "incremental", "sources"}
               for x in defaults)


def _dlt_snapshot_row(f: ast.FunctionDef | ast.AsyncFunctionDef, d: ast.expr) -> bool:
    """Is the resource a snapshot log: its primary key is a column the resource fills with the
    clock at request time (`"requested_at": datetime.now(...)`, or a helper named *now*)? Each
    run appends one new observation by design; a rerun adds a later snapshot, not a copy."""
    pk = literal(kw(d, "primary_key")) if isinstance(d, ast.Call) else None
    if not isinstance(pk, str):
        return False
    for n in walk(f):
        if not isinstance(n, ast.Dict):
            continue
        for k, v in zip(n.keys, n.values):
            if isinstance(k, ast.Constant) and k.value == pk and isinstance(v, ast.Call) \
                    and "now" in dotted(v.func).rsplit(".", 1)[-1].lower():
                return True
    return False


def dlt_appends(tree: ast.Module) -> list[Hit]:
    """IDM201 for dlt resources left on the default `append` write disposition."""
    hits: list[Hit] = []
    run_disposition = any(
        isinstance(n, ast.Call) and dotted(n.func).rsplit(".", 1)[-1] == "run"
        and _dlt_disposition(literal(kw(n, "write_disposition"))) in {"replace", "merge"}
        for n in walk(tree))
    if run_disposition:
        return hits
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if any(dotted(d) == "dlt.source" for d in f.decorator_list):
            # a plain generator a source returns becomes a resource with the default append
            returned = {dotted(r.value) for r in walk(f)
                        if isinstance(r, ast.Return) and r.value is not None}
            for g in f.body:
                if isinstance(g, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                        and not g.decorator_list and g.name in returned \
                        and any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in walk(g)):
                    hits.append((g.lineno, "IDM201", f"dlt source returns {g.name}, which "
                                                     "appends (default write_disposition)"))
        for d in f.decorator_list:
            if dotted(d) not in {"dlt.resource", "dlt.transformer"}:
                continue
            wd = _dlt_disposition(literal(kw(d, "write_disposition"))) \
                if isinstance(d, ast.Call) else None
            if isinstance(d, ast.Call) and kw(d, "write_disposition") is not None \
                    and not (wd is None or wd == "append"):
                continue
            if isinstance(d, ast.Call) and kw(d, "primary_key") and wd is None:
                continue
            if _dlt_incremental_param(f) or _dlt_snapshot_row(f, d):
                continue
            hits.append((d.lineno, "IDM201", f"dlt resource {f.name} appends (default "
                                             "write_disposition)"))
    return hits


_CLEARS = re.compile(r"\b(delete\s+from|truncate\b|merge\s+into|insert\s+overwrite)", re.I)
_APPEND_MODES = {"WRITE_APPEND", "APPEND"}


def _append_mode(value: object) -> bool:
    """A write mode naming append (a dict or list value, such as dlt's dict form of a
    disposition, is not a BigQuery mode)."""
    return isinstance(value, str) and value in _APPEND_MODES


def operator_appends(tree: ast.Module) -> list[Hit]:
    """IDM201 for loads whose write mode is set to append by an operator or job argument:
    `write_disposition="WRITE_APPEND"` (BigQuery operators and job configurations) and
    S3ToRedshiftOperator's default `method="APPEND"`. A file that also deletes, truncates or
    merges is taken to clear the window first (the gap is IDM301's business)."""
    texts = [n.value for n in walk(tree) if isinstance(n, ast.Constant)
             and isinstance(n.value, str)]
    if any(_CLEARS.search(t) for t in texts):
        return []
    hits: list[Hit] = []
    for n in walk(tree):
        if isinstance(n, ast.Call):
            short = dotted(n.func).rsplit(".", 1)[-1]
            for k in n.keywords:
                if k.arg in {"write_disposition", "writeDisposition"} \
                        and _append_mode(literal(k.value)):
                    hits.append((k.value.lineno, "IDM201", f"{short} appends ({k.arg}="
                                                           f"{literal(k.value)})"))
            if short == "S3ToRedshiftOperator" and str(literal(kw(n, "method")) or "APPEND") \
                    .upper() == "APPEND" and kw(n, "upsert_keys") is None:
                hits.append((n.lineno, "IDM201", "S3ToRedshiftOperator appends (method APPEND)"))
        elif isinstance(n, ast.Dict):
            for key, value in zip(n.keys, n.values, strict=False):
                if isinstance(key, ast.Constant) and key.value in {"writeDisposition",
                                                                   "write_disposition"} \
                        and _append_mode(literal(value)):
                    hits.append((value.lineno, "IDM201", "job configuration appends "
                                                         f"({key.value}={literal(value)})"))
    return hits


def review_python(path: str, tree: ast.Module, dialect: str | None,
                  imported_sql: dict[str, ast.FunctionDef] | None = None) -> FileInfo:
    info = FileInfo(path, dialect, autocommit=_file_autocommit(tree))
    info.imported_sql = imported_sql or {}
    info.sql_returners = sql_returners(tree)
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and \
                isinstance(stmt.targets[0], ast.Name) and string_of(stmt.value) is not None:
            info.module_sql[stmt.targets[0].id] = stmt.value
    funcs = [n for n in walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for f in funcs:
        for n in walk(f):
            if isinstance(n, ast.Name) and n.id in info.module_sql:
                info.used_in_functions.add(n.id)

    # An Airflow file's SQL runs as a task that knows its logical date.
    airflow = "airflow" in imports_of(tree)
    scopes: list[tuple[ast.AST | None, Scope]] = []
    module_scope = Scope(path, "<module>", autocommit=info.autocommit, logical_date=airflow)
    _scope_context(module_scope, tree, "<module>", path)
    walker = _ScopeWalker(info, module_scope, None)
    walker.walk_body(tree.body)
    walker.order_by_dependencies(tree)
    scopes.append((None, module_scope))
    for f in funcs:
        sc = Scope(path, f.name, autocommit=info.autocommit, logical_date=airflow)
        _scope_context(sc, f, f.name, path)
        w = _ScopeWalker(info, sc, f)
        w.walk_body(f.body)
        w.order_by_dependencies(f)
        scopes.append((f, sc))
        info.tables[id(f)] = scope_tables(sc)
    for holder, sc in scopes:
        info.hits.extend(h for h in scope_hits(sc) if not _only_returns(holder, h))
    info.hits.extend(swallowed_load_errors(tree))
    info.hits.extend(success_whatever_upstream(tree))
    info.hits.extend(asset_clear_then_io_manager_load(scopes))
    info.hits.extend(operator_clear_then_python_load(tree, info, scopes))
    info.hits.extend(task_clear_then_task_load(tree, info, scopes))
    info.hits.extend(h for h in helper_function_clear_then_load(info, scopes) if h not in info.hits)
    info.hits.extend(skipped_fetch_errors(tree))
    info.hits.extend(swallowed_downloads(tree))
    info.hits.extend(h for h in swallowed_search_index_writes(tree) if h not in info.hits)
    info.hits.extend(empty_frame_on_read_error(tree))
    info.hits.extend(parse_time_dates(tree))
    info.hits.extend(helper_clear_then_load(tree))
    info.hits.extend(helper_without_its_cursor(tree))
    info.hits.extend(cursor_saved_by_a_later_task(tree))
    info.hits.extend(file_appends(tree))
    info.hits.extend(dlt_appends(tree))
    info.hits.extend(operator_appends(tree))
    info.hits.extend(offset_commits_before_writes(tree))
    info.hits.extend(auto_commit_consumers(tree))
    info.hits.extend(ledger_marked_before_load(tree))
    info.hits.extend(day_after_last_loaded(tree))
    batch_hits, guarded = integrity_guarded_batches(tree)
    info.hits.extend(h for h in batch_hits if h not in info.hits)
    keyed = info.reload_halves | anti_joined_appends(tree) | guarded
    info.hits = [h for h in info.hits if not (h[1] == "IDM202" and h[0] in keyed)]
    return info


def _open_mode(call: ast.Call) -> str | None:
    """The mode of `open(path, mode)` (`"r"` when not given), None if not a literal."""
    m = call.args[1] if len(call.args) > 1 else kw(call, "mode")
    if m is None:
        return "r"
    v = literal(m)
    return v if isinstance(v, str) else None


def ledger_marked_before_load(tree: ast.Module) -> list[Hit]:
    """IDM404: a function keeps a ledger file of the items already loaded (it reads the file,
    skips the items `not in` it), appends the item it picks to the ledger, then returns the
    item's data for its caller to load (it loads nothing itself): the item is marked loaded before the load runs, so a
    failed load is never retried (the next run moves on to the next item)."""
    hits: list[Hit] = []
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if not any(isinstance(c, ast.Compare) and any(isinstance(o, ast.NotIn) for o in c.ops)
                   for c in walk(f)):
            continue
        opens = [(c, _open_mode(c)) for c in walk(f) if isinstance(c, ast.Call)
                 and dotted(c.func) == "open" and c.args]
        read = {ast.dump(c.args[0]) for c, m in opens if m is not None and "r" in m}
        for w in walk(f):
            if not isinstance(w, ast.With):
                continue
            appended = [item.optional_vars.id for item in w.items
                        if isinstance(item.context_expr, ast.Call)
                        and dotted(item.context_expr.func) == "open" and item.context_expr.args
                        and ast.dump(item.context_expr.args[0]) in read
                        and (_open_mode(item.context_expr) or "").startswith("a")
                        and isinstance(item.optional_vars, ast.Name)]
            marks = [c for b in w.body for c in walk(b) if isinstance(c, ast.Call)
                     and isinstance(c.func, ast.Attribute) and c.func.attr == "write"
                     and isinstance(c.func.value, ast.Name) and c.func.value.id in appended]
            if not marks:
                continue
            line = marks[0].lineno
            loads = any(isinstance(n, ast.Call) and dotted(n.func).rsplit(".", 1)[-1] in LOAD_CALLS
                        for n in walk(f))
            hands_on = any(isinstance(n, ast.Return) and isinstance(n.value, ast.Name)
                           and n.lineno > line for n in walk(f))
            if hands_on and not loads:
                hits.append((line, "IDM404", "the item is marked loaded in the ledger before "
                                             "its caller loads it"))
    return hits


_LAST_LOADED = re.compile(r"(^|_)(last|max|latest)(_|$)|^(last|max|latest)[A-Z]", re.I)
_MAX_SQL = re.compile(r"\bmax\s*\(", re.I)


def _one_day(e: ast.expr) -> bool:
    """`timedelta(days=1)`, `timedelta(1)`, `pd.Timedelta(days=1)`, `DateOffset(days=1)`."""
    if not (isinstance(e, ast.Call) and dotted(e.func).rsplit(".", 1)[-1] in {
            "timedelta", "Timedelta", "DateOffset", "relativedelta"}):
        return False
    days = kw(e, "days")
    if days is None and e.args and dotted(e.func).rsplit(".", 1)[-1] in {"timedelta", "Timedelta"} \
            and not (isinstance(e.args[0], ast.Constant) and isinstance(e.args[0].value, str)):
        days = e.args[0]
    return literal(days) == 1 and len(e.keywords) + len(e.args) == 1


def _read_back(e: ast.expr, assigns: dict[str, list[ast.expr]], depth: int = 0,
               seen: frozenset[str] = frozenset()) -> bool:
    """Is `e` (through the function's assignments) a value read back from the target: a call
    named `*last*`/`*max*`/`*latest*`, or a `SELECT MAX(...)` query?"""
    for n in walk(e):
        if isinstance(n, ast.Call) and _LAST_LOADED.search(dotted(n.func).rsplit(".", 1)[-1]):
            return True
        if isinstance(n, ast.Constant) and isinstance(n.value, str) \
                and _MAX_SQL.search(n.value) and re.search(r"\bselect\b", n.value, re.I):
            return True
        if isinstance(n, ast.Name) and n.id not in seen and depth < 6 and any(
                _read_back(v, assigns, depth + 1, seen | {n.id}) for v in assigns.get(n.id, [])):
            return True
    return False


def day_after_last_loaded(tree: ast.Module) -> list[Hit]:
    """IDM402/IDM403: the next fetch starts the day after the last day already loaded (`start =
    last_loaded + timedelta(days=1)`, the last value read back from the target: a call named
    `*last*`/`*max*`/`*latest*`, or a `MAX(...)` query): a strict cursor on a day with no
    lookback, so rows of that day published after it was loaded are never fetched."""
    hits: list[Hit] = []
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        assigns: dict[str, list[ast.expr]] = {}
        for a in walk(f):
            if isinstance(a, ast.Assign):
                for t in a.targets:
                    if isinstance(t, ast.Name):
                        assigns.setdefault(t.id, []).append(a.value)

        for a in walk(f):
            if isinstance(a, ast.Assign) and isinstance(a.value, ast.BinOp) \
                    and isinstance(a.value.op, ast.Add) and _one_day(a.value.right) \
                    and _read_back(a.value.left, assigns):
                hits.append((a.lineno, "IDM402", "the next start is the last loaded day + 1 "
                                                 "day: no lookback"))
                hits.append((a.lineno, "IDM403", "last loaded day + 1 day is a strict cursor "
                                                 "on a day"))
    return hits


def _only_returns(f: ast.AST | None, hit: Hit) -> bool:
    """A function that only returns its SQL text runs nothing: the order of writes is judged
    where its caller executes it (what the statement says, a cursor, a key, stays here)."""
    return hit[1] in {"IDM201", "IDM301", "IDM502", "IDM404"} and f is not None \
        and returned_sql_text(f) is not None


_BATCH_WRITES = {"to_sql", "executemany", "insert_rows", "execute_values", "execute_batch",
                 "copy_expert", "copy_from", "bulk_insert_mappings", "write_pandas"}
_KEY_ERRORS = re.compile(r"IntegrityError$|UniqueViolation$|DuplicateKey\w*$")


def integrity_guarded_batches(tree: ast.Module) -> tuple[list[Hit], set[int]]:
    """A batch write (`df.to_sql(..., if_exists="append")`, executemany) in a `try` whose
    handler takes the key violation (IntegrityError) and goes on: the table's unique key
    rejects a re-run's rows, so the append is no IDM202; but one duplicate row rolls back the
    whole batch, and the handler logs it as "already loaded": the new rows in it are lost and
    the run succeeds (IDM206, on the handler). One row per statement in such a `try` is the
    insert-or-ignore idiom, rerun-safe, and not reported."""
    hits: list[Hit] = []
    guarded: set[int] = set()
    for t in walk(tree):
        if not isinstance(t, ast.Try):
            continue
        batches = [c for b in t.body for c in walk(b) if isinstance(c, ast.Call)
                   and dotted(c.func).rsplit(".", 1)[-1] in _BATCH_WRITES]
        if not batches:
            continue
        for h in t.handlers:
            types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
            if not any(x is not None and _KEY_ERRORS.search(dotted(x)) for x in types):
                continue
            guarded |= {c.lineno for c in batches}
            if not any(isinstance(n, ast.Raise) or (isinstance(n, ast.Call) and _fails(n))
                       for b in h.body for n in walk(b)):
                hits.append((h.lineno, "IDM206", "a key violation rolls back the whole batch "
                                                 "and is logged as already loaded"))
    return hits, guarded


_READ_SQL = {"read_sql", "read_sql_query", "read_sql_table"}
_FROM_TABLE = re.compile(r"\bfrom\s+[\"`\[]?([\w.]+)", re.I)


def _table_text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id.lower()
    s = string_of(node) if node is not None else None
    return s.text.strip().strip('"`[]').lower() if s is not None else None


def anti_joined_appends(tree: ast.Module) -> set[int]:
    """Lines of `new.to_sql(t, if_exists="append")` where `new = df[~df[k].isin(old[k])]` and
    `old` was read from `t` itself: only rows the table lacks are appended, so a re-run appends
    nothing twice (an anti-join done in pandas; not IDM202)."""
    out: set[int] = set()
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        read_from: dict[str, str] = {}  # frame -> the table it was read from
        kept_against: dict[str, set[str]] = {}  # frame -> tables its anti-join consulted
        assigns = sorted((n for n in walk(f) if isinstance(n, ast.Assign)
                          and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)),
                         key=lambda n: n.lineno)  # source order, not ast.walk's breadth first
        for n in assigns:
            v, name = n.value, n.targets[0].id  # type: ignore[attr-defined]
            if isinstance(v, ast.Call) and dotted(v.func).rsplit(".", 1)[-1] in _READ_SQL:
                q = string_of(v.args[0]) if v.args else None
                m = _FROM_TABLE.search(q.text) if q is not None else None
                if m:
                    read_from[name] = m.group(1).lower()
            elif isinstance(v, ast.Subscript):
                tables = {read_from[x.id]
                          for inv in walk(v.slice)
                          if isinstance(inv, ast.UnaryOp) and isinstance(inv.op, ast.Invert)
                          for c in walk(inv.operand)
                          if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                          and c.func.attr == "isin"
                          for x in walk(c) if isinstance(x, ast.Name) and x.id in read_from}
                if tables:
                    kept_against[name] = tables
        for c in walk(f):
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) \
                    and c.func.attr == "to_sql" and isinstance(c.func.value, ast.Name) \
                    and c.func.value.id in kept_against:
                t = _table_text(c.args[0] if c.args else kw(c, "name"))
                if t and any(t == x or x.endswith("." + t) or t.endswith("." + x)
                             for x in kept_against[c.func.value.id]):
                    out.add(c.lineno)
    return out


_KEY_LOOKUP = re.compile(r"^\s*select\b.*?\bfrom\s+[\"`\[]?([\w.]+)[\"`\]]?\s+where\s+(.*)$",
                         re.I | re.S)
_INSERT_INTO = re.compile(r"^\s*insert\s+(?:ignore\s+)?into\s+[\"`\[]?([\w.]+)[\"`\]]?\s*"
                          r"(?:\(([^)]*)\))?\s*values\b", re.I | re.S)
_EQ_COLUMN = re.compile(r"([A-Za-z_][\w.]*)\s*=(?!=)")
_FETCHES = re.compile(r"^(fetch\w*|get_first|get_records|get_pandas_df|read_sql\w*|"
                      r"execute|exec_driver_sql|scalar\w*|first|one_or_none|all)$")


def _tested_name(test: ast.expr) -> str | None:
    """The name an `if` tests for rows: `x`, `not x`, `len(x) == 0`, `x is None`, `x == []`."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test = test.operand
    if isinstance(test, ast.Compare) and len(test.comparators) == 1:
        test = test.left
    if isinstance(test, ast.Call) and dotted(test.func) == "len" and len(test.args) == 1:
        test = test.args[0]
    return test.id if isinstance(test, ast.Name) else None


def checked_inserts(tree: ast.Module) -> set[int]:
    """Lines of `INSERT INTO t ... VALUES` statements made rerun-safe by an existence check in
    Python: the file looks the row up in `t` by key (`SELECT ... FROM t WHERE k1 = .. AND k2
    = ..`, every key column among the inserted ones), and an `if` on the fetched result either
    guards a write (`if not rows: cur.execute(insert, row)`) or leaves before it (`if found:
    raise AirflowSkipException`). A re-run finds the rows the last run wrote and inserts
    nothing twice (check-then-insert; not IDM201)."""
    lookups: dict[str, list[set[str]]] = {}  # table -> key columns of each gating lookup
    for f in [tree, *(n for n in walk(tree)
                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
        strings: dict[str, PyString] = {}  # variable -> the lookup SQL it holds
        found: list[tuple[str, set[str]]] = []
        for n in walk(f):
            if isinstance(n, ast.Assign) and len(n.targets) == 1 \
                    and isinstance(n.targets[0], ast.Name):
                st = string_of(n.value)
                if st is not None and _KEY_LOOKUP.match(st.text):
                    strings[n.targets[0].id] = st
        fetched: set[str] = set()  # names holding the lookup's result
        looked_up = False
        for n in walk(f):
            if not isinstance(n, ast.Call):
                continue
            for a in n.args[:1]:
                st = strings.get(a.id) if isinstance(a, ast.Name) else string_of(a)
                m = _KEY_LOOKUP.match(st.text) if st is not None else None
                if m:
                    looked_up = True
                    cols = {c.rsplit(".", 1)[-1].lower() for c in _EQ_COLUMN.findall(m.group(2))}
                    if cols:
                        found.append((m.group(1).lower().rsplit(".", 1)[-1], cols))
        if not looked_up or not found:
            continue
        for n in walk(f):
            if isinstance(n, ast.Assign) and len(n.targets) == 1 \
                    and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Call) \
                    and _FETCHES.match(dotted(n.value.func).rsplit(".", 1)[-1]):
                fetched.add(n.targets[0].id)
        gated = any(isinstance(n, ast.If) and _tested_name(n.test) in fetched and (
            any(isinstance(x, (ast.Raise, ast.Return, ast.Continue)) for b in n.body
                for x in walk(b))
            or any(isinstance(c, ast.Call) and dotted(c.func).rsplit(".", 1)[-1] in
                   {"execute", "run", "insert_rows"} for b in n.body + n.orelse
                   for c in walk(b))) for n in walk(f))
        if gated:
            for t, cols in found:
                lookups.setdefault(t, []).append(cols)
    out: set[int] = set()
    if not lookups:
        return out
    for n in walk(tree):
        st = string_of(n) if isinstance(n, (ast.Constant, ast.JoinedStr, ast.BinOp)) else None
        m = _INSERT_INTO.match(st.text) if st is not None else None
        if st is None or m is None:
            continue
        t = m.group(1).lower().rsplit(".", 1)[-1]
        inserted = {c.strip().strip('"`[]').lower() for c in (m.group(2) or "").split(",")}
        if any(m.group(2) is None or keys <= inserted for keys in lookups.get(t, [])):
            out.add(st.line)
    return out


# calls that put an error in front of the person using an interactive app
_UI_ERROR = re.compile(r"^(st|streamlit)\.(error|exception)$|(^|\.)messagebox\.showerror$|"
                       r"^(flask\.)?flash$")


def errors_shown_to_user(tree: ast.Module) -> set[int]:
    """Lines of `except` handlers that show the error to the user of an interactive app
    (`st.error(...)` in a Streamlit page, a Tk error box, a Flask flash): the load runs because
    someone clicked, and that person sees it fail; no scheduler reads an exit status there, so
    the failure is reported, not swallowed (no IDM206)."""
    return {h.lineno for t in walk(tree) if isinstance(t, ast.Try) for h in t.handlers
            if any(isinstance(c, ast.Call) and _UI_ERROR.search(dotted(c.func))
                   for b in h.body for c in walk(b))}


def handlers_naming_unbound(tree: ast.Module) -> set[int]:
    """Lines of `except` handlers naming an exception class through a name the module never
    binds (`except (Exception, psycopg.DatabaseError)` with only psycopg2 imported): Python
    evaluates the tuple when an error arrives, the lookup raises NameError, and the error is
    raised on instead of caught; nothing is swallowed (no IDM206). A star import may bind any
    name: then nothing is settled."""
    bound: set[str] = set(dir(builtins))
    for n in walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            for a in n.names:
                if a.name == "*":
                    return set()
                bound.add((a.asname or a.name).split(".")[0])
        elif isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            bound.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(n.name)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            bound.update(n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
    out: set[int] = set()
    for t in walk(tree):
        if not isinstance(t, ast.Try):
            continue
        for h in t.handlers:
            types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type] if h.type else []
            roots = [dotted(e).split(".")[0] for e in types]
            if any(r and r not in bound for r in roots):
                out.add(h.lineno)
    return out


_DASHBOARDS = {"streamlit", "dash", "gradio", "panel"}


def read_only_dashboard(tree: ast.Module) -> bool:
    """The module is a dashboard page (Streamlit, Dash, Gradio, Panel) that imports no
    orchestrator and writes nothing: its queries are read when someone opens the page and
    only shown. A wall-clock "last updated" or a `current_date` filter there picks what is
    displayed, not what a load writes (no IDM401/IDM501)."""
    imports = imports_of(tree)
    return bool(imports & _DASHBOARDS) and not imports & _ORCHESTRATORS and not _is_load(tree)


def settled_in_the_file(tree: ast.Module, hits: list[Hit]) -> list[Hit]:
    """The file's findings less those its own code settles: check-then-insert (IDM201),
    errors shown to the user of an interactive app (IDM206), and the clock in a read-only
    dashboard page (IDM401/IDM501)."""
    if read_only_dashboard(tree):
        hits = [h for h in hits if h[1] not in {"IDM401", "IDM501"}]
    checked = checked_inserts(tree)
    shown = errors_shown_to_user(tree) | handlers_naming_unbound(tree)
    marks, logged = marked_before_commit(tree)
    hits = [h for h in hits if not ((h[1] == "IDM201" and h[0] in checked | logged)
                                    or (h[1] == "IDM206" and h[0] in shown))]
    handed = offsets_committed_before_hand_on(tree)
    if handed:
        # one risk, the consumer's offsets: reported on the commit to move, not also on an
        # auto-commit left on in its construction
        hits = [h for h in hits if not (h[1] == "IDM405" and "auto-commits" in h[2])]
    hits += [h for h in marks + swallowing_sql_runners(tree) + handed
             if not any(x[0] == h[0] and x[1] == h[1] for x in hits)]
    return hits


# a helper that records an item as loaded in a run log / state table
_MARK_HELPER = re.compile(r"^(write|save|update|insert|add|record)_\w*(log|state|watermark)\w*$|"
                          r"^log_\w*(load|launch|batch|run)\w*$|^mark_\w+$")
_INSERT_ANY = re.compile(r"\binsert\s+into\b", re.I)
_CONNECTS = re.compile(r"(^|\.)(connect|get_conn|get_connection|engine\.begin)$")


def marked_before_commit(tree: ast.Module) -> tuple[list[Hit], set[int]]:
    """A loop over pending items (ids, launches, batches) inside `with connect(...) as conn`,
    each iteration inserting the item's rows through that connection and then calling a helper
    that records the item as loaded (`self.write_etl_log(cfg)`, `mark_loaded(id)`): the helper
    commits its log row on a connection of its own, while the inserts commit only when the
    `with` block ends, after the last item. A failure on a later item rolls back this item's
    rows but its log row stays, so the next run never offers it again: IDM404, on the helper
    call. The log is the loop's state store (a re-run takes only items not logged), so the
    inserts themselves are no bare append, the mark before or after their commit: their lines
    are returned, not IDM201."""
    hits: list[Hit] = []
    keyed: set[int] = set()
    for w in walk(tree):
        if not isinstance(w, (ast.With, ast.AsyncWith)) or not any(
                isinstance(i.context_expr, ast.Call)
                and _CONNECTS.search(dotted(i.context_expr.func)) for i in w.items):
            continue
        for loop in (n for b in w.body for n in walk(b) if isinstance(n, (ast.For, ast.AsyncFor))):
            if isinstance(loop.iter, (ast.List, ast.Tuple, ast.Constant)):
                continue  # a fixed list of items, not the pending ones
            writes: list[ast.expr] = []  # INSERT strings of this iteration
            pending = False  # one of them was executed
            for st in loop.body:
                if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call) \
                        and _MARK_HELPER.match(dotted(st.value.func).rsplit(".", 1)[-1]):
                    if pending:
                        hits.append((st.lineno, "IDM404", "the item is logged as loaded before "
                                                          "its insert commits"))
                    keyed |= {ln for x in writes
                              for ln in range(x.lineno, (x.end_lineno or x.lineno) + 1)}
                    continue
                for n in walk(st):
                    sq = string_of(n) if isinstance(n, (ast.Constant, ast.JoinedStr, ast.Call)) \
                        else None
                    if sq is not None and _INSERT_ANY.search(sq.text) \
                            and isinstance(n, ast.expr):
                        writes.append(n)
                calls = {dotted(n.func).rsplit(".", 1)[-1] for n in walk(st)
                         if isinstance(n, ast.Call)}
                if calls & {"execute", "copy_expert", "copy_from", "executemany"} and writes:
                    pending = True
                if "commit" in calls:
                    pending = False  # committed before the mark: in order
    return hits, keyed


def swallowing_sql_runners(tree: ast.Module) -> list[Hit]:
    """IDM206 for a generic helper that runs whatever SQL it is given (`def execute_query(conn,
    query): try: cur.execute(query) except Error as e: print(e)`) when the file hands it a write
    statement (`execute_query(conn, "UPDATE src SET marked = 1 ...")`): the helper cannot know
    what it runs, so a failed write is printed and the script goes on as if it had committed.
    Reported on the helper's handler; a helper only ever given SELECTs is left alone."""
    strings: dict[str, str] = {}
    for n in walk(tree):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            st = string_of(n.value)
            if st is not None:
                strings[n.targets[0].id] = st.text

    def writes(arg: ast.expr) -> bool:
        if isinstance(arg, ast.Name):
            text = strings.get(arg.id)
        else:
            lit = string_of(arg)
            text = lit.text if lit is not None else None
        return text is not None and bool(_WRITE_SQL.match(text))

    handlers: dict[str, list[tuple[int, int]]] = {}  # helper -> (handler line, SQL param index)
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        params = [a.arg for a in f.args.posonlyargs + f.args.args]
        for t in (n for n in walk(f) if isinstance(n, ast.Try)):
            ran = {a.id for s in t.body for c in walk(s) if isinstance(c, ast.Call)
                   and dotted(c.func).rsplit(".", 1)[-1] in {"execute", "executescript"}
                   for a in c.args[:1] if isinstance(a, ast.Name) and a.id in params}
            if len(ran) != 1:
                continue
            idx = params.index(ran.pop())
            for h in t.handlers:
                names = {dotted(e) for e in (h.type.elts if isinstance(h.type, ast.Tuple)
                                             else [h.type])} if h.type is not None else {"Exception"}
                db_error = any(x in _BROAD or x.rsplit(".", 1)[-1] in _DB_BASE_ERRORS
                               or x.rsplit(".", 1)[-1] in {"Error", "DatabaseError"} for x in names)
                if db_error and not any(isinstance(n, ast.Raise) or (isinstance(n, ast.Call)
                                                                    and _fails(n))
                                        for b in h.body for n in walk(b)):
                    handlers.setdefault(f.name, []).append((h.lineno, idx))
    hits: list[Hit] = []
    for c in walk(tree):
        if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in handlers:
            for line, idx in handlers[c.func.id]:
                if idx < len(c.args) and writes(c.args[idx]) and \
                        (line, "IDM206", "") not in hits:
                    hits.append((line, "IDM206", ""))
    return [(ln, r, "a helper that runs any SQL swallows the failure of a write") for ln, r, _ in hits]


_HANDS_TO_WRITE = re.compile(r"^(store|save|write|insert|load|upsert|persist|sink)\w*$")


def offsets_committed_before_hand_on(tree: ast.Module) -> list[Hit]:
    """IDM405 for a function that polls a consumer, commits its offsets and returns the
    messages (`msgs = receive(consumer)` with `consumer.commit()` before its `return`), whose
    caller then writes them (`store_messages(msgs, conn)`): the offsets are committed before
    the write, one call apart. Reported on the commit, the line to move after the write."""
    commits: dict[str, list[int]] = {}
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) or not any(
                isinstance(r, ast.Return) and r.value is not None for r in walk(f)):
            continue
        for c in walk(f):
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) \
                    and c.func.attr in _OFFSET_COMMITS and _CONSUMERS.search(dotted(c.func.value)):
                commits.setdefault(f.name, []).append(c.lineno)
    hits: list[Hit] = []
    if not commits:
        return hits
    for scope in walk(tree):
        body = getattr(scope, "body", None)
        if not isinstance(body, list):
            continue
        got: set[str] = set()  # names holding messages returned after their commit
        for st in body:
            if isinstance(st, ast.Assign) and isinstance(st.value, ast.Call) \
                    and isinstance(st.value.func, ast.Name) and st.value.func.id in commits:
                got |= {t.id for t in st.targets if isinstance(t, ast.Name)}
                received = st.value.func.id
                continue
            for c in walk(st):
                if got and isinstance(c, ast.Call) and any(
                        isinstance(a, ast.Name) and a.id in got for a in c.args) and (
                        _HANDS_TO_WRITE.match(dotted(c.func).rsplit(".", 1)[-1]) or _is_load(c)):
                    hits.extend((ln, "IDM405", "offsets committed before the caller writes "
                                               "the messages") for ln in commits[received]
                                if (ln, "IDM405") not in {h[:2] for h in hits})
    return hits
