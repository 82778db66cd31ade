"""PostgresSandbox: one throwaway database, seen by the run as a DSN / URL and by
the harness through a plain autocommit connection of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from ...instrument import Controller
from ..base import Sandbox
from . import patches
from .drivers import (
    _instrumented_cursor_class,
    _pg2_classes,
    _pg3_connect,
    _plain_connect,
    open_transaction,
)
from .dsn import make_url, redact
from .patches import _registry, _registry_lock
from .sqlsplit import split_sql

# in a crash="kill" child: the parent's connections, never closed nor finalized there
_inherited: list[Any] = []


class _Owner(Protocol):
    """What a sandbox needs of its PostgresBackend (pool.py, which imports this module)."""

    params: dict[str, str]

    def release(self, name: str) -> None: ...


class PostgresSandbox(Sandbox):
    backend = "postgres"
    dialect = "postgres"
    param = "%s"

    def __init__(self, backend: _Owner, dbname: str, prepared_for: str | None = None) -> None:
        super().__init__(dbname)
        self.backend_ref = backend
        self.dbname = dbname
        # the setup key (PostgresBackend.setup_key) whose template this database was cloned
        # from: state schema and setup DDL are already in it
        self.prepared_for = prepared_for
        self.params = {**backend.params, "dbname": dbname}
        self._conninfo = make_url(self.params)
        self._admin: Any = None
        self._closed = False
        # every session idemtest opens to this (fresh) database, and their server pids: the
        # database's own session count tells whether anything else connected (`unseen`)
        self._opened = 0
        self._pids: set[int] = set()

    def _opened_one(self, conn: Any) -> Any:
        pid: int | None = None
        with contextlib.suppress(Exception):
            pid = int(conn.info.backend_pid)
        self.adopt_session(pid)
        if self.on_open is not None:
            self.on_open(pid)
        return conn

    def adopt_session(self, pid: int | None) -> None:
        self._opened += 1
        if pid is not None:
            self._pids.add(pid)

    def register(self) -> None:
        with _registry_lock:
            _registry[self.dbname] = self

    # --- what a run sees ---------------------------------------------------
    @property
    def dsn(self) -> str:
        """libpq URL of the sandbox database; it holds the password, since user code needs it."""
        return self._conninfo

    @property
    def url(self) -> str:
        return make_url(self.params, "postgresql+psycopg")

    @property
    def url_psycopg2(self) -> str:
        return make_url(self.params, "postgresql+psycopg2")

    #: URL schemes by client: libpq (psql, pg_dump, dlt's `postgres` credentials), SQLAlchemy's two drivers
    SCHEMES = {None: "postgresql", "libpq": "postgresql", "psycopg": "postgresql+psycopg", "psycopg2": "postgresql+psycopg2"}

    def connection_url(self, driver: str | None = None, password: str | None = None) -> str:
        """The sandbox URL for `driver`; `password` fills in a placeholder when the
        server needs none (trust auth ignores it) and the client insists on one."""
        scheme = self.SCHEMES.get(driver)
        if scheme is None:
            raise ValueError(f"driver={driver!r}: use one of {sorted(k for k in self.SCHEMES if k)} (or None for a libpq URL)")
        params = dict(self.params)
        if password and not params.get("password"):
            params["password"] = password
        return make_url(params, scheme)

    def __repr__(self) -> str:
        return f"<PostgresSandbox {redact(self._conninfo)}>"

    def connect(self, ctl: Controller | None, kind: str | None = "connect", *, driver: str = "psycopg", **kwargs: Any) -> Any:
        """A psycopg 3 (default, non-autocommit as in production) or psycopg2 connection
        whose statements are boundaries of `ctl`. kwargs: the user's own connect arguments."""
        b = ctl.boundary(kind, f"{kind} to sandbox") if ctl is not None and kind else None
        if driver == "psycopg2":
            conn = self._connect_pg2(ctl, **kwargs)
        else:
            conninfo = kwargs.pop("conninfo", None) or self._conninfo
            conn = _pg3_connect(conninfo, ctl, **kwargs)
        self._opened_one(conn)
        if ctl is not None:
            # a crash closes the connection: its open transaction is lost, as when a process dies
            ctl.register(conn.close, conn.cancel)
            what = "run.conn" if kind is None else f"a {driver} connection the load opened to the sandbox"
            ctl.watch(what, lambda: open_transaction(conn))
            if b is not None:
                ctl.done(b)
        return conn

    def _connect_pg2(self, ctl: Controller | None, dsn: str | None = None, connection_factory: Any = None, cursor_factory: Any = None, **kwargs: Any) -> Any:
        import psycopg2

        conn_cls, _ = _pg2_classes()
        if connection_factory is not None and not issubclass(conn_cls, connection_factory):
            conn_cls = _instrumented_cursor_class(connection_factory, conn_cls)  # e.g. LoggingConnection
        # the unpatched connect (read now: the patches set it), or the patch would route back here
        connect = patches._orig_pg2_connect or psycopg2.connect
        conn = connect(dsn if dsn is not None or kwargs else self._conninfo, conn_cls, cursor_factory, **kwargs)
        conn._idem_ctl = ctl
        return conn

    def raw(self) -> Any:
        return self._opened_one(_plain_connect(self._conninfo))

    # --- what the harness does ---------------------------------------------
    @property
    def admin(self) -> Any:
        if self._admin is None or self._admin.closed:
            self._admin = self._opened_one(_plain_connect(self._conninfo, autocommit=True))
        return self._admin

    def unseen(self) -> list[str]:
        """Sessions to this database that idemtest did not open (psql, asyncpg, a
        `psycopg.Connection.connect` or pool that bypasses `psycopg.connect`, ...).

        The sandbox is a fresh database, so `pg_stat_database.sessions` (PostgreSQL 14+;
        a backend reports its session at its first transaction and when it exits, before it
        leaves `pg_stat_activity`) counts every session ever opened to it; the ones still
        open are listed by pid in `pg_stat_activity`. A session opened and closed without
        a transaction may be counted only at its exit, which this still sees."""
        try:
            _, rows = self.query(
                "SELECT pid, coalesce(application_name, ''), coalesce(host(client_addr), 'local socket') FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            _, counted = self.query("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        except Exception:
            return []  # PostgreSQL before 14 has no session count: this check is skipped
        open_foreign = [r for r in rows if int(r[0]) not in self._pids]
        out = [f"an open PostgreSQL session idemtest did not open (pid {pid}, application_name {app!r}, from {addr})" for pid, app, addr in open_foreign]
        extra = int(counted[0][0] or 0) - self._opened - len(open_foreign) if counted else 0
        if extra > 0:
            out.append(
                f"{extra} PostgreSQL session(s) to the sandbox that idemtest did not open (the database counts {counted[0][0]} sessions, "
                f"idemtest opened {self._opened}): a client other than psycopg.connect / psycopg2.connect / create_engine(run.url), "
                "e.g. psql, asyncpg, pg8000, psycopg.Connection.connect or a psycopg_pool pool"
            )
        return out

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.admin.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.admin.cursor() as cur:
            cur.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self.admin.cursor() as cur:
            cur.execute(sql, params)
            cols = [d.name for d in cur.description] if cur.description else []
            return cols, [tuple(r) for r in cur.fetchall()] if cur.description else []

    def table_columns(self, table: str) -> list[str] | None:
        # to_regclass resolves the name like the user's SQL would (search_path, quoting)
        _, rows = self.query(
            "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [self.quote(table)],
        )
        return [r[0] for r in rows] or None

    def split_script(self, sql: str) -> list[str]:
        return split_sql(sql)

    def load_source(self, source: Any, rows: Sequence[dict[str, Any]]) -> None:
        """DELETE + COPY in one transaction: readers never see the table half-filled."""
        cols = list(source.columns)
        table = self.quote(source.table)
        conn = self.admin
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(f"DELETE FROM {table}")
            if rows:
                collist = ", ".join(self.quote(c) for c in cols)
                with cur.copy(f"COPY {table} ({collist}) FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row(tuple(r.get(c) for c in cols))

    def enter_child(self) -> None:
        # the inherited admin connection shares its socket with the parent: keep it
        # referenced (its finalizer would end the parent's session) and open a new one
        _inherited.append(self._admin)
        self._admin = None

    def close_connections(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _registry_lock:
            _registry.pop(self.dbname, None)
        self.close_connections()
        self.backend_ref.release(self.dbname)
