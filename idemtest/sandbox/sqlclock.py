"""The SQL clock: SQL's clock functions read the run's simulated time.

A load that filters on the database's clock (`WHERE updated_at > now() -
INTERVAL '1 hour'`) would read the real time and could not be judged. So the
instrumented connections pass every statement through `clocked` before it
reaches the database: while a simulated clock runs (`engine.clock.sql_now`),
each call of a clock function is replaced by a typed literal of the simulated
time — `TIMESTAMPTZ '2026-06-01 01:00:00+00'` for `now()`, `DATE '2026-06-01'`
for `current_date` — so arithmetic and comparisons behave as the real function
would at that instant (sandbox sessions use TimeZone UTC on both backends).

Cost: a statement whose text names no clock function costs one regex search;
only the others are tokenized and parsed with sqlglot (imported on first need),
and where the clock calls sit is cached on (text, dialect): the literal is spliced per statement.

The rewrite is a splice, not a regeneration: sqlglot's tokenizer finds the
calls (so strings, comments and quoted identifiers are never touched) and its
parser vouches for them (the calls it sees must be exactly the calls the
tokenizer found), and only those characters change — the rest of the user's SQL
reaches the database byte for byte. When anything is in doubt (sqlglot cannot
tokenize or parse the text, the two disagree, or a call sits in a definition
the database stores, such as a column DEFAULT or a view) the statement is left
as written.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from ..engine.clock import sql_now

__all__ = ["FUNCTIONS", "clocked", "mentions_clock", "rewrite"]

# every spelling of either dialect, as whole words: the screen that keeps ordinary
# statements away from the parser (a false hit, e.g. in a string, only costs a parse)
_MENTION = re.compile(
    r"\b(?:now|today|current_(?:date|time(?:stamp)?|localtime(?:stamp)?)|localtime(?:stamp)?"
    r"|(?:transaction|statement|clock)_timestamp|get_current_time(?:stamp)?)\b",
    re.IGNORECASE,
)

_CALL = frozenset({"call"})  # name()
_BARE = frozenset({"bare"})  # name
_BARE_OR_PRECISION = frozenset({"bare", "precision"})  # name or name(p)

#: dialect -> function name -> (SQL type of its value, the forms the dialect accepts).
#: A spelling the dialect rejects (DuckDB `current_timestamp()`, `statement_timestamp()`)
#: is not rewritten, so the database still reports the error production would see.
FUNCTIONS: dict[str, dict[str, tuple[str, frozenset[str]]]] = {
    "duckdb": {
        "now": ("timestamptz", _CALL),
        "current_timestamp": ("timestamptz", _BARE),
        "transaction_timestamp": ("timestamptz", _CALL),
        "get_current_timestamp": ("timestamptz", _CALL),
        "current_date": ("date", frozenset({"bare", "call"})),
        "today": ("date", _CALL),
        "current_time": ("timetz", _BARE),
        "get_current_time": ("timetz", _CALL),
        "localtimestamp": ("timestamp", _BARE),
        "current_localtimestamp": ("timestamp", _CALL),
        "localtime": ("time", _BARE),
        "current_localtime": ("time", _CALL),
    },
    "postgres": {
        "now": ("timestamptz", _CALL),
        "current_timestamp": ("timestamptz", _BARE_OR_PRECISION),
        "transaction_timestamp": ("timestamptz", _CALL),
        "statement_timestamp": ("timestamptz", _CALL),
        "clock_timestamp": ("timestamptz", _CALL),
        "current_date": ("date", _BARE),
        "current_time": ("timetz", _BARE_OR_PRECISION),
        "localtimestamp": ("timestamp", _BARE_OR_PRECISION),
        "localtime": ("time", _BARE_OR_PRECISION),
    },
    # Spark SQL (session time zone UTC in the sandbox): TIMESTAMP is the session-local type;
    # `unix_timestamp()` and `localtimestamp` are left out (sqlglot rewrites them into nodes
    # the text does not hold, so the parse check would refuse the statement anyway)
    "spark": {
        "current_timestamp": ("timestamp", frozenset({"bare", "call"})),
        "now": ("timestamp", _CALL),
        "current_date": ("date", frozenset({"bare", "call"})),
        "curdate": ("date", _CALL),
    },
}


def mentions_clock(sql: str) -> bool:
    """True when the text names a clock function somewhere (perhaps only in a string)."""
    # substring tests on the lowered text run at C speed (~0.5 µs for a typical
    # statement, 10x less than the regex alone); the regex then checks whole words
    low = sql.lower()
    if "now" in low or "current_" in low or "today" in low or "localtime" in low or "_timestamp" in low:
        return _MENTION.search(sql) is not None
    return False


def clocked(sql: Any, dialect: str, fragment: bool = False) -> Any:
    """`sql` as the database should run it now: clock calls replaced by the simulated
    time while a run's clock is active, else `sql` itself (the same object)."""
    now = sql_now()
    if now is None or not isinstance(sql, str) or not mentions_clock(sql):
        return sql
    return _rewrite(sql, dialect, now, fragment)


def rewrite(sql: str, dialect: str, now: datetime, fragment: bool = False) -> str:
    """`sql` with every clock-function call replaced by a literal of `now`.

    `fragment`: `sql` is an expression list (a DuckDB relation's `filter` /
    `project` argument), not a statement. Unparsable or doubtful SQL comes back unchanged."""
    if not mentions_clock(sql):
        return sql
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return _rewrite(sql, dialect, now, fragment)


