"""Facts about a reviewed project that one file cannot show: which Dagster IO managers,
defined in one module and bound to a resource key in another, append what an asset returns.

An asset file only says `@asset(io_manager_key="sql_io_manager")`; whether its output is
appended again by every run is decided by the IO manager class (`handle_output`) and the
resource key it is bound to (`Definitions(resources={"sql_io_manager": SQLIOManager(...)})`).
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .astwalk import walk
from .python_rules import (
    clock_defaults_of,
    dotted,
    kw,
    literal,
    sql_returners,
    string_of,
)

_MAX_BYTES = 400_000
_BOOKKEEPING = re.compile(r"(^|_)(log|logs|logging|audit|notify|alert|email|metric|metrics)(_|$)",
                          re.I)
_CLEAR_SQL = re.compile(r"^\s*(truncate|delete\s+from|drop\s+table)\b", re.I)


@dataclass
class ProjectFacts:
    # resource key -> the asset key component for which its IO manager clears the table
    # first (`if mode == "cleanup": truncate`), or None when it always appends
    appending_io: dict[str, str | None] = field(default_factory=dict)
    # function or class name -> its parameters whose default is read from the wall clock
    # at import (`start_date: str = datetime.today().strftime(...)`), with their positions
    clock_defaults: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # the text of every .py/.sql file reviewed, for is_read()
    texts: list[str] = field(default_factory=list)
    # names of the .sql files a PostgreSQL operator task runs: the hook executes the file in
    # one call and commits once at the end, so the file is one transaction
    pg_task_files: set[str] = field(default_factory=set)
    # .sql file name -> the tables its INSERT / COPY statements write
    sql_file_writes: dict[str, set[str]] = field(default_factory=dict)
    # table (last name part, lower case) -> tables whose CREATE TABLE has a foreign key to it
    referencers: dict[str, set[str]] = field(default_factory=dict)
    # an Airflow task function of the project empties a table named by its parameters and
    # loads nothing (`@task def truncate(engine, schema, table)`): the project's parameterised
    # to_sql appends in other tasks are the load half of that reload (IDM301, not IDM202)
    param_task_clear: bool = False
    # dbt model name -> the columns of its strict high-water filter on its own table
    # (`col > (SELECT MAX(col) FROM {{ this }})`): the model only ever gains newer rows
    high_water_models: dict[str, set[str]] = field(default_factory=dict)
    # the project's Python texts, comments dropped and whitespace collapsed (embedded_in_py)
    py_flat: list[str] = field(default_factory=list)
    # the project's Python modules (resolved paths), parsed on first use (imported_loaders,
    # run_by_hand_only)
    py_texts: dict[Path, str] = field(default_factory=dict)
    _read_cache: dict[str, bool] = field(default_factory=dict)
    _trees: dict[Path, ast.Module | None] = field(default_factory=dict)
    _imports: dict[Path, list[tuple[Path | None, str, set[str]]]] | None = None
    _loaders: dict[Path, set[str]] = field(default_factory=dict)

    def _tree(self, path: Path) -> ast.Module | None:
        if path not in self._trees:
            text = self.py_texts.get(path)
            self._trees[path] = _parse(text) if text is not None else None
        return self._trees[path]

    def _import_graph(self) -> dict[Path, list[tuple[Path | None, str, set[str]]]]:
        """Each module's imports: (the project module it resolves to or None, the module's
        last name, the names imported, `*` for all)."""
        if self._imports is None:
            self._imports = {}
            modules = set(self.py_texts)
            for p, text in self.py_texts.items():
                if "import" not in text and "%run" not in text:
                    continue
                tree = self._tree(p)
                if tree is None:
                    continue
                out = []
                for n in walk(tree):
                    if isinstance(n, ast.ImportFrom):
                        mod = n.module or ""
                        out.append((_resolve(p, mod, n.level, modules), mod.rsplit(".", 1)[-1],
                                    {a.name for a in n.names}))
                    elif isinstance(n, ast.Import):
                        out += [(_resolve(p, a.name, 0, modules), a.name.rsplit(".", 1)[-1],
                                 {"*"}) for a in n.names]
                out += _notebook_runs(p, text, modules)
                self._imports[p] = out
        return self._imports

    def _module_loaders(self, module: Path) -> set[str]:
        """Top-level functions of a project module that write data (a load call, write SQL,
        a Spark write), directly or through another such function of the module."""
        if module not in self._loaders:
            from .python_rules import _is_load
            from .spark_rules import _writes

            tree = self._tree(module)
            funcs = {f.name: f for f in (tree.body if tree else [])
                     if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
            # (a helper writing a log or audit row is bookkeeping, not the load)
            funcs = {k: f for k, f in funcs.items() if not _BOOKKEEPING.search(k)}
            found = {name for name, f in funcs.items() if _is_load(f) or _writes(f)}
            grew = True
            while grew:
                more = {name for name, f in funcs.items() if name not in found and any(
                    isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in found
                    for c in walk(f))}
                found |= more
                grew = bool(more)
            self._loaders[module] = found
        return self._loaders[module]

    def imported_loaders(self, path: Path) -> set[str]:
        """Names `path` imports from the project's own modules (resolved as Python would,
        from the importing file's folder or one above it) that are functions writing data."""
        out: set[str] = set()
        for module, _, names in self._import_graph().get(path.resolve(), []):
            if module is None or module == path.resolve():
                continue
            loaders = self._module_loaders(module)
            out |= loaders if "*" in names else names & loaders
        return out

    def imported_sql(self, path: Path) -> dict[str, ast.FunctionDef]:
        """The SQL-returning functions (a body of one `return f\"\"\"insert ...\"\"\"`) of the
        project's own modules that `path` imports, by the name it calls them with:
        `queries.insert_day` after `from . import queries`, `insert_day` after `from .queries
        import insert_day`. Their statements run where the caller executes what they return."""
        from .python_rules import returned_sql_text

        me = path.resolve()
        tree = self._tree(me)
        if tree is None:
            return {}
        modules = set(self.py_texts)

        def returners(module: Path | None) -> dict[str, ast.FunctionDef]:
            t = self._tree(module) if module is not None and module != me else None
            return {f.name: f for f in (t.body if t else []) if isinstance(f, ast.FunctionDef)
                    and returned_sql_text(f) is not None}

        out: dict[str, ast.FunctionDef] = {}
        for n in tree.body:
            if isinstance(n, ast.ImportFrom):
                mod = n.module or ""
                for a in n.names:
                    # `from . import queries`: a module; `from .queries import f`: a function
                    sub = _resolve(me, f"{mod}.{a.name}" if mod else a.name, n.level, modules)
                    alias = a.asname or a.name
                    if sub is not None:
                        out.update({f"{alias}.{k}": f for k, f in returners(sub).items()})
                    else:
                        f = returners(_resolve(me, mod, n.level, modules)).get(a.name)
                        if f is not None:
                            out[alias] = f
            elif isinstance(n, ast.Import):
                for a in n.names:
                    funcs = returners(_resolve(me, a.name, 0, modules))
                    out.update({f"{a.asname or a.name}.{k}": f for k, f in funcs.items()})
        return out

    def run_by_hand_only(self, path: Path, tree: ast.Module, line: int) -> bool:
        """Is the function holding `line` a library function (a module of definitions only;
        a plain function, or a method of a class with no base) that the project's modules
        importing its module never call, or that only tasks of DAGs with no schedule (`@once`,
        None) call? Its writes then run only when someone runs them by hand: no schedule,
        retry or backfill repeats them. (A module nothing reviewed imports is run from
        somewhere else: a command line entry point, a notebook.)"""
        me = path.resolve()
        if me not in self.py_texts or not _library(tree):
            return False
        func = _holder(tree, line)
        if func is None:
            return False
        name = func.name
        # referenced in its own module (another function calls it): who calls that is unknown
        if any((isinstance(n, ast.Name) and n.id == name)
               or (isinstance(n, ast.Attribute) and n.attr == name)
               for n in walk(tree)):
            return False
        graph = self._import_graph()
        importers: list[Path] = []
        callers: list[Path] = []
        for p, imports in graph.items():
            if p == me:
                continue
            for module, last, _ in imports:
                if module is None and last == me.stem:
                    return False  # an import of a module of that name we cannot place
                if module == me:
                    importers.append(p)
                    tree2 = self._tree(p)
                    if tree2 is not None and _references(tree2, name):
                        callers.append(p)
                    break
        if not importers:
            return False  # run from somewhere the review does not see (a CLI, a notebook)
        if not callers:
            return True  # the modules using this one never call this function
        from .orchestration import unscheduled_dags_only

        return all((t := self._tree(p)) is not None and unscheduled_dags_only(t) for p in callers)

    def names_file(self, path: Path) -> bool:
        """Does another reviewed file name this one (an operator's `sql="sql/x.sql"`)?
        Without texts the answer is yes: nothing is known."""
        if not self.texts:
            return True
        return sum(path.name in t for t in self.texts) > (path.name in (_read(path) or ""))

    def embedded_in_py(self, sql: str) -> bool:
        """Is every statement of the `.sql` text also a string of one Python module of the
        project (a reference copy of the SQL a module runs through its DB-API connection)?"""
        stmts = [_flat(s) for s in _flat_lines(sql).split(";")]
        stmts = [s for s in stmts if s]
        return bool(stmts) and any(all(s in t for s in stmts) for t in self.py_flat)

    def is_read(self, table: str) -> bool:
        """Does any reviewed file read `table` (FROM/JOIN it, ref()/source() it)? Without
        texts (one file reviewed alone) the answer is yes: nothing is known."""
        name = table.rsplit(".", 1)[-1].strip('"`[]').lower()
        if not self.texts or not name:
            return True
        if name not in self._read_cache:
            n = re.escape(name)
            rx = re.compile(rf"(delete\s+)?\b(?:from|join)\s+(?:[\w\"`\[\]]+\.)*[\"`\[]?{n}\b|"
                            rf"\b(?:ref|source)\([^)]*['\"]{n}['\"]", re.I)
            self._read_cache[name] = any(m.group(1) is None for t in self.texts
                                         if name in t.lower() for m in rx.finditer(t))
        return self._read_cache[name]


