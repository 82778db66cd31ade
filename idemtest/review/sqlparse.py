"""Parse SQL text into statements with their line numbers, trying several dialects.

sqlglot is imported inside functions: `import idemtest.review` must stay cheap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlglot import exp

DIALECTS = ("postgres", "duckdb", "snowflake", "bigquery", "spark")


@dataclass
class Statement:
    expr: exp.Expression
    line: int
    text: str
    dialect: str


@dataclass
class Parsed:
    statements: list[Statement] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def known_dialect(name: str) -> bool:
    from sqlglot.dialects.dialect import Dialect

    try:
        Dialect.get_or_raise(name)
    except (ValueError, KeyError):
        return False
    return True


def _quiet() -> None:
    # sqlglot logs a warning for every statement it falls back to a Command on.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)


def parse_sql(text: str, dialect: str | None = None, first_line: int = 1) -> Parsed:
    """Split `text` into statements and parse each; `first_line` is the line `text` starts on."""
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import ParseError, TokenError
    from sqlglot.tokens import TokenType

    _quiet()
    candidates = (dialect,) if dialect else DIALECTS
    padded = "\n" * (first_line - 1) + text
    out = Parsed()
    tokens: list[Any] | None = None
    for name in candidates:
        try:
            tokens = Dialect.get_or_raise(name).tokenize(padded)
            break
        except (TokenError, ValueError) as e:
            err = str(e)
    if tokens is None:
        out.errors.append((first_line, f"cannot tokenize SQL: {err.splitlines()[0][:120]}"))
        return out
    chunks: list[list[Any]] = [[]]
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(tok)
    for chunk in chunks:
        if not chunk:
            continue
        start, end, line = chunk[0].start, chunk[-1].end, chunk[0].line
        stmt_text = padded[start:end + 1]
        stmt_padded = "\n" * (line - 1) + stmt_text
        last_error = ""
        for name in candidates:
            try:
                exprs = Dialect.get_or_raise(name).parse(stmt_padded)
            except (ParseError, TokenError, ValueError) as e:
                last_error = str(e).splitlines()[0][:120]
                continue
            for ex in exprs:
                if isinstance(ex, exp.Expression):
                    out.statements.append(Statement(ex, line, stmt_text, name))
            break
        else:
            out.errors.append((line, f"unparseable SQL statement: {last_error}"))
    return out


def table_name(node: exp.Expression | None) -> str | None:
    """Lower-case last name part of a table reference (schema and quotes dropped)."""
    from sqlglot import exp

    if node is None:
        return None
    if isinstance(node, exp.Schema):
        node = node.this
    if isinstance(node, exp.Table):
        if not node.name:
            return None
        parts = [p for p in (node.args.get("catalog"), node.args.get("db"), node.this) if p]
        return ".".join(str(p.name if isinstance(p, exp.Expression) else p) for p in parts).lower()
    if isinstance(node, (exp.Identifier, exp.Var)):
        return str(node.this).lower()
    return None


def same_table(a: str, b: str) -> bool:
    """`analytics.orders` matches `orders` and `warehouse.analytics.orders`, not `raw.orders`
    (the shorter name is the longer one with its leading parts left out)."""
    if a == b:
        return True
    pa, pb = a.split("."), b.split(".")
    n = min(len(pa), len(pb))
    return pa[-n:] == pb[-n:]


def in_tables(name: str, tables: set[str] | list[str]) -> bool:
    return any(same_table(name, t) for t in tables)


def node_line(node: exp.Expression, default: int) -> int:
    """The first line any identifier under `node` sits on (sqlglot keeps it in meta)."""
    from sqlglot import exp

    best: int | None = None
    for sub in node.walk():
        if isinstance(sub, exp.Identifier):
            line = sub.meta.get("line")
            if isinstance(line, int) and (best is None or line < best):
                best = line
    return best if best is not None else default


def tables_read(expr: exp.Expression) -> set[str]:
    from sqlglot import exp

    written = {id(t) for t in _written_nodes(expr)}
    ctes = {c.alias_or_name.lower() for c in expr.find_all(exp.CTE)}
    out: set[str] = set()
    for t in expr.find_all(exp.Table):
        name = table_name(t)
        if id(t) not in written and name and name not in ctes and not name.startswith("@"):
            out.add(name)
    return out


def _written_nodes(expr: exp.Expression) -> list[exp.Expression]:
    from sqlglot import exp

    target = expr.this if isinstance(
        expr, (exp.Insert, exp.Merge, exp.Copy, exp.Update, exp.Delete, exp.Create,
               exp.TruncateTable, exp.Drop)) else None
    if isinstance(expr, exp.TruncateTable):
        return list(expr.expressions)
    if isinstance(target, exp.Schema):
        target = target.this
    return [target] if isinstance(target, exp.Table) else []


def tables_written(expr: exp.Expression) -> set[str]:
    from sqlglot import exp

    if isinstance(expr, (exp.Insert, exp.Merge, exp.Copy, exp.Update, exp.Create)):
        if isinstance(expr, exp.Copy) and not expr.args.get("kind"):
            return set()  # COPY ... TO exports
        return {n for n in (table_name(t) for t in _written_nodes(expr)) if n}
    return set()
