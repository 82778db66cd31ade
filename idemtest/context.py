"""The RunContext handed to the user's load function, and its state store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import _json
from ._defaults import STATE_TABLE

if TYPE_CHECKING:
    from .instrument import Controller
    from .spec import Spec, Window


class SandboxLike(Protocol):
    """What a run needs of its sandbox (the sandbox package implements it)."""

    param: str
    landing: Path | None

    @property
    def dsn(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...
    def connect(self, ctl: Controller | None, kind: str | None = "connect") -> Any: ...
    def connection_url(self, driver: str | None = None, password: str | None = None) -> str | None: ...


class State:
    """A small key-value store kept in the sandbox (for watermarks).

    Reads and writes go through the run's own connection, so they take part in
    its transactions and crashes exactly like the load's own statements: a
    watermark saved before the load commits survives a crash, as it would in
    production.

    When it commits: on PostgreSQL `run.conn` is not in autocommit mode, so `set()`
    joins run.conn's open transaction and is committed by `run.conn.commit()` (or at
    the end of `with run.conn.transaction():`); a run that ends without committing
    run.conn loses it, as a process that exits without COMMIT would. On DuckDB each
    `set()` commits at once unless run.conn is inside BEGIN … COMMIT."""

    def __init__(self, conn: Any, param: str) -> None:
        self._conn = conn
        self._p = param

    def get(self, key: str, default: Any = None) -> Any:
        cur = self._conn.execute(f"SELECT value FROM {STATE_TABLE} WHERE key = {self._p}", [key])
        row = cur.fetchone()
        return default if row is None else _json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        p = self._p
        self._conn.execute(
            f"INSERT INTO {STATE_TABLE} (key, value) VALUES ({p}, {p}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, _json.dumps(value)],
        )

    def __getitem__(self, key: str) -> Any:
        missing = object()
        v = self.get(key, missing)
        if v is missing:
            raise KeyError(key)
        return v

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)


@dataclass
class RunContext:
    """What one run of the load function sees.

    conn: an instrumented connection to the sandbox; now: the run's logical time
    (also what `datetime.now()` returns during the run); window: the data
    interval it loads; partition: a label of that window; attempt: 1 for the
    first try, 2 for the first retry…; state: watermarks and other small values.
    """

    conn: Any
    now: datetime
    window: Window
    attempt: int
    state: State
    spec: Spec
    _sandbox: SandboxLike = field(repr=False)
    _ctl: Controller | None = field(repr=False, default=None)
    label: str = ""
    #: True in the clean run (the oracle), for adapters whose reference run differs
    #: from a scheduled one (dbt: `--full-refresh`); a load should not read it
    clean: bool = False

    @property
    def partition(self) -> str:
        return self.window.partition

    @property
    def dsn(self) -> str | None:
        """The sandbox's connection string, for code that opens its own
        connections (Postgres); connections opened with it are instrumented too."""
        return self._sandbox.dsn

    @property
    def path(self) -> str | None:
        """The sandbox's DuckDB database path; `duckdb.connect(run.path)` is instrumented."""
        return self._sandbox.path

    @property
    def url(self) -> str | None:
        """A SQLAlchemy URL of the sandbox, for `create_engine(run.url)` and pandas `to_sql`."""
        return self._sandbox.url

    def connection_url(self, driver: str | None = None, *, password: str | None = None) -> str | None:
        """The sandbox's URL for a client: `driver=None` or "libpq" a libpq URL
        (`postgresql://…`: psql, dlt's postgres credentials), "psycopg" or "psycopg2" a
        SQLAlchemy URL for that driver. `password`: a placeholder added when the sandbox
        needs none (a trust-auth server ignores it) for clients that refuse a URL
        without one, e.g. `run.connection_url(password="unused")` for dlt. On DuckDB: `run.url`."""
        return self._sandbox.connection_url(driver, password)

    @property
    def landing(self) -> Path | None:
        """The sandbox's folder: file sources land there (per arrival batch, per
        partition, or as one snapshot file; see Source(path=)), and Target(file=)
        outputs are read from there. None when the spec declares no files."""
        return self._sandbox.landing

    @property
    def spark(self) -> Any:
        """The sandbox's SparkSession (--idem-db spark), its database current; None elsewhere."""
        return getattr(self._sandbox, "spark", None)

    def connect(self) -> Any:
        """Another instrumented connection to the sandbox."""
        return self._sandbox.connect(self._ctl)

    def engine(self) -> Any:
        """A SQLAlchemy engine bound to the sandbox (needs idemtest[sqlalchemy])."""
        from .sandbox import sqlalchemy_engine

        return sqlalchemy_engine(self._sandbox, self._ctl)  # type: ignore[arg-type]