def _resolve(caller: Path, module: str, level: int, modules: set[Path]) -> Path | None:
    """The project module `from <module> import ...` in `caller` loads: relative to the
    caller's package for a relative import, else from the caller's folder or one above it
    (how a script, a DAG folder or a repository root on sys.path finds it)."""
    parts = [x for x in module.split(".") if x]
    if level:
        bases = [caller.parent.parents[level - 2] if level > 1 else caller.parent]
    else:
        bases = [caller.parent, *caller.parent.parents]
    for base in bases:
        stem = base.joinpath(*parts) if parts else base
        for cand in (stem.with_suffix(".py") if parts else None, stem / "__init__.py"):
            if cand is not None and cand in modules:
                return cand
    return None


_NOTEBOOK_RUN = re.compile(r"^#\s*MAGIC\s+%run\s+(\S+)", re.M)


def _notebook_runs(caller: Path, text: str, modules: set[Path]) -> list[tuple[Path | None, str, set[str]]]:
    """A Databricks notebook's `# MAGIC %run ../includes/common_funcs`: it runs that notebook
    of the project in its own namespace, an import of all its names."""
    out: list[tuple[Path | None, str, set[str]]] = []
    for m in _NOTEBOOK_RUN.finditer(text):
        target = Path(os.path.normpath(caller.parent / m.group(1)))
        cand = target if target.suffix == ".py" else target.with_name(target.name + ".py")
        out.append((cand if cand in modules else None, target.stem, {"*"}))
    return out


