"""PostgreSQL sandboxes: throwaway databases that idemtest creates and drops on a server.

Safety first: the admin connection to the DSN's own database only issues
CREATE/DROP DATABASE; every sandbox is a database named
`idemtest_<host>_<pid>_<worker>_<time>_<suffix>`, and only such databases are
ever dropped (ours at close, and at start-up leftovers whose process is dead or
that are over an hour old, when nobody is connected to them). The naming and
the staleness rule are in `names`; the sweep is `PostgresBackend.sweep` (`pool`).

Speed: every example needs two sandboxes with the spec's setup DDL in them.
The DDL runs once, in a template database keyed by a hash of the setup text;
each sandbox is `CREATE DATABASE … TEMPLATE` of it (see bench/pg_reset.py for
the measured alternatives). A background thread keeps a couple of clones ready
and drops used sandboxes, so the harness rarely waits on the server (`pool`).

Instrumentation: connections are real psycopg 3 / psycopg2 connection
subclasses (so `isinstance`, SQLAlchemy and pandas keep working) whose
cursors call `Controller.boundary` around every statement (`drivers`);
`psycopg.connect` and `psycopg2.connect` are patched while a backend is open
so that a connect to a sandbox database returns such a connection, registered
with the run's controller; other DSNs pass through untouched (`patches`).

Modules, bottom to top (each imports only those before it):
    names      which `idemtest_*` databases are ours, which are leftovers
    sqlsplit   `split_sql`: a script into statements
    dsn        `parse_dsn`, `make_url`, `redact`
    drivers    the instrumented psycopg 3 / psycopg2 connection and cursor classes
    patches    the `connect` patches and the sandbox registry they consult
    sandbox    `PostgresSandbox`
    pool       `PostgresBackend`: admin connection, sweep, templates, clone pool
    docker     `DockerPostgresBackend` (testcontainers)

psycopg, psycopg2 and testcontainers are imported on first use only.
"""

from __future__ import annotations

from .docker import DockerPostgresBackend
from .dsn import make_url, parse_dsn, redact
from .names import name_prefix
from .pool import PostgresBackend
from .sandbox import PostgresSandbox
from .sqlsplit import split_sql

__all__ = [
    "DockerPostgresBackend",
    "PostgresBackend",
    "PostgresSandbox",
    "make_url",
    "name_prefix",
    "parse_dsn",
    "redact",
    "split_sql",
]
