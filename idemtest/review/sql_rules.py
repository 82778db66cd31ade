"""Rules over SQL statements and over the ordered writes of one scope.

A scope is whatever runs as one unit: a `.sql` file, a Python function, an Airflow module.
Its events (statements, commits, `to_sql` calls, watermark saves) are in execution order,
so rules can ask "was the DELETE committed before the INSERT ran?".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .sqlparse import in_tables, node_line, same_table, table_name, tables_read, tables_written

if TYPE_CHECKING:
    from sqlglot import exp

    from .sqlparse import Statement

STATE_TABLE = re.compile(
    r"watermark|high_?water|checkpoint|bookmark|cursor|(^|_)state$|^state_|etl_runs|last_run|"
    r"sync_state|load_state"
)
STAGING_TABLE = re.compile(r"(^|_)(stg|staging|tmp|temp|scratch|new|swap)($|_)|__dbt_tmp")
LOG_TABLE = re.compile(r"(^|_)(log|logs|audit|run_log|job_runs)$")
# a table of per-run load statistics (null counts, row counts): bookkeeping like a log
RUN_STATS_TABLE = re.compile(r"^((etl|load|run|job|dq|quality|pipeline)_)?statistics?$|"
                             r"^(etl|load|run|job|dq|pipeline)_(stats|metrics)$")
MUTABLE_COLUMN = re.compile(
    r"updated|modified|(^|_)ts$|timestamp|version|(^|_)hash|status|loaded_at|ingested|"
    r"batch_id|run_id|(^|_)etl_|synced"
)
CURSOR_NAME = re.compile(
    r"watermark|high_?water|cursor|since|checkpoint|bookmark|last_\w+|prev_max|max_\w+|from_ts"
)
# Surrogate keys and sequence numbers: unique, so a `>` cursor on one has no ties to drop.
ID_COLUMN = re.compile(r"^(_?id|\w+_id|rowid|objectid|oid|fid|gid|seq|seq_no|sequence_id|event_seq)$")
# Columns stamped when the row lands (loaders, CDC tools, dbt): they only grow with commit
# order, so a `>=` cursor on one cannot miss a late row; the overlap is the key's business.
LOAD_TIME_COLUMN = re.compile(
    r"^_?(loaded|ingested|received|synced|inserted|extracted|landed|etl_loaded|dbt_loaded|"
    r"load|ingest|ingestion|sync|extract)_?(at|ts|time|timestamp|date|datetime|dt)?$|"
    r"^_(sdc|airbyte|fivetran|dlt|peerdb|stitch)_|^_?etl_(ts|time|timestamp|loaded_at)$|"
    r"^(received_at|loaded_at|ingested_at|_loaded_at|_ingested_at)(_date)?$"
)
BACKFILL_NAME = re.compile(r"backfill|reprocess|rerun|re_run|replay|restate|reload")
_WALL_FUNCS = {"NOW", "GETDATE", "SYSDATE", "SYSTIMESTAMP", "LOCALTIMESTAMP", "GETUTCDATE",
               "CURRENT_TIMESTAMP", "CURRENT_DATE", "UTC_TIMESTAMP", "TODAY"}


@dataclass
class Event:
    # sql | begin | commit | to_sql | rows (hook insert_rows) | load (a load job's write) |
    # save_state | opaque (SQL whose text comes from the caller)
    kind: str
    line: int
    stmt: Statement | None = None
    table: str | None = None
    if_exists: str | None = None
    has_method: bool = False
    fixed_table: bool = False  # the table name is a literal, not built from a parameter


@dataclass
class Scope:
    file: str
    name: str
    events: list[Event] = field(default_factory=list)
    autocommit: bool = False
    incremental: bool = False  # the code keeps a cursor / takes a window
    lookback: bool = False  # the Python side subtracts a lookback before querying
    backfill: bool = False
    partitioned: bool = False  # a parameter names the partition/day the scope loads
    # the run's logical date is at hand ({{ ds }}, data_interval_start): an Airflow task
    logical_date: bool = False
    # a read-only query file (a report, a dbt view/table model): whoever runs it replaces
    # its output with the result, so a trailing `now() - interval` window is a rolling
    # report rebuilt each run, not a cursor
    rebuilds: bool = False


Hit = tuple[int, str, str]  # line, rule id, detail


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _is_staging(name: str | None) -> bool:
    # The schema counts too: `staging.orders` is a staging table.
    return bool(name and any(STAGING_TABLE.search(p) for p in name.split(".")))


def _is_state(name: str | None) -> bool:
    return bool(name and STATE_TABLE.search(_last(name)))


# A copy kept aside (`orders_backup`, `bak_orders`): no reader depends on it, and refreshing it
# (drop, then CREATE ... AS SELECT from the live table) leaves the live table as it was.
BACKUP_TABLE = re.compile(r"(^|_)(backup|bak|bkp)($|_)")


def _is_backup(name: str | None) -> bool:
    return bool(name and BACKUP_TABLE.search(_last(name)))


def _is_log(name: str | None) -> bool:
    return bool(name and (LOG_TABLE.search(_last(name)) or RUN_STATS_TABLE.search(_last(name))))


def is_wall_clock(node: exp.Expression) -> bool:
    from sqlglot import exp

    for sub in node.walk():
        if isinstance(sub, (exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentDatetime,
                            exp.CurrentTime)):
            return True
        if type(sub).__name__ in {"CurrentTimestampLTZ", "Localtimestamp", "UnixSeconds"}:
            return True
        if isinstance(sub, exp.Anonymous) and str(sub.this).upper() in _WALL_FUNCS:
            return True
        if isinstance(sub, exp.Column) and sub.name.upper() in {"SYSDATE", "CURRENT_TIMESTAMP"}:
            return True
    return False


def _value_is_wall_clock(node: exp.Expression) -> bool:
    """Is the value compared against the clock? A subquery's value is what it selects: in
    `effdt = (SELECT max(effdt) ... WHERE effdt <= SYSDATE)` (the row in effect now) the
    clock only filters inside it, the value is a date from the data."""
    from sqlglot import exp

    inner = node.this if isinstance(node, exp.Paren) else node
    if isinstance(inner, exp.Subquery):
        inner = inner.this
    if isinstance(inner, exp.Select):
        return any(is_wall_clock(p) for p in inner.expressions)
    return is_wall_clock(node)


def _has_lookback(node: exp.Expression) -> bool:
    from sqlglot import exp

    for sub in node.walk():
        if isinstance(sub, (exp.Sub, exp.DateSub, exp.DateAdd, exp.TimestampSub, exp.TsOrDsAdd,
                            exp.TimestampAdd, exp.DatetimeSub, exp.Interval)):
            return True
        if isinstance(sub, exp.Anonymous) and "ADD" in str(sub.this).upper():
            return True
    return False


_DAYS_PER_UNIT = {"DAY": 1, "DAYS": 1, "WEEK": 7, "WEEKS": 7, "MONTH": 28, "MONTHS": 28,
                  "YEAR": 365, "YEARS": 365}


def _lookback_days(node: exp.Expression) -> int:
    """Days of the longest literal interval subtracted in a bound (`now() - interval '365 day'`),
    0 when none can be read."""
    from sqlglot import exp

    best = 0
    for sub in node.walk():
        if isinstance(sub, (exp.DateSub, exp.DatetimeSub, exp.TimestampSub)) \
                and isinstance(sub.expression, exp.Literal):
            # BigQuery's `date_sub(current_date, interval 1 year)`: the amount and unit on the call
            amount = sub.expression
        elif isinstance(sub, exp.Interval):
            amount = sub.this
        else:
            continue
        text = f"{amount.name if isinstance(amount, exp.Literal) else ''} " \
               f"{sub.args['unit'].name if sub.args.get('unit') is not None else ''}"
        m = re.match(r"\s*(\d+)\s*([A-Za-z]+)", text)
        if m and m.group(2).upper() in _DAYS_PER_UNIT:
            best = max(best, int(m.group(1)) * _DAYS_PER_UNIT[m.group(2).upper()])
    return best


def _bound_column(node: exp.Expression) -> exp.Expression | None:
    """The column a comparison bounds: the column itself, or a column seen through a day or
    type conversion or an aggregate (`DATE(event_time) > ...`, `CAST(ts AS DATE) > ...`,
    `HAVING MAX(event_time) > ...`): the bound still follows that column."""
    from sqlglot import exp

    if isinstance(node, exp.Column):
        return node
    if isinstance(node, (exp.Date, exp.Cast, exp.TryCast, exp.TsOrDsToDate, exp.Max)) \
            and isinstance(node.this, exp.Column):
        return node.this
    return None


def _comparisons(where: exp.Expression) -> list[tuple[Any, Any, Any, bool, bool]]:
    """(node, column, other side, lower bound?, strict?) for each bound on a column."""
    from sqlglot import exp

    out: list[tuple[Any, Any, Any, bool, bool]] = []
    for cmp in where.find_all(exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ):
        left, right = cmp.this, cmp.expression
        flipped = False
        if _bound_column(left) is None and _bound_column(right) is not None:
            left, right, flipped = right, left, True
        if not isinstance(left, exp.Column) and (isinstance(cmp, exp.EQ)
                                                 or not _is_cursor_value(right)):
            continue  # only a cursor bound is followed through DATE()/CAST()/MAX()
        left = _bound_column(left)
        if left is None:
            continue
        if isinstance(cmp, exp.EQ):
            out.append((cmp, left, right, True, False))
            out.append((cmp, left, right, False, False))
            continue
        lower = isinstance(cmp, (exp.GT, exp.GTE)) != flipped
        out.append((cmp, left, right, lower, isinstance(cmp, (exp.GT, exp.LT))))
    for btw in where.find_all(exp.Between):
        if isinstance(btw.this, exp.Column):
            out.append((btw, btw.this, btw.args["low"], True, False))
            out.append((btw, btw.this, btw.args["high"], False, False))
    return out


# A row's creation stamp (created_at, fecha_creacion, registro_creado_el): in
# `created > X OR updated > X` the update stamp is the one the cursor follows.
_CREATION_COLUMN = re.compile(r"creat|crea[cdt]|cria[cdt]|insert")
_UPDATE_COLUMN = re.compile(r"modif|actuali|atuali")


def _is_cursor_value(node: exp.Expression) -> bool:
    from sqlglot import exp

    if isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, (exp.Placeholder, exp.Parameter)):
        return True
    if isinstance(node, (exp.Subquery, exp.Select)):
        return node.find(exp.Max) is not None
    if isinstance(node, exp.Column):
        return bool(CURSOR_NAME.search(node.name.lower()))
    if isinstance(node, exp.Literal) and node.is_string:
        # `'{last_loaded}'`: a Python value quoted into the SQL reads as a string whose text is
        # the name of the variable; a cursor by its name as a bare column would be
        text = str(node.this).lower()
        return bool(re.fullmatch(r"[a-z_]\w*", text) and CURSOR_NAME.search(text))
    return False


def _rebuilds(e: exp.Expression, scope: Scope | None) -> bool:
    """The statement's result replaces its target whole: CREATE OR REPLACE / CREATE TABLE AS /
    CREATE VIEW, or a plain query in a read-only query file."""
    from sqlglot import exp

    if isinstance(e, exp.Create):
        return bool(e.args.get("replace")) or not e.args.get("exists")
    return isinstance(e, exp.Query) and scope is not None and scope.rebuilds


def _where_clauses(expr: exp.Expression) -> list[exp.Expression]:
    from sqlglot import exp

    if isinstance(expr, (exp.Delete, exp.Update)):
        # A DELETE/UPDATE filter selects rows to change, not a source window; only their
        # subqueries read sources.
        own = expr.args.get("where")
        return [w for w in expr.find_all(exp.Where) if w is not own]
    # a HAVING filters the groups a query reads: `HAVING MAX(t) > (SELECT MAX(t) ...)` too
    return [*expr.find_all(exp.Where), *expr.find_all(exp.Having)]


def statement_hits(stmt: Statement, scope: Scope | None) -> list[Hit]:
    """Rules that need only the statement itself."""
    from sqlglot import exp

    e = stmt.expr
    hits: list[Hit] = []
    target = table_name(e.this) if isinstance(e, (exp.Insert, exp.Update, exp.Merge)) else None

    # IDM204: DO NOTHING on rows that carry a version / update time.
    if isinstance(e, exp.Insert):
        conflict = e.args.get("conflict")
        if conflict is not None and "NOTHING" in str(conflict.args.get("action") or "").upper():
            cols = {c.name.lower() for c in e.find_all(exp.Column)}
            cols |= {i.name.lower() for i in e.this.find_all(exp.Identifier)} if e.this else set()
            if any(MUTABLE_COLUMN.search(c) for c in cols):
                hits.append((stmt.line, "IDM204", f"into {target}"))

    # IDM205: MERGE matched on a column that changes.
    if isinstance(e, exp.Merge):
        on = e.args.get("on")
        updated: set[str] = set()
        for when in e.find_all(exp.When):
            then = when.args.get("then")
            if isinstance(then, exp.Update):
                for eq in then.expressions:
                    if isinstance(eq, exp.EQ) and isinstance(eq.this, exp.Column):
                        updated.add(eq.this.name.lower())
        extra = []
        if on is not None:
            for eq in on.find_all(exp.EQ):
                for side in (eq.this, eq.expression):
                    if isinstance(side, exp.Column):
                        n = side.name.lower()
                        if (n in updated or MUTABLE_COLUMN.search(n)) and n not in extra:
                            extra.append(n)
        if extra:
            hits.append((stmt.line, "IDM205", f"on {', '.join(extra)} of {target}"))

    # IDM401 (state table set from the clock).
    if isinstance(e, (exp.Update, exp.Insert, exp.Merge)) and _is_state(target):
        values = e.expression if isinstance(e, exp.Insert) else e
        if values is not None and is_wall_clock(values):
            hits.append((stmt.line, "IDM401", f"{target} set from the clock"))

    # Cursor and window filters in what the statement reads.
    reported_501 = False
    for where in _where_clauses(e):
        cursor_hits: list[tuple[str, str, Hit]] = []  # (column, cursor value, hit)
        comps = _comparisons(where)
        by_col: dict[str, list[tuple[exp.Expression, exp.Expression, bool, bool]]] = {}
        for node, col, other, lower, strict in comps:
            by_col.setdefault(col.sql().lower(), []).append((node, other, lower, strict))
        for bounds in by_col.values():
            lowers = [b for b in bounds if b[2]]
            uppers = [b for b in bounds if not b[2]]
            wall_lower = [b for b in lowers if _value_is_wall_clock(b[1])]
            in_task = scope is not None and scope.logical_date
            if lowers and uppers and all(_value_is_wall_clock(b[1]) for b in bounds):
                if not reported_501:
                    line = node_line(lowers[0][0], stmt.line)
                    hits.append((line, "IDM503" if in_task else "IDM501",
                                 "window computed from the current date"))
                    reported_501 = True
                continue
            if wall_lower and not uppers:
                node, other = wall_lower[0][0], wall_lower[0][1]
                if isinstance(e, exp.Select) and not _has_lookback(other):
                    # `WHERE d > CURRENT_DATE` in a plain query finds rows from the future: a
                    # data-quality check, not a window (a trailing window subtracts from now)
                    continue
                if _rebuilds(e, scope):
                    # the last N days recomputed whole each run: a rolling report, rerun-safe
                    continue
                grouped = where.parent if isinstance(where.parent, exp.Select) else e
                if isinstance(grouped, exp.Select) and grouped.args.get("group") is not None \
                        and _lookback_days(other) >= 30:
                    # totals recounted over a month or more back from now: a late row is
                    # counted by the next run; no cursor moves past it
                    continue
                hits.append((node_line(node, stmt.line), "IDM401", "filter on now()"))
                continue
            if len(lowers) > 1 and not uppers:
                # `d >= '2022-11-01' AND d > (SELECT max(d) FROM this)`: a fixed start date
                # beside the cursor bounds nothing the cursor does not
                fixed = [b for b in lowers if isinstance(b[1], exp.Literal)]
                if len(lowers) - len(fixed) == 1:
                    lowers = [b for b in lowers if not isinstance(b[1], exp.Literal)]
            if uppers or len(lowers) != 1:
                continue  # a bounded window or an equality, not a cursor
            node, other, _, strict = lowers[0]
            if not _is_cursor_value(other) or _has_lookback(other):
                continue
            if scope is not None and scope.lookback:
                continue
            line = node_line(node, stmt.line)
            col = node.find(exp.Column)
            col_name = col.name.lower() if col is not None else ""
            if ID_COLUMN.match(col_name):
                # a surrogate key (`id > last_id`) is unique: no row can share the last value,
                # and the cursor follows the key's order, not an event time a late row carries;
                # but a page of it (`LIMIT n`) ordered first by another column skips for ever
                # the unread rows whose key is below the page's max
                if strict and _paged_by_other_column(where.parent, col_name):
                    hits.append((line, "IDM403", node.sql(comments=False)[:80]))
                continue
            if LOAD_TIME_COLUMN.search(col_name):
                # no lookback is needed on a load-time column; ties still need `>=`
                if strict:
                    hits.append((line, "IDM403", node.sql(comments=False)[:80]))
                continue
            value = other.sql().lower()
            cursor_hits.append((col_name, value, (line, "IDM402", node.sql(comments=False)[:80])))
            if strict:
                cursor_hits.append((col_name, value,
                                    (line, "IDM403", node.sql(comments=False)[:80])))
        # `created_at > X OR updated_at > X`: one cursor read through several columns is one
        # risk; report it on the update-time column (the one a max(updated_at) cursor follows)
        by_value: dict[str, list[tuple[str, str, Hit]]] = {}
        for ch in cursor_hits:
            by_value.setdefault(ch[1], []).append(ch)
        for group in by_value.values():
            stamps = list(dict.fromkeys(c for c, _, _ in group))
            keep = next((c for c in stamps if MUTABLE_COLUMN.search(c)
                         or _UPDATE_COLUMN.search(c)), None) or next(
                (c for c in stamps if not _CREATION_COLUMN.search(c)), stamps[-1])
            hits.extend(h for c, _, h in group if c == keep)
    return hits


def _paged_by_other_column(select: object, col_name: str) -> bool:
    """`SELECT ... WHERE id > :last ORDER BY other, id LIMIT n`: a page whose order does not
    start with the cursor's column."""
    from sqlglot import exp

    if not isinstance(select, exp.Select) or select.args.get("limit") is None:
        return False
    order = select.args.get("order")
    if order is None or not order.expressions:
        return False
    first = order.expressions[0].find(exp.Column)
    return first is not None and first.name.lower() != col_name