def _library(tree: ast.Module) -> bool:
    """A module of definitions only: imports, functions, classes, constants (no code that
    runs when it is executed, no `if __name__ == "__main__":`)."""
    return all(isinstance(s, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                              ast.ClassDef, ast.Assign, ast.AnnAssign, ast.Pass))
               or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
               for s in tree.body)


def _holder(tree: ast.Module, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The undecorated top-level function, or method of a class with no base, around `line`."""
    for s in tree.body:
        cands = [s] if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) else (
            [m for m in s.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
            if isinstance(s, ast.ClassDef) and not s.decorator_list and all(
                dotted(b) == "object" for b in s.bases) else [])
        for f in cands:
            if f.lineno <= line <= (f.end_lineno or f.lineno):
                if f.decorator_list or f.name.startswith("__"):
                    return None
                return f
    return None


def _references(tree: ast.Module, name: str) -> bool:
    """Does the module name `name` in its code (a call, a reference, a string)?"""
    return any((isinstance(n, ast.Name) and n.id == name)
               or (isinstance(n, ast.Attribute) and n.attr == name)
               or (isinstance(n, ast.Constant) and n.value == name)
               or (isinstance(n, ast.alias) and name in {n.name, n.asname})
               for n in walk(tree))


def _flat_lines(text: str) -> str:
    return "\n".join(re.sub(r"--.*$", "", ln) for ln in text.splitlines())


def _flat(text: str) -> str:
    return " ".join(text.split()).lower()


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > _MAX_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _parse(text: str) -> ast.Module | None:
    from .pyparse import parse_python

    try:
        return parse_python(text)
    except (SyntaxError, ValueError, RecursionError):
        return None


def _appends(f: ast.AST) -> bool:
    """A `to_sql(..., if_exists="append")` in the method."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
               and n.func.attr == "to_sql" and literal(kw(n, "if_exists")) == "append"
               for n in walk(f))


