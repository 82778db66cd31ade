"""The one small interface every sandbox backend implements."""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._defaults import STATE_SCHEMA, STATE_TABLE
from .._errors import SetupError, SpecError

if TYPE_CHECKING:
    from ..instrument import Controller
    from ..spec import Source, Spec, Target


class Sandbox(ABC):
    """A throwaway database created by idemtest, and only by idemtest."""

    backend: str = "?"
    dialect: str = "?"
    param: str = "?"  # the driver's placeholder

    def __init__(self, name: str) -> None:
        self.name = name
        self.landing: Path | None = None
        # set by backends that cloned the sandbox from a template where prepare(spec) already ran
        self.prepared_for: str | None = None
        # crash="kill": a forked child calls it with each session it opens (engine/isolate.py)
        self.on_open: Callable[[int | None], None] | None = None
        # targets read at least once: until then an absent table reads as empty
        self._targets_seen: set[str] = set()

    # --- what a run sees -------------------------------------------------
    @property
    def path(self) -> str | None:
        return None

    @property
    def dsn(self) -> str | None:
        return None

    @property
    def url(self) -> str | None:
        """A SQLAlchemy URL for the sandbox (pandas `to_sql`)."""
        return None

    def connection_url(self, driver: str | None = None, password: str | None = None) -> str | None:
        """The sandbox's URL for a given client (see RunContext.connection_url)."""
        return self.url

    @abstractmethod
    def connect(self, ctl: Controller | None, kind: str | None = "connect") -> Any:
        """A new connection for user code, instrumented by `ctl`; `kind=None`
        does not count the connect itself as a statement boundary."""

    @abstractmethod
    def raw(self) -> Any:
        """A new uninstrumented DB-API connection (setup callables, readers)."""

    # --- what the harness does -------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement on the harness connection, autocommitted."""

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a query on the harness connection."""

    @abstractmethod
    def table_columns(self, table: str) -> list[str] | None:
        """The columns of `table` (schema-qualified or not), or None if it does not exist."""

    @abstractmethod
    def close(self) -> None:
        """Drop the sandbox and everything in it."""

    def unseen(self) -> list[str]:
        """Paths by which statements reached this sandbox without idemtest's instrumentation,
        as far as the database itself can tell (PostgreSQL: its session count)."""
        return []

    def split_script(self, sql: str) -> list[str]:
        return [sql]

    # --- crash="kill": an attempt runs in a forked child (engine/isolate.py) --
    @contextmanager
    def lent_to_child(self) -> Iterator[None]:
        """Around the child's life, in the parent: let go of what the child must open itself."""
        yield

    def adopt_session(self, pid: int | None) -> None:
        """A session a forked child opened to this sandbox: idemtest's own, so not `unseen`."""

    def enter_child(self) -> None:
        """In the forked child, before the load: open this process's own harness
        connections. The parent's stay referenced and untouched (closing one would
        end the parent's session too)."""

    # --- shared helpers built on the primitives ----------------------------
    def quote(self, ident: str) -> str:
        return ".".join('"' + p.replace('"', '""') + '"' for p in ident.split("."))

    def create_state_store(self) -> None:
        """The table behind `run.state` (watermarks)."""
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
        self.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")

    def prepare(self, spec: Spec, validate: bool = True) -> None:
        """State store, setup DDL, and (once per spec is enough) a check that the
        spec matches the schema."""
        self.create_state_store()
        run_setup(self, spec)
        if validate:
            validate_schema(self, spec)

    def load_source(self, source: Source, rows: Sequence[dict[str, Any]]) -> None:
        """Replace the contents of a source table with `rows`."""
        cols = list(source.columns)
        table = self.quote(source.table)
        self.execute(f"DELETE FROM {table}")
        if rows:
            placeholders = ", ".join([self.param] * len(cols))
            collist = ", ".join(self.quote(c) for c in cols)
            self.executemany(
                f"INSERT INTO {table} ({collist}) VALUES ({placeholders})",
                [tuple(r.get(c) for c in cols) for r in rows],
            )

    def note_targets(self, targets: Sequence[Target]) -> None:
        """Before the first run: target tables that exist now must stay readable;
        the others are the load's to create (read as empty until they exist)."""
        for t in targets:
            if t.query is None and t.file is None and t.table not in self._targets_seen and self.table_columns(t.table) is not None:
                self._targets_seen.add(t.table)

    def snapshot(self, target: Target) -> tuple[list[str], list[tuple[Any, ...]]]:
        """All rows of a target table (or query, or files), ignored columns dropped.

        A table the load creates itself reads as empty (no columns, no rows) until
        it first exists; once seen, a table that is gone is an error (the load
        dropped its own target)."""
        if target.query is not None:
            cols, rows = self.query(target.query)
        elif target.file is not None:
            from .landing import read_files

            cols, rows = read_files(self, target)
        elif target.created_by_load and self.table_columns(target.table) is None:
            return [], []  # not created yet (or dropped): no columns, no rows
        else:
            if target.table not in self._targets_seen:
                if self.table_columns(target.table) is None:
                    return [], []
                self._targets_seen.add(target.table)
            cols, rows = self.query(f"SELECT * FROM {self.quote(target.table)}")
        ignore = set(target.ignore)
        keep = [i for i, c in enumerate(cols) if c not in ignore]
        if len(keep) == len(cols):
            return cols, rows
        return [cols[i] for i in keep], [tuple(r[i] for i in keep) for r in rows]


