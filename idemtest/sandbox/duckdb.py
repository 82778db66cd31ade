"""DuckDB sandboxes: one catalog per sandbox inside one process-wide DuckDB instance.

`ATTACH ':memory:'` costs ~0.3 ms where a new `duckdb.connect` costs ~30 ms, so
every sandbox is a catalog of a shared instance and every connection is a
`cursor()` of it with `USE <catalog>`. User code that calls
`duckdb.connect(run.path)` gets such a cursor, instrumented, through a patch of
`duckdb.connect` that only intercepts sandbox paths.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._errors import BackendError
from ..instrument import Controller, abbreviate, live_runs, note_unseen
from . import scratch
from .base import (
    Backend,
    Sandbox,
    is_interrupt,
    raise_if_interrupted,
    refuse_foreign,
    resolve_setup_text,
    validate_schema,
)
from .sqlclock import clocked

_counter = itertools.count(1)
_registry: dict[str, DuckDBSandbox] = {}
_patch_lock = threading.Lock()
_original_connect: Any = None
# in a crash="kill" child: the parent's DuckDB objects, kept referenced so that they are
# never finalized here (the instance's threads do not exist in the child)
_inherited: list[Any] = []
#: parameters bound in one multi-row INSERT when a source is loaded (executemany)
MAX_PARAMS = 20000
#: setup scripts kept as ready-made template catalogs per backend (most recent first)
MAX_TEMPLATES = 8
#: statements a template copy reproduces exactly (schema objects and their rows); a
#: setup with anything else (SET, temp tables, INSTALL, ATTACH, ...) runs every time
_COPYABLE = re.compile(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*(?:CREATE\s+(?!TEMP|TEMPORARY|OR\s+REPLACE\s+TEMP)|INSERT\s|COMMENT\s|ALTER\s|UPDATE\s|DELETE\s)", re.I | re.S)


def _duckdb() -> Any:
    import duckdb

    return duckdb


def _is_private(database: Any) -> bool:
    """An in-memory database of the caller's own: nothing written there outlives the run."""
    text = str(database if database is not None else ":memory:")
    return text == "" or text.startswith(":memory:")


def _allowed(database: Any, allow: tuple[str, ...]) -> bool:
    text = str(database)
    return any(a == text or os.path.realpath(a) == os.path.realpath(text) for a in allow)


def _patched_connect(database: Any = ":memory:", read_only: bool = False, config: Any = None, **kwargs: Any) -> Any:
    sandbox = _registry.get(str(database))
    if sandbox is None:
        from ..instrument import current

        ctl = current()
        if ctl is not None and not _is_private(database) and not _allowed(database, ctl.allow_foreign):
            # during a run a file (or MotherDuck) database is where rows would land unseen
            refuse_foreign(ctl, f"the DuckDB database {str(database)!r}", str(database))
        if config is None:
            return _original_connect(database, read_only, **kwargs)
        return _original_connect(database, read_only, config, **kwargs)
    from ..instrument import current

    return sandbox.connect(current(), kind="connect")


def _install_patch() -> None:
    global _original_connect
    with _patch_lock:
        duckdb = _duckdb()
        if _original_connect is None:
            _original_connect = duckdb.connect
            duckdb.connect = _patched_connect


def _uninstall_patch() -> None:
    global _original_connect
    with _patch_lock:
        if _original_connect is not None and not _registry:
            _duckdb().connect = _original_connect
            _original_connect = None


def open_transaction(raw: Any) -> str | None:
    """'a transaction ...' when a BEGIN on `raw` was never closed, else None. DuckDB
    has no status call, so the probe starts one: refused inside a transaction,
    rolled back at once (nothing done) otherwise."""
    try:
        raw.execute("BEGIN")
    except Exception as e:
        text = str(e)
        if "aborted" in text:
            return "a failed transaction (an error inside it was caught, and it was never rolled back)"
        if "within a transaction" in text:
            return "a transaction that was begun and never committed"
        return None  # closed by the load: nothing is open
    raw.execute("ROLLBACK")
    return None


def catalog_path(path: str) -> str:
    """Another path `duckdb.connect` intercepts for the sandbox at `path`, whose file
    name is the sandbox's catalog (`.../idemtest_s3.duckdb`): tools that name the
    database after the file, as dbt-duckdb does, then address the right catalog.
    The path is never opened; an unknown `path` is returned unchanged."""
    sandbox = _registry.get(str(path))
    if sandbox is None:
        return str(path)
    alias = f"/idemtest-sandbox/{sandbox.catalog}.duckdb"
    _registry[alias] = sandbox
    sandbox.aliases.add(alias)
    return alias