def _clears(body: list[ast.stmt], returners: dict[str, ast.expr],
            skip: set[int] | None = None) -> bool:
    for n in (x for b in body for x in walk(b)):
        if skip and id(n) in skip:
            continue
        s = string_of(n) if isinstance(n, (ast.Constant, ast.JoinedStr)) else None
        if s is None and isinstance(n, ast.Call):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) \
                else None
            ret = returners.get(name) if name else None
            s = string_of(ret) if ret is not None else None
        if s is not None and _CLEAR_SQL.match(s.text):
            return True
    return False


def _param_clear_task(tree: ast.Module) -> bool:
    """An Airflow task function that only empties a table built from its parameters."""
    for f in walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) or _appends(f) or not any(
                dotted(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1] == "task"
                for d in f.decorator_list):
            continue
        params = {a.arg for a in f.args.args + f.args.kwonlyargs}
        for n in walk(f):
            s = string_of(n) if isinstance(n, ast.JoinedStr) else None
            if s is not None and isinstance(n, ast.JoinedStr) and _CLEAR_SQL.match(s.text) and not re.search(r"\bwhere\b", s.text, re.I) \
                    and any(isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name)
                            and v.value.id in params for v in n.values):
                return True
    return False


def _appending_classes(tree: ast.Module) -> dict[str, str | None]:
    """IO manager classes whose handle_output appends; the value is the literal a guard
    compares the asset key with before clearing (`if cleanup == "cleanup":`), if any."""
    out: dict[str, str | None] = {}
    returners = sql_returners(tree)
    for c in walk(tree):
        if not isinstance(c, ast.ClassDef) or not any(
                dotted(b).endswith("IOManager") for b in c.bases):
            continue
        handle = next((f for f in c.body if isinstance(f, ast.FunctionDef)
                       and f.name == "handle_output"), None)
        if handle is None or not _appends(handle):
            continue
        guard: str | None = None
        unguarded_clear = False
        guarded: set[int] = set()  # the nodes of guarded branches
        for n in walk(handle):
            if isinstance(n, ast.If) and _clears(n.body, returners):
                guarded |= {id(x) for b in n.body for x in walk(b)}
                t = n.test
                if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq) \
                        and isinstance(t.comparators[0], ast.Constant) \
                        and isinstance(t.comparators[0].value, str):
                    guard = t.comparators[0].value
                else:
                    unguarded_clear = True  # cleared under a condition we cannot read
        top_clear = _clears(handle.body, returners, guarded)
        if not unguarded_clear and not top_clear:
            out[c.name] = guard
    return out


_PG_OPERATORS = {"PostgresOperator", "PostgresqlOperator"}
_SQL_OPERATORS = {"SQLExecuteQueryOperator"}
_REFERENCES = re.compile(r"\breferences\s+([\w.\"]+)", re.I)
_WRITES = re.compile(r"\b(?:insert\s+into|copy)\s+([\w.\"]+)", re.I)
_CREATE = re.compile(r"\bcreate\s+(?:unlogged\s+)?table\s+(?:if\s+not\s+exists\s+)?([\w.\"]+)",
                     re.I)


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip('"`[]').lower()


