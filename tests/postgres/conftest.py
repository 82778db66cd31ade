"""PostgreSQL tests run against a real server: IDEMTEST_PG_DSN (default
postgresql://postgres@127.0.0.1:5432/postgres). Unreachable server: skipped,
or failed when IDEMTEST_REQUIRE_POSTGRES=1 (CI), so CI cannot pass by skipping."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

DSN = os.environ.get("IDEMTEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRED = os.environ.get("IDEMTEST_REQUIRE_POSTGRES", "") == "1"


def _unreachable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'idemtest[postgres]')"
    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except Exception as e:
        from idemtest.sandbox import redact

        return f"PostgreSQL at {redact(DSN)} is unreachable: {redact(str(e).strip())}"
    return None


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    reason = _unreachable()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"{reason} (IDEMTEST_REQUIRE_POSTGRES=1: a PostgreSQL server is required)", pytrace=False)
        pytest.skip(f"{reason}; set IDEMTEST_PG_DSN to a server where idemtest may create databases")
    return DSN


@pytest.fixture(scope="module")
def backend(pg_dsn: str) -> Iterator[Any]:
    from idemtest.sandbox.postgres import PostgresBackend

    be = PostgresBackend(pg_dsn)
    yield be
    be.close()


@pytest.fixture
def sandbox(backend: Any) -> Iterator[Any]:
    sb = backend.create()
    yield sb
    sb.close()


@pytest.fixture
def admin(pg_dsn: str) -> Iterator[Any]:
    """An autocommit connection to the DSN's own database, for what the tests check."""
    import psycopg

    conn = psycopg.connect(pg_dsn, autocommit=True)
    yield conn
    conn.close()


def databases(admin: Any) -> set[str]:
    return {r[0] for r in admin.execute("SELECT datname FROM pg_database").fetchall()}


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"