def split_statements(sql: str) -> list[Any]:
    """DuckDB's own parser splits a script; a string that fails to parse stays whole
    so the database reports the syntax error to the user's code."""
    try:
        return list(_duckdb().extract_statements(sql))
    except Exception:
        return [sql]


class DuckDBRelationProxy:
    """Wraps a lazy relation so that writes through it are statement boundaries."""

    _WRITES = frozenset({"insert_into", "insert", "create", "create_view", "to_table", "to_view", "execute", "write_csv", "to_csv", "write_parquet", "to_parquet"})
    # methods whose string arguments are SQL expressions (`rel.filter("ts > now()")`)
    _EXPRESSIONS = frozenset({"filter", "project", "select"})

    def __init__(self, rel: Any, ctl: Controller | None) -> None:
        object.__setattr__(self, "_rel", rel)
        object.__setattr__(self, "_ctl", ctl)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._rel, name)
        if not callable(attr):
            return attr
        ctl = self._ctl

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in self._EXPRESSIONS:
                args = tuple(clocked(a, "duckdb", fragment=True) for a in args)
            elif name == "query" and len(args) > 1:  # rel.query(view_name, sql)
                args = (args[0], clocked(args[1], "duckdb"), *args[2:])
            if ctl is None and name in self._WRITES:
                _outside(None, name, f"{name}() of a relation")
            if ctl is not None and name in self._WRITES:
                b = ctl.boundary("relation", f"{name}({', '.join(map(repr, args))}) of {abbreviate(self._rel.sql_query(), 60)}")
                out = attr(*args, **kwargs)
                ctl.done(b)
            else:
                out = attr(*args, **kwargs)
            return _wrap_relation(out, ctl)

        return call

    def __iter__(self) -> Any:
        return iter(self._rel.fetchall())

    def __len__(self) -> int:
        return len(self._rel)

    def __repr__(self) -> str:
        return repr(self._rel)


def _outside(sandbox: DuckDBSandbox | None, kind: str, text: Any) -> None:
    """A statement on a sandbox connection opened outside any run, while a run is live:
    it is not the run's, so it is never crashed; the live run's check fails on it."""
    if live_runs():
        where = f"sandbox {sandbox.catalog}" if sandbox is not None else "a sandbox"
        note_unseen(f"a DuckDB connection to {where} opened outside the run ({kind}: {abbreviate(str(text), 80)})")


_CALL = compile("__idemtest_fn__(*__idemtest_args__, **__idemtest_kwargs__)", "<idemtest: the caller's frame>", "eval")


def _from_caller(frame: Any, fn: Any, args: Any, kwargs: Any) -> Any:
    """Call `fn` from a frame that sees the user's variables: DuckDB resolves
    `SELECT * FROM df` (a replacement scan) in the frame that calls it, which through
    the proxy would be idemtest's own (Dagster's DuckDB IO managers write `FROM obj`)."""
    scope = dict(frame.f_locals)
    scope.update(__idemtest_fn__=fn, __idemtest_args__=args, __idemtest_kwargs__=kwargs)
    return eval(_CALL, frame.f_globals, scope)


def _wrap_relation(obj: Any, ctl: Controller | None) -> Any:
    duckdb = _duckdb()
    if isinstance(obj, duckdb.DuckDBPyRelation):
        return DuckDBRelationProxy(obj, ctl)
    return obj