def _pg_task_files(tree: ast.Module) -> set[str]:
    """The .sql files given to PostgreSQL operator tasks (`sql="sql/x.sql"` or a list); a
    generic SQL operator counts when its connection id names PostgreSQL."""
    out: set[str] = set()
    for n in walk(tree):
        if not isinstance(n, ast.Call):
            continue
        op = dotted(n.func).rsplit(".", 1)[-1]
        conn = literal(kw(n, "conn_id")) or literal(kw(n, "postgres_conn_id"))
        if op not in _PG_OPERATORS and not (
                op in _SQL_OPERATORS and isinstance(conn, str)
                and re.search(r"postgres|\bpg", conn, re.I)):
            continue
        sql = kw(n, "sql")
        items = sql.elts if isinstance(sql, (ast.List, ast.Tuple)) else [sql]
        for i in items:
            v = literal(i) if i is not None else None
            if isinstance(v, str) and v.strip().lower().endswith(".sql"):
                out.add(v.strip().replace("\\", "/").rsplit("/", 1)[-1])
    return out


def _foreign_keys(text: str) -> dict[str, set[str]]:
    """Table -> the tables its CREATE TABLE references (foreign keys), by last name part."""
    out: dict[str, set[str]] = {}
    starts = list(_CREATE.finditer(text))
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        refs = {_last(r) for r in _REFERENCES.findall(text[m.end():end])}
        if refs:
            out.setdefault(_last(m.group(1)), set()).update(refs)
    return out


def project_facts(files: list[Path]) -> ProjectFacts:
    facts = ProjectFacts()
    texts = {p: t for p in files if p.suffix in {".py", ".sql"} and (t := _read(p)) is not None}
    # one file reviewed alone says nothing of the project around it
    facts.texts = list(texts.values()) if len(texts) > 1 else []
    if facts.texts:
        facts.py_flat = [_flat(_flat_lines(t)) for p, t in texts.items() if p.suffix == ".py"]
        facts.py_texts = {p.resolve(): t for p, t in texts.items() if p.suffix == ".py"}
    classes: dict[str, str | None] = {}
    for p, text in texts.items():
        if p.suffix == ".py" and "IOManager" in text and "handle_output" in text and "to_sql" in text:
            tree = _parse(text)
            if tree is not None:
                classes.update(_appending_classes(tree))
    for p, text in texts.items():
        if p.suffix == ".py" and "Operator" in text and ".sql" in text:
            tree = _parse(text)
            if tree is not None:
                facts.pg_task_files |= _pg_task_files(tree)
        elif p.suffix == ".sql":
            if "is_incremental" in text:
                from .sqlfile import _STRICT_HIGH_WATER

                cols = {c.lower() for c in _STRICT_HIGH_WATER.findall(text)}
                if cols:
                    facts.high_water_models.setdefault(p.stem, set()).update(cols)
            if _REFERENCES.search(text):
                for table, refs in _foreign_keys(text).items():
                    for r in refs:
                        facts.referencers.setdefault(r, set()).add(table)
            writes = {_last(t) for t in _WRITES.findall(text)}
            if writes:
                facts.sql_file_writes.setdefault(p.name, set()).update(writes)
    for p, text in texts.items():
        if p.suffix == ".py" and "airflow" in text and "task" in text and re.search(
                r"\btruncate\b|\bdelete\s+from\b", text, re.I):
            tree = _parse(text)
            if tree is not None and _param_clear_task(tree):
                facts.param_task_clear = True
                break
    for p, text in texts.items():
        if p.suffix == ".py" and "def " in text and ("today" in text or "now" in text):
            tree = _parse(text)
            if tree is not None:
                facts.clock_defaults.update(clock_defaults_of(tree))
    if not classes:
        return facts
    bound = re.compile(r"\b(" + "|".join(map(re.escape, classes)) + r")\s*\(")
    for p, text in texts.items():
        if p.suffix != ".py" or not bound.search(text):
            continue
        tree = _parse(text)
        if tree is None:
            continue
        for n in walk(tree):
            pairs: list[tuple[object, ast.expr]] = []
            if isinstance(n, ast.Dict):
                pairs = [(literal(k), v) for k, v in zip(n.keys, n.values, strict=False)
                         if k is not None]
            elif isinstance(n, ast.Call):
                pairs = [(k.arg, k.value) for k in n.keywords if k.arg]
            for key, v in pairs:
                if isinstance(key, str) and isinstance(v, ast.Call):
                    cls = dotted(v.func).rsplit(".", 1)[-1]
                    if cls in classes:
                        facts.appending_io[key] = classes[cls]
    return facts