def _kind(stmt: Statement) -> str:
    """Classify a statement for sequence rules."""
    from sqlglot import exp

    e = stmt.expr
    if isinstance(e, exp.Transaction):
        return "begin"
    if isinstance(e, (exp.Commit, exp.Rollback)):
        return "commit"
    if isinstance(e, exp.Command) and str(e.this).upper() in {"BEGIN", "START"}:
        return "begin"
    if isinstance(e, (exp.Delete, exp.TruncateTable)):
        return "clear"
    if isinstance(e, exp.Drop) and str(e.args.get("kind") or "").upper() == "TABLE":
        return "clear"
    if isinstance(e, exp.Create) and e.args.get("replace"):
        return "replace"
    if isinstance(e, exp.Create) and str(e.args.get("kind") or "").upper() == "TABLE":
        # CREATE TABLE IF NOT EXISTS keeps what is there: it clears nothing.
        return "other" if e.args.get("exists") else "create"
    if isinstance(e, (exp.Insert, exp.Copy, exp.Merge, exp.Update)):
        return "write"
    return "other"


def _cleared_tables(stmt: Statement) -> set[str]:
    from sqlglot import exp

    e = stmt.expr
    if isinstance(e, exp.TruncateTable):
        return {n for n in (table_name(t) for t in e.expressions) if n}
    if isinstance(e, exp.Drop) and e.args.get("tables"):
        return {n for n in (table_name(t) for t in e.args["tables"]) if n}
    n = table_name(e.this)
    return {n} if n else set()