class DuckDBConnectionProxy:
    """A DuckDB connection whose statements are boundaries of the run's Controller."""

    def __init__(self, raw: Any, ctl: Controller | None, sandbox: DuckDBSandbox) -> None:
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_ctl", ctl)
        object.__setattr__(self, "_sandbox", sandbox)

    @property  # type: ignore[misc]
    def __class__(self) -> Any:  # keeps isinstance(conn, duckdb.DuckDBPyConnection) true
        return _duckdb().DuckDBPyConnection

    def _stmt(self, kind: str, text: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        ctl = self._ctl
        if ctl is None:
            _outside(self._sandbox, kind, text)
            return _from_caller(sys._getframe(2), fn, args, kwargs)
        b = ctl.boundary(kind, text)
        out = _from_caller(sys._getframe(2), fn, args, kwargs)
        ctl.done(b)
        return out

    # The trace keeps the statement as the user wrote it; the database gets it with
    # SQL clock calls replaced by the run's simulated time (`clocked`).
    def execute(self, query: Any, parameters: Any = None) -> Any:
        raw = self._raw
        if parameters is None and isinstance(query, str) and ";" in query:
            stmts = split_statements(query)
            if len(stmts) > 1:
                # a script is several statements: a crash can fall between them
                for s in stmts:
                    text = getattr(s, "query", s)
                    sent = clocked(text, "duckdb")
                    self._stmt("execute", text, raw.execute, s if sent is text else sent)
                return self
        sent = clocked(query, "duckdb")
        if parameters is None:
            self._stmt("execute", query, raw.execute, sent)
        else:
            self._stmt("execute", query, raw.execute, sent, parameters)
        return self

    def executemany(self, query: Any, parameters: Any = None) -> Any:
        self._stmt("executemany", query, self._raw.executemany, clocked(query, "duckdb"), parameters)
        return self

    def sql(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        return _wrap_relation(self._stmt("sql", query, self._raw.sql, clocked(query, "duckdb"), *args, **kwargs), self._ctl)

    query = sql

    def append(self, table_name: str, df: Any, **kwargs: Any) -> Any:
        self._stmt("append", f"append to {table_name}", self._raw.append, table_name, df, **kwargs)
        return self

    def register(self, name: str, obj: Any) -> Any:
        self._stmt("register", f"register {name}", self._raw.register, name, obj)
        return self

    def begin(self) -> Any:
        self._stmt("begin", "BEGIN", self._raw.begin)
        return self

    def commit(self) -> Any:
        self._stmt("commit", "COMMIT", self._raw.commit)
        return self

    def rollback(self) -> Any:
        ctl = self._ctl
        if ctl is not None and (ctl.crashed is not None or ctl.aborted):
            # a dead process sends nothing more (SQLAlchemy's pool resets connections
            # from a finalizer); closing already lost the transaction
            return self
        self._stmt("rollback", "ROLLBACK", self._raw.rollback)
        return self

    def cursor(self) -> Any:
        return self._sandbox.connect(self._ctl, kind="cursor")

    # another connection to the same database (dlt's duckdb pool hands each client one):
    # instrumented like a cursor, or its statements would bypass the run
    duplicate = cursor

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._raw.close()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._raw, name)
        if callable(attr) and name in {"table", "view", "values", "from_df", "from_arrow", "from_query", "read_csv", "read_parquet", "read_json", "from_csv_auto", "from_parquet", "table_function"}:
            ctl = self._ctl

            def call(*args: Any, **kwargs: Any) -> Any:
                if name == "from_query" and args:
                    args = (clocked(args[0], "duckdb"), *args[1:])
                return _wrap_relation(attr(*args, **kwargs), ctl)

            return call
        return attr

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._raw, name, value)

    def __repr__(self) -> str:
        return f"<idemtest instrumented DuckDB connection to sandbox {self._sandbox.catalog}>"


