"""The house rules, checked: no import cycle inside idemtest, no import from a
lower layer back up, and a pytest plugin that loads without the core.

Imports inside functions count (a lazy import still ties two modules
together); imports under `if TYPE_CHECKING:` do not (they never run)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import idemtest

PACKAGE = Path(idemtest.__file__).resolve().parent

# lowest first: a module may import its own layer or lower ones, never higher
LAYERS: list[tuple[str, ...]] = [
    ("idemtest._defaults", "idemtest._json", "idemtest._errors", "idemtest._extras"),
    ("idemtest.spec", "idemtest.keys"),
    ("idemtest.engine", "idemtest.engine.model", "idemtest.engine.diff", "idemtest.engine.clock"),
    ("idemtest.instrument",),
    ("idemtest.sandbox",),  # and everything below it
    ("idemtest.context",),
    ("idemtest.engine.generate", "idemtest.engine.systematic", "idemtest.engine.minimize", "idemtest.engine.interleave", "idemtest.engine.isolate", "idemtest.engine.properties", "idemtest.review"),
    ("idemtest.engine.execute", "idemtest.engine.report"),
    ("idemtest.engine.search",),
    ("idemtest.decorator", "idemtest.fixtures"),
    ("idemtest.plugin", "idemtest.cli", "idemtest", "idemtest.adapters"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(name: str) -> int:
    best, depth = -1, -1
    for rank, names in enumerate(LAYERS):
        for prefix in names:
            # the longest matching prefix decides (idemtest.engine.model beats idemtest.engine)
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > depth and (prefix != "idemtest" or name == "idemtest"):
                best, depth = rank, len(prefix)
    assert best >= 0, f"{name} is in no layer: add it to LAYERS in tests/test_layout.py"
    return best


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for a in node.names:
                sub = f"{origin}.{a.name}"
                found.add(sub if sub in MODULES else origin)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_engine():
    # guards the guard: a parser that found no edges would pass everything below
    assert "idemtest.engine.model" in GRAPH["idemtest.engine.execute"]
    assert "idemtest.engine.execute" in GRAPH["idemtest.engine.search"]
    assert len(MODULES) > 30


def test_no_import_cycle():
    assert cycles(GRAPH) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_cycle_finder(graph, expected):
    assert cycles(graph) == expected


def test_no_import_from_a_lower_layer_up():
    upward = sorted(f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})" for a, deps in GRAPH.items() for b in deps if layer(b) > layer(a))
    assert upward == []


def test_the_engine_never_imports_pytest_or_the_plugin():
    for name, path in MODULES.items():
        if name.startswith(("idemtest.engine", "idemtest.sandbox", "idemtest.spec", "idemtest.context", "idemtest.instrument")):
            assert "pytest" not in imports_of_all(path), name
            assert not GRAPH[name] & {"idemtest.plugin", "idemtest.fixtures", "idemtest.decorator"}, name


def imports_of_all(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


HEAVY = ["dagster", "duckdb", "hypothesis", "pandas", "psycopg", "psycopg2", "sqlalchemy", "sqlglot", "faker", "time_machine", "testcontainers", "idemtest.engine.search", "idemtest.sandbox.duckdb"]


def test_loading_the_plugin_imports_no_heavy_module():
    code = "import sys, idemtest.plugin; print(' '.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_public_names_belong_to_idemtest():
    for name in idemtest.__all__:
        if not name.startswith("__"):
            assert getattr(idemtest, name).__module__ == "idemtest", name
    assert repr(idemtest.Spec).startswith("<class 'idemtest.Spec'")
