"""Sandbox backends behind one interface; `get_backend` picks one from `--idem-db`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import BackendError
from .._extras import require
from .base import Backend, Sandbox
from .postgres.dsn import redact

if TYPE_CHECKING:
    from ..instrument import Controller

__all__ = ["Backend", "Sandbox", "get_backend", "redact", "sqlalchemy_engine"]


def get_backend(db: str) -> Backend:
    """`duckdb` (default, in memory), `duckdb-file`, `postgresql://user@host:port/db`, or `postgres+docker`."""
    text = (db or "duckdb").strip()
    low = text.lower()
    if low in ("duckdb", "duckdb:memory", ":memory:"):
        from .duckdb import DuckDBBackend

        return DuckDBBackend()
    if low in ("duckdb-file", "duckdb:file"):
        from .duckdb import DuckDBBackend

        return DuckDBBackend(files=True)
    if low.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresBackend

        return PostgresBackend(text)
    if low in ("postgres+docker", "postgresql+docker", "docker"):
        from .postgres import DockerPostgresBackend

        return DockerPostgresBackend()
    raise BackendError(
        f"--idem-db={redact(text)!r} is not a known sandbox; use 'duckdb' (default, in memory), "
        "'duckdb-file', 'postgresql://user@host:port/dbname' (a server where idemtest may create databases) "
        "or 'postgres+docker' (testcontainers)"
    )


def sqlalchemy_engine(sandbox: Sandbox, ctl: Controller | None) -> Any:
    """A SQLAlchemy engine whose connections are instrumented connections to the sandbox."""
    sa = require("sqlalchemy", "sqlalchemy")
    if sandbox.backend == "duckdb":
        duckdb_engine = require("duckdb_engine", "sqlalchemy")
        # duckdb_engine expects its own wrapper around the DuckDB connection
        return sa.create_engine("duckdb://", creator=lambda: duckdb_engine.ConnectionWrapper(sandbox.connect(ctl)), poolclass=sa.pool.NullPool)
    return sa.create_engine("postgresql+psycopg://", creator=lambda: sandbox.connect(ctl), poolclass=sa.pool.NullPool)