class DuckDBSandbox(Sandbox):
    backend = "duckdb"
    dialect = "duckdb"
    param = "?"

    def __init__(self, backend: DuckDBBackend, file: str | None = None) -> None:
        n = next(_counter)
        super().__init__(f"idemtest_s{n}")
        self._backend = backend
        self.catalog = f"idemtest_s{n}"
        self.file = file
        self._path = file or f":memory:{self.catalog}"
        self.aliases: set[str] = set()  # other paths intercepted for it (catalog_path)
        db = backend.instance
        try:
            db.execute(self._attach_sql())
        except Exception as e:
            raise_if_interrupted(e)  # a Ctrl-C / SIGTERM landing in the ATTACH
            raise
        self._admin = self.raw()
        _registry[self._path] = self
        _install_patch()

    def prepare(self, spec: Any, validate: bool = True) -> None:
        """As on every backend, but a setup script already run once in this process is
        copied from its template catalog (`COPY FROM DATABASE`, ~1 ms) instead of
        re-run statement by statement (~30 statements in the examples: a sixth of a
        correct check's time went there)."""
        text = resolve_setup_text(spec)
        found = self._backend.template(text) if text is not None else None
        if found is None:
            super().prepare(spec, validate)
            # parsed once per setup: only a script whose every statement a copy reproduces gets a template
            if text is not None and all(_COPYABLE.match(st) for st in self.split_script(text)):
                try:
                    self._backend.keep_template(text, self.catalog)
                except Exception as e:
                    raise_if_interrupted(e)
                    raise
            return
        template, rows = found
        self.execute(f"COPY FROM DATABASE {template} TO {self.catalog}" + ("" if rows else " (SCHEMA)"))
        if validate:
            validate_schema(self, spec)

    def _attach_sql(self) -> str:
        location = "':memory:'" if self.file is None else "'" + self.file.replace("'", "''") + "'"
        return f"ATTACH {location} AS {self.catalog}"

    @contextmanager
    def lent_to_child(self) -> Iterator[None]:
        """DuckDB locks its file for one process: detach it while the child has it."""
        if self.file is None:
            raise BackendError(
                "crash='kill' runs each attempt in a child process, which cannot open an in-memory DuckDB sandbox; "
                "use a file sandbox: --idem-db duckdb-file (a check in kill mode picks one by itself)"
            )
        db = self._backend.instance
        self._admin.close()
        db.execute("USE memory")
        db.execute(f"DETACH DATABASE {self.catalog}")
        try:
            yield
        finally:
            db.execute(self._attach_sql())  # replays what the child committed (its WAL)
            self._admin = self.raw()

    def enter_child(self) -> None:
        """The child's own DuckDB instance, with the sandbox file attached under the
        same catalog name: `run.conn`, `run.connect()`, `duckdb.connect(run.path)`
        and `run.url` reach it through the unchanged paths."""
        _inherited.extend((self._backend._instance, self._admin))
        db = _original_connect(":memory:")
        try:
            db.execute("SET GLOBAL TimeZone = 'UTC'")
        except Exception:
            pass
        db.execute(self._attach_sql())
        self._backend._instance = db
        self._admin = self.raw()

    @property
    def path(self) -> str:
        return self._path

    @property
    def url(self) -> str:
        return f"duckdb:///{self._path}"

    def raw(self) -> Any:
        cur = self._backend.instance.cursor()
        cur.execute(f"USE {self.catalog}")
        return cur

    def connect(self, ctl: Controller | None, kind: str | None = "connect") -> Any:
        if ctl is None:
            return DuckDBConnectionProxy(self.raw(), None, self)
        b = ctl.boundary(kind, f"{kind} to sandbox") if kind else None
        raw = self.raw()
        ctl.register(raw.close, raw.interrupt)
        ctl.watch("run.conn" if kind is None else f"a DuckDB {'cursor' if kind == 'cursor' else 'connection'} the load opened to the sandbox", lambda: open_transaction(raw))
        if b is not None:
            ctl.done(b)
        return DuckDBConnectionProxy(raw, ctl, self)

    def _admin_run(self, sql: str, params: Any = None) -> Any:
        """The harness's own statement (setup, source loads, target reads, template copies):
        a Ctrl-C / SIGTERM landing in it is the user stopping the run, whatever it was doing."""
        try:
            return self._admin.execute(sql, params)
        except Exception as e:
            raise_if_interrupted(e)
            raise

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._admin_run(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        # DuckDB's executemany binds and runs one row at a time (~0.7 ms a row): loading a
        # source for every run cost a fifth of a check. One multi-row VALUES statement per
        # chunk is ten times faster; the target columns' types still cast each value.
        head, sep, tail = sql.rpartition(" VALUES ")
        if not sep or not rows or tail.count("?") != len(rows[0]):
            try:
                self._admin.executemany(sql, rows)
            except Exception as e:
                raise_if_interrupted(e)
                raise
            return
        per = max(1, MAX_PARAMS // len(rows[0]))
        for i in range(0, len(rows), per):
            chunk = rows[i : i + per]
            self._admin_run(f"{head} VALUES " + ", ".join([tail] * len(chunk)), [v for r in chunk for v in r])

    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self._admin_run(sql, params)
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, cur.fetchall()

    def table_columns(self, table: str) -> list[str] | None:
        # pragma_table_info, not information_schema.columns: the latter walks every
        # catalog attached to the instance (all live sandboxes) and cost ~2-4 ms a call,
        # once a scenario; this one resolves the name as a query would (case-insensitively)
        import duckdb

        parts = table.split(".")
        schema, name = (parts[-2], parts[-1]) if len(parts) > 1 else ("main", parts[0])
        qualified = ".".join('"' + p.replace('"', '""') + '"' for p in (self.catalog, schema, name))
        try:
            _, rows = self.query("SELECT name FROM pragma_table_info(?)", [qualified])
        except duckdb.CatalogException:
            return None  # no such table (or schema) in this sandbox
        return [r[0] for r in rows] or None

    def split_script(self, sql: str) -> list[str]:
        stmts = split_statements(sql)
        return [getattr(s, "query", s) for s in stmts]

    def close(self) -> None:
        _registry.pop(self._path, None)
        for alias in self.aliases:
            _registry.pop(alias, None)
        stopped = False
        try:
            self._admin.close()
        except Exception as e:
            stopped = is_interrupt(e)
        try:
            self._backend.instance.execute("USE memory")
            self._backend.instance.execute(f"DETACH DATABASE IF EXISTS {self.catalog}")
        except Exception as e:
            # a Ctrl-C in the DETACH (a file sandbox's checkpoint syncs to disk) arrives as
            # `Query interrupted`: the files still go, then the stop goes on up
            stopped = is_interrupt(e) or stopped
        if self.file:
            for suffix in ("", ".wal"):
                try:
                    os.unlink(self.file + suffix)
                except OSError:
                    pass
        if stopped:
            raise KeyboardInterrupt


class DuckDBBackend(Backend):
    """`--idem-db duckdb` (in memory, default) or `duckdb-file` (a temp file per sandbox)."""

    dialect = "duckdb"

    def __init__(self, files: bool = False) -> None:
        self.name = "duckdb-file" if files else "duckdb"
        self.files = files
        self._instance: Any = None
        self._tmp: Path | None = None
        self._templates: dict[str, tuple[str, bool]] = {}  # setup text -> (template catalog, holds seed rows)
        if files:
            scratch.sweep("duckdb")  # files a killed run left behind

    @property
    def instance(self) -> Any:
        if self._instance is None:
            _install_patch()
            self._instance = _original_connect(":memory:")
            try:
                # every sandbox session reads timestamps in UTC, like the run times and
                # the SQL clock's literals, whatever the machine's zone (as on PostgreSQL)
                self._instance.execute("SET GLOBAL TimeZone = 'UTC'")
            except Exception:
                pass  # a DuckDB built without ICU has no time zones: UTC already
            # sandboxes hold a few hundred rows: one thread per query is 15-25 % faster
            # than handing each tiny query to the pool, and leaves the other core to xdist
            self._instance.execute("SET GLOBAL threads = 1")
        return self._instance

    def template(self, setup: str) -> tuple[str, bool] | None:
        """(the catalog holding `setup` already run, with the state store; whether it holds rows), if any."""
        found = self._templates.pop(setup, None)
        if found is not None:
            self._templates[setup] = found  # most recently used last
        return found

    def keep_template(self, setup: str, catalog: str) -> None:
        """Copy a freshly prepared sandbox (nothing of a load in it yet) as the template of `setup`."""
        name = f"idemtest_t{next(_counter)}"
        db = self.instance
        db.execute(f"ATTACH ':memory:' AS {name}")
        db.execute(f"COPY FROM DATABASE {catalog} TO {name}")
        # a setup without seed rows is copied as schema only: twice as fast again
        size = db.execute("SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables() WHERE database_name = ?", [name]).fetchone()
        self._templates[setup] = (name, bool(size and size[0]))
        while len(self._templates) > MAX_TEMPLATES:
            old, _ = self._templates.pop(next(iter(self._templates)))
            db.execute("USE memory")
            db.execute(f"DETACH DATABASE IF EXISTS {old}")

    def create(self, spec: Any = None) -> DuckDBSandbox:
        file = None
        if self.files:
            if self._tmp is None:
                self._tmp = scratch.make("duckdb")
            file = os.path.join(self._tmp, f"sandbox{next(_counter)}.duckdb")
        return DuckDBSandbox(self, file)

    def close(self) -> None:
        for sb in list(_registry.values()):
            if sb._backend is self:
                sb.close()
        self._templates.clear()  # in-memory catalogs of the instance closed next
        if self._instance is not None:
            self._instance.close()
            self._instance = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        _uninstall_patch()