def _is_temp(stmt: Statement) -> bool:
    from sqlglot import exp

    props = stmt.expr.args.get("properties")
    return props is not None and props.find(exp.TemporaryProperty) is not None


def _is_bare_append(stmt: Statement) -> str | None:
    """Target table of an INSERT/COPY that adds rows without any key check."""
    from sqlglot import exp

    e = stmt.expr
    if isinstance(e, exp.Insert):
        if e.args.get("overwrite") or e.args.get("conflict") is not None:
            return None
        if str(e.args.get("alternative") or "").upper() in {"REPLACE", "IGNORE"}:
            return None  # SQLite/DuckDB INSERT OR REPLACE / OR IGNORE: keyed on the primary key
        target = table_name(e.this)
        source = e.expression
        # INSERT ... SELECT ... WHERE NOT EXISTS (... target ...): an anti-join on the target.
        if source is not None and target and in_tables(target, tables_read(source)):
            return None
        return target
    if isinstance(e, exp.Copy) and e.args.get("kind"):
        # Snowflake COPY INTO skips files it already loaded, unless FORCE = TRUE.
        if re.match(r"\s*copy\s+into\b", stmt.text, re.I) and \
                not re.search(r"force\s*=\s*true", stmt.text, re.I):
            return None
        return table_name(e.this)
    return None