def _rewrite(sql: str, dialect: str, now: datetime, fragment: bool) -> str:
    spans = _plan(sql, dialect, fragment)
    if not spans:
        return sql
    now = now.astimezone(timezone.utc)
    out, pos = [], 0
    for first, last, sql_type, precision in spans:
        out.append(sql[pos:first])
        out.append(_literal(sql_type, now, precision))
        pos = last + 1
    out.append(sql[pos:])
    return "".join(out)


# The plan (where the clock calls are) is cached on the text alone: the simulated clock
# ticks, so each statement gets a new time, but the parse is done once per statement text.
@lru_cache(maxsize=4096)
def _plan(sql: str, dialect: str, fragment: bool) -> tuple[tuple[int, int, str, int | None], ...]:
    funcs = FUNCTIONS.get(dialect)
    if funcs is None:
        return ()
    try:
        with _quiet():
            return _splice(sql, dialect, funcs, fragment)
    except Exception:
        # sqlglot could not read it: the database will, and reports its own errors
        return ()


def _splice(sql: str, dialect: str, funcs: dict[str, tuple[str, frozenset[str]]], fragment: bool) -> tuple[tuple[int, int, str, int | None], ...]:
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.tokens import TokenType

    d = Dialect.get_or_raise(dialect)
    tokens = d.tokenize(sql)
    calls: list[tuple[int, int, str, int | None]] = []  # (first char, last char, SQL type, precision)
    for i, tok in enumerate(tokens):
        name = tok.text.lower()
        if name not in funcs or sql[tok.start : tok.end + 1].lower() != name:
            continue  # another word, or a quoted identifier / string of that spelling
        if i > 0 and tokens[i - 1].token_type == TokenType.DOT:
            continue  # qualified (x.now()): someone's own function or column
        kinds = [t.token_type for t in tokens[i + 1 : i + 4]]
        if kinds[:2] == [TokenType.L_PAREN, TokenType.R_PAREN]:
            form, last, precision = "call", tokens[i + 2].end, None
        elif kinds == [TokenType.L_PAREN, TokenType.NUMBER, TokenType.R_PAREN]:
            form, last, precision = "precision", tokens[i + 3].end, int(tokens[i + 2].text)
        elif kinds[:1] == [TokenType.L_PAREN]:
            continue  # called with arguments: not the clock function
        else:
            form, last, precision = "bare", tok.end, None
        sql_type, forms = funcs[name]
        if form not in forms:
            continue
        calls.append((tok.start, last, sql_type, precision))
    if not calls:
        return ()
    # the parser must see exactly these calls, none in a stored definition
    trees = d.parse("SELECT " + sql) if fragment else d.parser().parse(tokens, sql)
    seen = 0
    for tree in trees:
        if tree is None:
            continue
        for node in tree.walk():
            if _is_clock_call(node, funcs):
                if _stored(node):
                    return ()
                seen += 1
    if seen != len(calls):
        return ()
    return tuple(calls)


def _is_clock_call(node: Any, funcs: dict[str, tuple[str, frozenset[str]]]) -> bool:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        if str(node.this).lower() not in funcs:
            return False
    elif not isinstance(node, _clock_classes()):
        return False
    parent = node.parent
    # the right side of a dot is qualified (x.now()): the tokenizer skips those too
    return not (isinstance(parent, exp.Dot) and parent.expression is node)


@lru_cache(maxsize=1)
def _clock_classes() -> tuple[type, ...]:
    from sqlglot import exp

    names = ("CurrentTimestamp", "CurrentDate", "CurrentTime", "CurrentDatetime", "Localtimestamp", "Localtime")
    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


def _stored(node: Any) -> bool:
    """In a definition the database keeps and evaluates later (a column DEFAULT, a
    view, a macro): a literal there would freeze one run's time into the schema."""
    from sqlglot import exp

    if node.find_ancestor(exp.ColumnDef, exp.ColumnConstraint, exp.AlterColumn) is not None:
        return True
    create = node.find_ancestor(exp.Create)
    return create is not None and str(create.args.get("kind") or "").upper() != "TABLE"


def _literal(sql_type: str, now: datetime, precision: int | None) -> str:
    """A typed literal of `now` (aware UTC) as the function would return it in a UTC session."""
    if precision is not None and precision < 6:
        step = 10 ** (6 - max(precision, 0))
        us = now.microsecond
        now += timedelta(microseconds=(us + step // 2) // step * step - us)  # rounds like PostgreSQL
    wall = now.replace(tzinfo=None)
    if sql_type == "date":
        return f"DATE '{wall.date().isoformat()}'"
    if sql_type == "timestamp":
        return f"TIMESTAMP '{wall.isoformat(sep=' ')}'"
    if sql_type == "time":
        return f"TIME '{wall.time().isoformat()}'"
    if sql_type == "timetz":
        return f"TIMETZ '{wall.time().isoformat()}+00'"
    return f"TIMESTAMPTZ '{wall.isoformat(sep=' ')}+00'"


# --- keeping sqlglot's warnings about the user's SQL out of their logs -----------------
_parsing = threading.local()
_filter_lock = threading.Lock()
_filter_installed = False


class _QuietFilter(logging.Filter):
    """Drops sqlglot's records ("falling back to parsing as a Command") while this
    thread parses for the SQL clock; other sqlglot users keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_parsing, "on", False)


class _quiet:
    def __enter__(self) -> None:
        global _filter_installed
        if not _filter_installed:
            with _filter_lock:
                if not _filter_installed:
                    logging.getLogger("sqlglot").addFilter(_QuietFilter())
                    _filter_installed = True
        _parsing.on = True

    def __exit__(self, *exc: Any) -> None:
        _parsing.on = False
