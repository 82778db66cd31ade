"""`.sql` files: plain scripts and dbt models (Jinja rendered first)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .sql_rules import (
    BACKFILL_NAME,
    LOAD_TIME_COLUMN,
    Event,
    Hit,
    Scope,
    _cleared_tables,
    _is_staging,
    scope_hits,
)
from .sqlparse import Statement, parse_sql, table_name
from .templating import normalise_placeholders, render_jinja

_AIRFLOW_MACRO = re.compile(
    r"\{\{\s*(ds|ds_nodash|ts|data_interval_start|data_interval_end|logical_date|"
    r"execution_date|next_ds|prev_ds|macros\.|params\.|dag_run|ti\.|task_instance)\b")
_REF_CALL = re.compile(r"\{\{-?\s*ref\(")
_SOURCE_CALL = re.compile(r"\{\{-?\s*source\(")
_REF_NAME = re.compile(r"\{\{-?\s*ref\(\s*['\"](\w+)['\"]\s*\)")
# the column before the comparison, or the type of a cast (`cast(ts as date) >=`)
_STRICT_COL = re.compile(r"(\w+)\s*\)?\s*>(?!=)")
_INCLUSIVE_COL = re.compile(r"(\w+)\s*\)?\s*>=")
_DAY_GRAIN = re.compile(r"^(date|day|ds|date_day|day_date|\w+_(date|day))$")
_APPEND_STRATEGIES = {"append"}
# `col > (SELECT MAX(col) FROM {{ this }})`: the incremental branch appends only rows newer
# than every row already there
_STRICT_HIGH_WATER = re.compile(
    r"(\w+)\s*>(?!=)\s*\(?\s*select\s+max\(\s*\1\s*\)\s+from\s+\{\{\s*this\s*\}\}",
    re.IGNORECASE)
# a row's creation time never changes, so a row cannot come back with a newer stamp (an
# updated_at or a load-time stamp can: the same row is appended again)
_CREATION_TIME = re.compile(r"^(\w+_)?(created|creation|event|occurred)(_(at|time|ts|on|date))?$")
_KEYLESS_OK = {"insert_overwrite", "microbatch"}  # these replace whole partitions/batches


@dataclass
class SqlFileResult:
    hits: list[Hit] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def review_sql_file(path: str, text: str, dialect: str | None,
                    siblings: list[str] | None = None,
                    is_read: Callable[[str], bool] | None = None,
                    named: bool = True, one_txn: bool = False,
                    referencers: dict[str, set[str]] | None = None,
                    high_water_models: dict[str, set[str]] | None = None) -> SqlFileResult:
    """`siblings`: the text of the other `.sql` files of its folder (see _upserted_rows);
    `is_read(table)`: does any file of the project read the table; `named`: does another file
    name this one (see _clear_only_task); `one_txn`: a PostgreSQL operator task runs the file
    in one transaction; `referencers`: table -> tables with a foreign key to it;
    `high_water_models`: dbt model -> columns of its strict high-water filter on itself."""
    out = SqlFileResult()
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    rendered = render_jinja(text, this_name=stem)
    cfg = rendered.config
    if cfg.get("materialized") == "incremental":
        strategy = cfg.get("incremental_strategy", "")
        # reported on the argument a user changes: the strategy, or the materialization
        # that wants a unique_key beside it
        lines = rendered.config_lines
        line = rendered.config_line or 1
        if strategy in _APPEND_STRATEGIES:
            out.hits.append((lines.get("incremental_strategy", line), "IDM601",
                             f"model {stem} uses incremental_strategy='append'"))
        elif (not cfg.get("unique_key") and strategy not in _KEYLESS_OK
              and not any(_CREATION_TIME.search(c.lower())
                          for c in _STRICT_HIGH_WATER.findall(text))):
            # a strict high-water mark on the model's own creation time: a re-run appends nothing
            # already there (what it can miss is IDM402/IDM403, reported on the filter);
            # `>=` re-appends the last batch, so it stays IDM601
            out.hits.append((lines.get("materialized", line), "IDM601", f"model {stem}"))
    texts = [rendered.text]
    if "is_incremental()" in text:
        # dbt runs the model both ways: review the branch an incremental run takes too.
        texts.append(render_jinja(text, this_name=stem, incremental=True).text)
    seen: set[tuple[int, str]] = {(ln, r) for ln, r, _ in out.hits}
    for rendered_text in texts:
        errors: list[tuple[int, str]] = []
        for hit in _review_body(path, stem, text, rendered_text, dialect, errors,
                                incremental=cfg.get("materialized") == "incremental",
                                siblings=siblings or [], is_read=is_read, named=named,
                                one_txn=one_txn, referencers=referencers or {}):
            if (hit[0], hit[1]) not in seen:
                seen.add((hit[0], hit[1]))
                out.hits.append(hit)
        out.errors += [e for e in errors if e not in out.errors]
    if _REF_CALL.search(text) and not _SOURCE_CALL.search(text):
        # A load-time stamp of an upstream dbt model: dbt builds that model whole, in one
        # transaction, before this one runs, so no row with the last stamp commits later;
        # `>` takes exactly the batches not yet seen (`>=` would re-read the last one).
        src = text.splitlines()
        out.hits = [h for h in out.hits if not (
            h[1] == "IDM403" and 0 < h[0] <= len(src) and any(
                LOAD_TIME_COLUMN.search(c.lower()) for c in _STRICT_COL.findall(src[h[0] - 1])))]
    refs = set(_REF_NAME.findall(text))
    if refs and high_water_models and not _SOURCE_CALL.search(text):
        # every upstream model appends only rows newer than its own max of the column: it
        # never gains a row at or below what this model already took, so `>` on that column
        # misses nothing here (late rows are lost upstream, reported on its filter)
        shared = set.intersection(*(high_water_models.get(r, set()) for r in refs))
        src = text.splitlines()
        out.hits = [h for h in out.hits if not (
            h[1] in {"IDM402", "IDM403"} and 0 < h[0] <= len(src) and any(
                c.lower() in shared for c in _STRICT_COL.findall(src[h[0] - 1])))]
    if cfg.get("materialized") == "incremental":
        out.hits += [h for h in _upstream_cursor(text, stem) if (h[0], h[1]) not in
                     {(ln, r) for ln, r, _ in out.hits}]
    if cfg.get("unique_key"):
        # `day >= max(day)` re-reads the last whole day and merges it on the model's key: a
        # lookback of one period (only a timestamp cursor misses rows late within the day)
        src = text.splitlines()
        out.hits = [h for h in out.hits if not (
            h[1] == "IDM402" and 0 < h[0] <= len(src) and any(
                _DAY_GRAIN.search(c.lower()) for c in _INCLUSIVE_COL.findall(src[h[0] - 1])))]
    return out


# `col > (SELECT MAX(col) FROM <model>)`, the model written `{{ ref('m') }}` or by its name
_MAX_OF_MODEL = re.compile(
    r"\w+\s*>=?\s*\(?\s*select\s+max\(\s*\w+\s*\)\s+from\s+"
    r"(?:\{\{-?\s*ref\(\s*['\"](\w+)['\"]\s*\)\s*-?\}\}|([\w.]+))", re.IGNORECASE)


def _blank_comments(text: str) -> str:
    """The SQL with its comments blanked (newlines kept, so line numbers stay)."""
    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r"/\*.*?\*/|--[^\n]*", blank, text, flags=re.DOTALL)


def _upstream_cursor(text: str, stem: str) -> list[Hit]:
    """IDM404 for an incremental model whose cursor is the MAX of an upstream model
    (`where d > (select max(d) from {{ ref('parent') }})`, or the parent by name beside a
    `-- depends_on: {{ ref('parent') }}`): dbt builds the parent first, in the same run, so the
    cursor has already moved past the rows this run should take; they are filtered out and
    never loaded. (The model's own MAX, `{{ this }}`, is what it has loaded.)"""
    refs = {r.lower() for r in _REF_NAME.findall(text)} - {stem.lower()}
    hits: list[Hit] = []
    code = _blank_comments(text)
    for m in _MAX_OF_MODEL.finditer(code):
        model = (m.group(1) or m.group(2).rsplit(".", 1)[-1]).lower()
        if model in refs:
            line = code.count("\n", 0, m.start()) + 1
            hits.append((line, "IDM404", f"the cursor is the max of {model}, built first in "
                                         "the same run"))
    return hits


def _review_body(path: str, stem: str, text: str, rendered_text: str, dialect: str | None,
                 errors: list[tuple[int, str]], incremental: bool = False,
                 siblings: list[str] | None = None,
                 is_read: Callable[[str], bool] | None = None,
                 named: bool = True, one_txn: bool = False,
                 referencers: dict[str, set[str]] | None = None) -> list[Hit]:
    body = _schema_elements(_psql_meta(normalise_placeholders(rendered_text)))
    if not body.strip():
        return []
    parsed = parse_sql(body, dialect)
    errors.extend(parsed.errors)
    # psql and most runners autocommit each statement unless the script says BEGIN; a script
    # with `%(name)s` parameters is run through a DB-API driver instead (an Airflow hook, a
    # cursor), which executes it in one transaction; so does a PostgreSQL operator task.
    driver_run = one_txn or bool(re.search(r"%\(\w+\)s", text))
    # Airflow templating in the file: it is a task's SQL, rendered with the run's dates.
    logical = bool(_AIRFLOW_MACRO.search(text))
    scope = Scope(path, stem, autocommit=not driver_run,
                  backfill=bool(BACKFILL_NAME.search(stem.lower())), logical_date=logical)
    scope.events = [Event("sql", st.line, stmt=st) for st in parsed.statements]
    # only queries, and not an incremental model (whose rows are merged into what is there)
    scope.rebuilds = not incremental and all(_reads_only(st.expr) for st in parsed.statements)
    hits = scope_hits(scope)
    hits += _clear_only_task(parsed.statements, siblings or [], scope.backfill, is_read, named)
    # inside a transaction (or on top of an autocommitted clear already reported) CASCADE
    # still empties the referencing tables the file does not reload
    flagged = {h[0] for h in hits if h[1] == "IDM301"}
    hits += [h for h in _cascade_outside(parsed.statements, referencers or {})
             if h[0] not in flagged]
    upserted = {st.line for st in parsed.statements if _upserted_rows(st.expr, siblings or [])}
    hits = [h for h in hits if not (h[1] == "IDM201" and h[0] in upserted)]
    if not logical and _seed_script(parsed.statements):
        # rows typed into the script: a re-run puts back the same fixed rows (a key makes it
        # fail loudly); reference data set up by hand, no load of a source to make idempotent.
        # (Rows stamped with the run's date, `VALUES ('x', '{{ ds }}')`, are a task's: every
        # scheduled run adds its own, and a re-run of an interval adds it again.)
        hits = [h for h in hits if h[1] not in {"IDM201", "IDM301"}]
    return hits


def _seed_script(statements: list[Statement]) -> bool:
    """Every row the file writes is an `INSERT ... VALUES` of constants (beside DDL and the
    clears of the same tables): a seed script."""
    from sqlglot import exp

    inserts = [st.expr for st in statements if isinstance(st.expr, exp.Insert)]
    if not inserts or any(isinstance(st.expr, (exp.Copy, exp.Merge, exp.Update))
                          for st in statements):
        return False
    seeded = {table_name(e.this) for e in inserts}
    for st in statements:
        if isinstance(st.expr, (exp.Delete, exp.TruncateTable)) \
                and not _cleared_tables(st) <= seeded:
            return False
    for e in inserts:
        if not isinstance(e.expression, exp.Values):
            return False
        for row in e.expression.expressions:
            for v in (row.expressions if isinstance(row, exp.Tuple) else [row]):
                if not isinstance(v, (exp.Literal, exp.Null, exp.Boolean)) and not (
                        isinstance(v, exp.Neg) and isinstance(v.this, exp.Literal)):
                    return False
    return True


def _clear_only_task(statements: list[Statement], siblings: list[str],
                     backfill: bool, is_read: Callable[[str], bool] | None = None,
                     named: bool = True) -> list[Hit]:
    """IDM301: a file that only DELETEs/TRUNCATEs a table whose rows a sibling file INSERTs.
    Each file is one task's SQL (an operator's `sql=` file), so the clear commits in its own
    task and the reload runs in another: a failure between leaves the window missing."""
    from sqlglot import exp

    clears = [st for st in statements if isinstance(st.expr, (exp.Delete, exp.TruncateTable))]
    # CREATE TABLE IF NOT EXISTS (and other DDL that adds no rows) beside the clear: the
    # "make sure the table is there, then empty it" task before a load task.
    ensured = {n for st in statements if isinstance(st.expr, exp.Create)
               and st.expr.args.get("exists") and st.expr.args.get("expression") is None
               for n in [table_name(st.expr.this)] if n}
    if not clears or not all(st in clears or _adds_no_rows(st.expr) for st in statements):
        return []
    hits: list[Hit] = []
    for st in clears:
        whole = isinstance(st.expr, exp.TruncateTable) or st.expr.args.get("where") is None
        for t in _cleared_tables(st):
            name = re.escape(t.rsplit(".", 1)[-1].strip('"`'))
            insert = re.compile(rf"\bINSERT\s+INTO\s+(?:[\w\"`]+\.)*[\"`]?{name}[\"`]?[\s(]",
                                re.I)
            # a staging table is emptied for the next step that reads it; one that no file of
            # the project reads is where the rows end up: a table like any other
            if _is_staging(t) and (is_read is None or is_read(t)):
                continue
            if any(insert.search(s) for s in siblings):
                hits.append((st.line, "IDM502" if backfill else "IDM301",
                             f"{t} is cleared here and reloaded by another file's task"))
            elif whole and ensured and named:
                # a file that creates a table only to empty it is half a truncate-and-load:
                # the rows come from another task, after this one has committed (a task: some
                # file of the project names it; a script nothing runs is no step)
                hits.append((st.line, "IDM502" if backfill else "IDM301",
                             f"{t} is emptied here and loaded by another task"))
    return hits


def _cascade_outside(statements: list[Statement], referencers: dict[str, set[str]]) -> list[Hit]:
    """IDM301: `TRUNCATE t CASCADE` in a file run as one transaction also empties every
    table with a foreign key to t (and theirs in turn). Those the file does not reload are
    refilled by another task, if at all: a failure in between leaves them empty."""
    from sqlglot import exp

    written = {n for st in statements if isinstance(st.expr, exp.Insert)
               for n in [_table_name(st.expr.this)] if n}
    hits: list[Hit] = []
    for st in statements:
        e = st.expr
        if not isinstance(e, exp.TruncateTable) or str(e.args.get("option") or "").lower() \
                != "cascade":
            continue
        for t in e.expressions:
            name = _table_name(t)
            emptied: set[str] = set()
            todo = [name] if name else []
            while todo:
                for r in referencers.get(todo.pop(), set()) - emptied:
                    emptied.add(r)
                    todo.append(r)
            left = sorted(emptied - written - {name})
            if left:
                hits.append((st.line, "IDM301", f"TRUNCATE {name} CASCADE also empties "
                                                f"{', '.join(left)}, reloaded elsewhere"))
                break
    return hits


def _table_name(e: object) -> str:
    from sqlglot import exp

    t = e if isinstance(e, exp.Table) else e.find(exp.Table) if isinstance(e, exp.Expression) \
        else None
    return t.name.lower() if isinstance(t, exp.Table) else ""


def _adds_no_rows(e: object) -> bool:
    """DDL that writes no rows: CREATE TABLE IF NOT EXISTS (columns only), CREATE INDEX,
    ALTER, COMMENT, GRANT."""
    from sqlglot import exp

    if isinstance(e, exp.Create):
        kind = str(e.args.get("kind") or "").upper()
        return e.args.get("expression") is None and (kind != "TABLE" or bool(e.args.get("exists")))
    return isinstance(e, (exp.Alter, exp.Comment, exp.Grant)) if hasattr(exp, "Grant") \
        else isinstance(e, (exp.Alter, exp.Comment))


def _upserted_rows(e: object, siblings: list[str]) -> bool:
    """`INSERT INTO t (...) VALUES (:a, :b)` of bound row values only (DataStage's
    `ORCHESTRATE.col`, `:name`, `?`), with an `UPDATE t SET ... WHERE` in a sibling file: the
    insert/update statement pair an ETL tool runs per row (insert-else-update, or new keys to
    the insert and changed keys to the update after comparing with the target): an upsert."""
    from sqlglot import exp

    if not isinstance(e, exp.Insert) or not isinstance(e.expression, exp.Values):
        return False
    values = [v for row in e.expression.expressions for v in
              (row.expressions if isinstance(row, exp.Tuple) else [row])]
    if not values or not all(isinstance(v, (exp.Placeholder, exp.Parameter, exp.Column))
                             for v in values):
        return False
    target = table_name(e.this)
    if not target:
        return False
    name = re.escape(target.rsplit(".", 1)[-1])
    update = re.compile(rf"^\s*UPDATE\s+(?:[\w\"]+\.)?\"?{name}\"?\s+SET\b[\s\S]*?\bWHERE\b",
                        re.I | re.M)
    return any(update.search(t) for t in siblings)


_PSQL_META = re.compile(r"^[ \t]*\\([a-z]+)\b(.*)$", re.I | re.M)
# CREATE SCHEMA up to its `;`, past comments and strings (a `;` in a comment ends nothing)
_SCHEMA_WITH_ELEMENTS = re.compile(r"\bCREATE\s+SCHEMA\b(?:--[^\n]*|'[^']*'|[^;'])*", re.I)
_ELEMENT = re.compile(r"\bCREATE\s+(TABLE|VIEW|INDEX|SEQUENCE)\b", re.I)


def _psql_meta(text: str) -> str:
    """psql scripts: a backslash command is a client command ending at the end of its line,
    not SQL up to the next `;`. `\\copy t FROM 'f.csv'` loads rows like COPY (it is kept as
    one); `\\c db`, `\\set`, `\\pset`, `\\echo`, ... become blank lines (lines keep their numbers)."""
    def repl(m: re.Match[str]) -> str:
        if m.group(1).lower() == "copy":
            return "COPY" + m.group(2).rstrip().rstrip(";") + ";"
        return ""

    return _PSQL_META.sub(repl, text)


def _schema_elements(text: str) -> str:
    """`CREATE SCHEMA s CREATE TABLE a (...) CREATE TABLE b (...)` (PostgreSQL's schema
    elements) creates each table: split it into statements so the tables count as created."""
    return _SCHEMA_WITH_ELEMENTS.sub(lambda m: _ELEMENT.sub(lambda e: ";" + e.group(0),
                                                            m.group(0)), text)


def _reads_only(e: object) -> bool:
    from sqlglot import exp

    return isinstance(e, exp.Query) or (
        isinstance(e, exp.Command) and str(e.this).upper() in {"SET", "DECLARE", "USE"})


def sql_dialect_directive(text: str) -> str | None:
    m = re.search(r"(?:--|#)\s*idemtest:\s*dialect\s*=\s*([\w-]+)", text[:4096])
    return m.group(1).lower() if m else None