def _accumulating_upsert(stmt: Statement) -> str | None:
    """Target of an upsert whose DO UPDATE adds the incoming value to the stored one
    (`ON CONFLICT (k) DO UPDATE SET n = t.n + EXCLUDED.n`, MySQL `n = n + VALUES(n)`): keyed,
    but a rerun of the same rows adds their totals again, so it is not idempotent."""
    from sqlglot import exp

    e = stmt.expr
    conflict = e.args.get("conflict") if isinstance(e, exp.Insert) else None
    if conflict is None or "NOTHING" in str(conflict.args.get("action") or "").upper():
        return None
    for eq in conflict.args.get("expressions") or []:
        if not isinstance(eq, exp.EQ) or not isinstance(eq.this, exp.Column) \
                or not isinstance(eq.expression, exp.Add):
            continue
        col = eq.this.name.lower()
        sides = [eq.expression.this, eq.expression.expression]
        stored = any(isinstance(x, exp.Column) and x.name.lower() == col
                     and x.table.lower() not in {"excluded", "values"} for x in sides)
        incoming = any((isinstance(x, exp.Column) and x.table.lower() == "excluded")
                       or (isinstance(x, exp.Anonymous) and x.name.lower() == "values")
                       or isinstance(x, exp.Values) for x in sides)
        if stored and incoming:
            return table_name(e.this)
    return None


