"""Facts about a reviewed project that one file cannot show: which Dagster IO managers,
defined in one module and bound to a resource key in another, append what an asset returns.

An asset file only says `@asset(io_manager_key="sql_io_manager")`; whether its output is
appended again by every run is decided by the IO manager class (`handle_output`) and the
resource key it is bound to (`Definitions(resources={"sql_io_manager": SQLIOManager(...)})`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from .python_rules import (
    DAY_VAR,
    contains_wall_clock,
    dotted,
    kw,
    literal,
    sql_returners,
    string_of,
)

_MAX_BYTES = 400_000
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
    _read_cache: dict[str, bool] = field(default_factory=dict)

    def names_file(self, path: Path) -> bool:
        """Does another reviewed file name this one (an operator's `sql="sql/x.sql"`)?
        Without texts the answer is yes: nothing is known."""
        if not self.texts:
            return True
        return sum(path.name in t for t in self.texts) > (path.name in (_read(path) or ""))

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


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > _MAX_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return None


def _appends(f: ast.AST) -> bool:
    """A `to_sql(..., if_exists="append")` in the method."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
               and n.func.attr == "to_sql" and literal(kw(n, "if_exists")) == "append"
               for n in ast.walk(f))


def _clears(body: list[ast.stmt], returners: dict[str, ast.expr],
            skip: set[int] | None = None) -> bool:
    for n in (x for b in body for x in ast.walk(b)):
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


def _appending_classes(tree: ast.Module) -> dict[str, str | None]:
    """IO manager classes whose handle_output appends; the value is the literal a guard
    compares the asset key with before clearing (`if cleanup == "cleanup":`), if any."""
    out: dict[str, str | None] = {}
    returners = sql_returners(tree)
    for c in ast.walk(tree):
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
        for n in ast.walk(handle):
            if isinstance(n, ast.If) and _clears(n.body, returners):
                guarded |= {id(x) for b in n.body for x in ast.walk(b)}
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


def project_facts(files: list[Path]) -> ProjectFacts:
    facts = ProjectFacts()
    texts = {p: t for p in files if p.suffix in {".py", ".sql"} and (t := _read(p)) is not None}
    # one file reviewed alone says nothing of the project around it
    facts.texts = list(texts.values()) if len(texts) > 1 else []
    classes: dict[str, str | None] = {}
    for p, text in texts.items():
        if p.suffix == ".py" and "IOManager" in text and "handle_output" in text and "to_sql" in text:
            tree = _parse(text)
            if tree is not None:
                classes.update(_appending_classes(tree))
    for p, text in texts.items():
        if p.suffix == ".py" and "def " in text and ("today" in text or "now" in text):
            tree = _parse(text)
            if tree is not None:
                facts.clock_defaults.update(clock_defaults(tree))
    if not classes:
        return facts
    bound = re.compile(r"\b(" + "|".join(map(re.escape, classes)) + r")\s*\(")
    for p, text in texts.items():
        if p.suffix != ".py" or not bound.search(text):
            continue
        tree = _parse(text)
        if tree is None:
            continue
        for n in ast.walk(tree):
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


def clock_defaults(tree: ast.Module) -> dict[str, list[tuple[int, str]]]:
    """Functions (a class by its __init__) with a date parameter whose default is read from
    the wall clock: Python evaluates it once, when the module is imported."""
    out: dict[str, list[tuple[int, str]]] = {}
    for node in ast.walk(tree):
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
        if hits:
            out[name] = hits
    return out