def user_paths(path: Path, base: Path | None) -> list[Path]:
    """Where a path the user names is looked for: as given when absolute, else in the
    working directory, then in `base` (the test module's folder)."""
    return [path] if path.is_absolute() else [Path.cwd() / path, *([base / path] if base else [])]


def resolve_setup_text(spec: Spec) -> str | None:
    setup = spec.setup
    if setup is None or callable(setup):
        return None
    # a one-line string ending in .sql is a file name, spaces and all; SQL has a newline or a ';'
    if isinstance(setup, Path) or (isinstance(setup, str) and re.fullmatch(r"[^\n;]+\.sql", setup.strip(), re.I)):
        path = Path(setup)
        candidates = user_paths(path, spec.base_dir)
        for c in candidates:
            if c.is_file():
                return c.read_text()
        raise SpecError(f"setup={str(setup)!r}: no such file (looked in {', '.join(str(c.parent) for c in candidates)}); pass an absolute path, a path relative to the test module, or the DDL itself as a string")
    return str(setup)


#: set when the user stops the run (the plugin's Ctrl-C / SIGTERM handlers, or DuckDB's
#: `Query interrupted`): DuckDB turns the KeyboardInterrupt raised inside a statement into
#: an ordinary exception, which an `except Exception` (the harness's cleanup, or the user's
#: load) can drop; the flag keeps the stop until the next scenario boundary sees it.
_stop = threading.Event()


def note_stop() -> None:
    _stop.set()


def clear_stop() -> None:
    _stop.clear()


def raise_if_stopped() -> None:
    """End the check when a stop was requested and swallowed on its way up."""
    if _stop.is_set():
        raise KeyboardInterrupt


def is_interrupt(e: BaseException) -> bool:
    if "Query interrupted" in str(e):
        _stop.set()
        return True
    return False


def raise_if_interrupted(e: BaseException) -> None:
    """DuckDB turns a Ctrl-C / SIGTERM that lands mid-statement into `Query interrupted`:
    it is the user stopping the run, not a fault in the sandbox's own statements."""
    if is_interrupt(e):
        raise KeyboardInterrupt from None


def run_setup(sandbox: Sandbox, spec: Spec) -> None:
    text = resolve_setup_text(spec)
    if text is not None:
        for stmt in sandbox.split_script(text):
            try:
                sandbox.execute(stmt)
            except Exception as e:
                raise_if_interrupted(e)
                raise SetupError(
                    f"setup SQL failed on {sandbox.backend}: {type(e).__name__}: {str(e).strip()}\n"
                    f"  statement: {' '.join(stmt.split())[:200]}\n"
                    "  fix the DDL in Spec(setup=...) — it runs in every fresh, empty sandbox"
                ) from None
    elif spec.setup is not None:
        conn = sandbox.raw()
        try:
            spec.setup(conn)  # type: ignore[operator]
            try:
                conn.commit()
            except Exception:
                pass
        except Exception as e:
            raise SetupError(
                f"setup callable {getattr(spec.setup, '__name__', spec.setup)!r} raised {type(e).__name__}: {e}\n"
                "  it is called with a fresh connection to an empty sandbox and must create the sources and targets"
            ) from None
        finally:
            try:
                conn.close()
            except Exception:
                pass