def _reads_for_upsert(stmt: Statement) -> set[str]:
    from sqlglot import exp

    e = stmt.expr
    if isinstance(e, exp.Merge) or (isinstance(e, exp.Insert) and e.args.get("conflict")):
        return tables_read(e)
    return set()


def scope_hits(scope: Scope) -> list[Hit]:
    """Statement rules plus the rules that need the order of events in one scope."""
    hits: list[Hit] = []
    events = scope.events
    # Transaction id per event: a change between two events means something committed.
    txn: list[int] = []
    current, explicit = 0, False
    for ev in events:
        kind = _kind(ev.stmt) if ev.kind == "sql" and ev.stmt else ev.kind
        if kind == "begin":
            current += 1
            explicit = True
            txn.append(current)
            continue
        if kind == "commit":
            current += 1
            explicit = False
            txn.append(current)
            continue
        if (ev.kind == "to_sql" and not explicit) or ev.kind in {"rows", "load"}:
            current += 1  # pandas / insert_rows / a load job commit on their own connection
        if ev.kind == "save_state" and ev.stmt is None:
            current += 1  # a non-SQL store (Airflow Variable, a file) is never transactional
        txn.append(current)
        if (scope.autocommit and not explicit) or (ev.kind == "save_state" and ev.stmt is None):
            current += 1
        if (ev.kind == "to_sql" and not explicit) or ev.kind in {"rows", "load"}:
            current += 1

    kinds = [(_kind(ev.stmt) if ev.kind == "sql" and ev.stmt else ev.kind) for ev in events]

    def writes(i: int) -> set[str]:
        ev = events[i]
        if ev.kind in {"to_sql", "rows", "load"} and ev.table:
            return {ev.table}
        if ev.kind == "sql" and ev.stmt and kinds[i] == "write":
            return tables_written(ev.stmt.expr)
        # CREATE TABLE with columns only makes an empty table (a schema script's DROP then
        # CREATE): no rows come back, so it is no reload; CREATE ... AS SELECT is one.
        if ev.kind == "sql" and ev.stmt and kinds[i] in {"create", "replace"} \
                and ev.stmt.expr.args.get("expression") is not None:
            return tables_written(ev.stmt.expr)
        return set()

    cleared_before: set[str] = set()
    # table -> tables a DELETE on it consulted: `DELETE FROM stage USING target` prunes a
    # staging table against the target, so inserting what is left is keyed.
    pruned_against: dict[str, set[str]] = {}
    opaque_before = False
    for i, ev in enumerate(events):
        st = ev.stmt
        if ev.kind == "sql" and st is not None:
            hits.extend(statement_hits(st, scope))
            kind = kinds[i]
            if kind == "clear":
                for t in _cleared_tables(st):
                    pruned_against.setdefault(t, set()).update(tables_read(st.expr))
                    later = [j for j in range(i + 1, len(events)) if in_tables(t, writes(j))]
                    if (later and txn[later[0]] != txn[i] and not _is_staging(t)
                            and not _is_state(t) and not _is_backup(t)):
                        rule = "IDM502" if scope.backfill else "IDM301"
                        hits.append((ev.line, rule, f"{_last(t)} is cleared and reloaded in "
                                                    "separate transactions"))
                    cleared_before.add(t)
            elif kind in {"create", "replace"}:
                cleared_before |= tables_written(st.expr)
                if _is_temp(st):
                    cleared_before |= tables_written(st.expr)
            elif kind == "write":
                target = _is_bare_append(st) or _accumulating_upsert(st)
                if target and st.expr.expression is not None and any(
                        in_tables(target, pruned_against.get(src, set()))
                        for src in tables_read(st.expr.expression)):
                    target = None
                if target and not opaque_before and not _is_staging(target) \
                        and not _is_state(target) \
                        and not _is_log(target) and not in_tables(target, cleared_before) \
                        and not any(in_tables(target, _reads_for_upsert(ev2.stmt))
                                    for ev2 in events[i + 1:] if ev2.stmt):
                    hits.append((ev.line, "IDM201", f"into {target}"))
        elif ev.kind == "opaque":
            opaque_before = True
        elif ev.kind == "rows" and ev.table and ev.if_exists == "append":
            t = ev.table
            if not opaque_before and not _is_staging(t) and not _is_log(t) and not _is_state(t) \
                    and not in_tables(t, cleared_before) \
                    and not any(in_tables(t, _reads_for_upsert(ev2.stmt))
                                for ev2 in events[i + 1:] if ev2.stmt):
                hits.append((ev.line, "IDM201", f"insert_rows into {t}"))
        elif ev.kind == "to_sql" and ev.table:
            t = ev.table
            if ev.if_exists == "append" and not ev.has_method and not opaque_before \
                    and not _is_staging(t) \
                    and not _is_log(t) and not in_tables(t, cleared_before) \
                    and not any(in_tables(t, _reads_for_upsert(ev2.stmt))
                                for ev2 in events[i + 1:] if ev2.stmt):
                hits.append((ev.line, "IDM202", f"into {t}"))
            # replace then append of the same table in one run rebuilds it whole: the appends
            # cannot duplicate and nothing incremental is lost.
            rebuilt = ev.if_exists == "replace" and any(
                e2.kind == "to_sql" and e2.table and same_table(t, e2.table)
                and e2.if_exists == "append" for e2 in events[i + 1:])
            # A replace drops what other runs loaded: wrong for an incremental job, and for a
            # job loading one partition (a day parameter) into a table not named after it.
            partition_replace = scope.partitioned and ev.fixed_table
            if ev.if_exists == "replace" and (scope.incremental or partition_replace) \
                    and not _is_staging(t) and not rebuilt:
                hits.append((ev.line, "IDM203", f"into {t}"))
            if ev.if_exists in {"replace", "create"}:  # create: an empty frame replaced
                cleared_before.add(t)
        # IDM404: a watermark stored, then a load that commits separately afterwards.
        is_save = ev.kind == "save_state" or (
            ev.kind == "sql" and st is not None and kinds[i] == "write"
            and any(_is_state(t) for t in tables_written(st.expr)))
        # A save that follows a load in the same scope is that load's bookkeeping.
        loaded_before = any(w and not all(_is_state(t) for t in w)
                            for w in (writes(k) for k in range(i)))
        if is_save and not loaded_before:
            for j in range(i + 1, len(events)):
                w = writes(j)
                if w and not all(_is_state(t) for t in w) and txn[j] != txn[i]:
                    hits.append((ev.line, "IDM404", f"before the load of {', '.join(sorted(w))}"))
                    break
    return hits


def scope_tables(scope: Scope) -> tuple[list[str], list[str]]:
    """Inputs and outputs of a scope, for the job inventory."""
    reads: set[str] = set()
    written: set[str] = set()
    for ev in scope.events:
        if ev.stmt is not None:
            written |= tables_written(ev.stmt.expr) | (
                _cleared_tables(ev.stmt) if _kind(ev.stmt) == "clear" else set())
            reads |= tables_read(ev.stmt.expr)
        elif ev.kind in {"to_sql", "rows", "load"} and ev.table:
            written.add(ev.table)
    return sorted(reads - written), sorted(written)
