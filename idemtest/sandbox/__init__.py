"""Sandbox backends behind one interface.

`parse_db` is the one table that turns an `--idem-db` value into a backend
kind and its SQL dialect, without connecting to anything; `get_backend`
builds the backend."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import BackendError
from .._extras import require
from .base import Backend, Sandbox

if TYPE_CHECKING:
    from ..instrument import Controller

__all__ = ["DIALECTS", "Backend", "DbChoice", "Sandbox", "get_backend", "option_for", "parse_db", "redact", "saved_db", "sqlalchemy_engine"]

#: dialect -> the `--idem-db` value that gives a sandbox of it
DIALECTS: dict[str, str] = {
    "duckdb": "--idem-db duckdb",
    "postgres": "--idem-db postgresql://user@host:port/db",
    "spark": "--idem-db spark",
}

_KINDS: dict[str, tuple[str, str]] = {  # spelling -> (kind, dialect)
    "duckdb": ("duckdb", "duckdb"),
    "duckdb:memory": ("duckdb", "duckdb"),
    ":memory:": ("duckdb", "duckdb"),
    "duckdb-file": ("duckdb-file", "duckdb"),
    "duckdb:file": ("duckdb-file", "duckdb"),
    "postgres+docker": ("postgres+docker", "postgres"),
    "postgresql+docker": ("postgres+docker", "postgres"),
    "docker": ("postgres+docker", "postgres"),
    "spark": ("spark", "spark"),
    "spark+delta": ("spark+delta", "spark"),
}


# libpq's other spelling: "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
_KEY_VALUE_DSN = re.compile(r"^\s*(host|hostaddr|port|user|dbname|password|service)\s*=", re.I)


@dataclass(frozen=True)
class DbChoice:
    """A parsed `--idem-db` value: `kind` picks the backend, `dialect` the SQL it speaks."""

    text: str = field(repr=False)  # may hold a password: shown redacted
    kind: str  # duckdb | duckdb-file | postgres | postgres+docker
    dialect: str  # duckdb | postgres

    def __repr__(self) -> str:
        return f"DbChoice({redact(self.text)!r}, kind={self.kind!r}, dialect={self.dialect!r})"

    @property
    def server(self) -> bool:
        """A server DSN: never saved or printed with its password."""
        return self.kind == "postgres"

    def __str__(self) -> str:
        return redact(self.text) if self.server else self.kind


def redact(dsn: str) -> str:
    """A DSN with its password replaced, fit to print."""
    from .postgres.dsn import redact as _redact

    return _redact(dsn)


def parse_db(db: str | None) -> DbChoice:
    """`duckdb` (default, in memory), `duckdb-file`, `postgresql://user@host:port/db`, or `postgres+docker`."""
    text = ("duckdb" if db is None else str(db)).strip()
    low = text.lower()
    if low in _KINDS:
        kind, dialect = _KINDS[low]
        return DbChoice(text, kind, dialect)
    if low.startswith(("postgresql://", "postgres://")):
        _check_url_userinfo(text)
        return DbChoice(text, "postgres", "postgres")
    if _KEY_VALUE_DSN.match(text):
        return DbChoice(text, "postgres", "postgres")
    raise BackendError(
        f"--idem-db={redact(text)!r} is not a known sandbox; use 'duckdb' (default, in memory), "
        "'duckdb-file', 'postgresql://user@host:port/dbname' or 'host=... user=... dbname=...' (a server where idemtest may create databases) "
        "'postgres+docker' (testcontainers), or 'spark' / 'spark+delta' (a local Spark session)"
    )


def _check_url_userinfo(url: str) -> None:
    """libpq ends a URL's password at its first '@': with an unencoded '@' in the password
    the rest of it becomes the host, and the connection error would print it."""
    rest = url.split("://", 1)[1]
    query = rest.find("?")
    authority = rest if query < 0 else rest[:query]
    if authority.count("@") >= 2:
        raise BackendError(
            f"--idem-db={redact(url)!r}: the user or password holds an unencoded '@', which libpq takes for the end of the password "
            "(the rest would become the host name); percent-encode it ('@' -> %40, e.g. postgresql://user:p%40ss@host:5432/db) "
            "or use the key=value form: host=... user=... password='p@ss' dbname=..."
        )


def saved_db(name: str | None) -> DbChoice:
    """The sandbox a saved failure names (a backend's `name`: a server's DSN is never saved)."""
    if name in ("postgres", "postgresql"):
        return DbChoice("postgres", "postgres", "postgres")
    try:
        return parse_db(name)
    except BackendError:
        return parse_db(None)


def option_for(dialect: str) -> str:
    """The option that gives a sandbox of `dialect`, for skip reasons and errors."""
    return DIALECTS.get(dialect, f"--idem-db {dialect}")


def get_backend(db: str | DbChoice | None) -> Backend:
    choice = db if isinstance(db, DbChoice) else parse_db(db)
    if choice.kind == "duckdb":
        from .duckdb import DuckDBBackend

        return DuckDBBackend()
    if choice.kind == "duckdb-file":
        from .duckdb import DuckDBBackend

        return DuckDBBackend(files=True)
    if choice.kind == "postgres":
        from .postgres import PostgresBackend

        return PostgresBackend(choice.text)
    if choice.kind in ("spark", "spark+delta"):
        from .spark import SparkBackend

        return SparkBackend(choice.kind)
    from .postgres import DockerPostgresBackend

    return DockerPostgresBackend()


def sqlalchemy_engine(sandbox: Sandbox, ctl: Controller | None) -> Any:
    """A SQLAlchemy engine whose connections are instrumented connections to the sandbox."""
    sa = require("sqlalchemy", "sqlalchemy")
    if sandbox.backend == "duckdb":
        duckdb_engine = require("duckdb_engine", "sqlalchemy")
        # duckdb_engine expects its own wrapper around the DuckDB connection
        return sa.create_engine("duckdb://", creator=lambda: duckdb_engine.ConnectionWrapper(sandbox.connect(ctl)), poolclass=sa.pool.NullPool)
    return sa.create_engine("postgresql+psycopg://", creator=lambda: sandbox.connect(ctl), poolclass=sa.pool.NullPool)