def validate_schema(sandbox: Sandbox, spec: Spec) -> None:
    """Names the fix when the spec and the setup DDL disagree."""
    for s in spec.sources:
        if s.landing is not None:
            continue
        cols = sandbox.table_columns(s.table)
        if cols is None:
            raise SpecError(f"source table {s.table!r} does not exist after setup; create it in Spec(setup=...) or fix Source({s.table!r})")
        missing = [c for c in s.columns if c not in cols]
        if missing:
            raise SpecError(f"source {s.table!r} declares columns {missing} that the table does not have (it has {cols}); fix Source(columns=...) or the setup DDL")
    for t in spec.targets:
        if t.expected is not None and "{landing}" not in t.expected:  # files are there only once a run starts
            try:
                sandbox.query(expected_sql(t, sandbox))
            except Exception as e:
                raise SpecError(
                    f"Target({t.table!r}): the expected= query fails on the sandbox after setup: {type(e).__name__}: {' '.join(str(e).split())[:300]}; "
                    "fix Target(expected=...) — it reads the source tables (or {landing}/... files) and runs once every source row has arrived"
                ) from None
        if t.query is not None:
            try:
                cols, _ = sandbox.query(t.query)
            except Exception as e:
                raise SpecError(f"target query for {t.table!r} fails on an empty sandbox: {type(e).__name__}: {str(e).strip()}; fix Target(query=...)") from None
        elif t.file is not None:
            continue  # files appear when the load writes them
        else:
            found = sandbox.table_columns(t.table)
            if found is None and t.created_by_load:
                continue  # the load creates it; its columns are known after the first run
            if found is None:
                continue  # the load creates it (CREATE TABLE IF NOT EXISTS, CREATE OR REPLACE): read as empty until it does
            cols = found
        for k in t.keys:
            if k not in cols:
                raise SpecError(f"target {t.table!r}: key column {k!r} is not among its columns {cols}; fix Target(key=...)")
        for c in t.ignore:
            if c not in cols:
                raise SpecError(f"target {t.table!r}: ignored column {c!r} is not among its columns {cols}; fix Target(ignore=...)")
        if t.partition_by is not None and t.partition_by not in cols:
            raise SpecError(f"target {t.table!r}: partition_by column {t.partition_by!r} is not among its columns {cols}")


def expected_sql(target: Target, sandbox: Sandbox) -> str:
    """A target's expected= query, `{landing}` replaced by the sandbox's folder."""
    assert target.expected is not None
    if "{landing}" not in target.expected:
        return target.expected
    from .landing import landing_dir

    return target.expected.replace("{landing}", str(landing_dir(sandbox)).replace("'", "''"))


class Backend(ABC):
    """Creates sandboxes on one database engine; owns the process-wide resources."""

    name: str = "?"
    dialect: str = "?"

    @abstractmethod
    def create(self, spec: Spec | None = None) -> Sandbox:
        """A fresh sandbox; a backend may use `spec` to clone a prepared template."""

    def close(self) -> None:
        """Release everything this backend created."""

    def describe(self) -> str:
        return self.name


def refuse_foreign(ctl: Controller, shown: str, example: str) -> None:
    """Raise ForeignDatabaseError for a connect to `shown` (a redacted DSN or a path)
    during a run, and keep it on the controller so that a load catching it still fails."""
    from .._errors import ForeignDatabaseError

    err = ForeignDatabaseError(
        f"during a run the load connected to {shown}, which is not the sandbox: what it writes there lands outside the check, "
        "which then passes whatever the load does (idemtest refused the connection, nothing reached that database). "
        "Connect to the sandbox with run.conn, run.dsn, run.url or run.engine() (DuckDB: duckdb.connect(run.path)), "
        f"and create the sources there in Spec(setup=...); a database the load only reads from can be allowed with Spec(allow_foreign=[{example!r}])"
    )
    if ctl.misuse is None:
        ctl.misuse = err
    raise err
