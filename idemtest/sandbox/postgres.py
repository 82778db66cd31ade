"""PostgreSQL sandboxes: throwaway databases that idemtest creates and drops on a server.

Safety first: the admin connection to the DSN's own database only issues
CREATE/DROP DATABASE; every sandbox is a database named
`idemtest_<host>_<pid>_<worker>_<time>_<suffix>`, and only such databases are
ever dropped (ours at close, and at start-up leftovers whose process is dead or
that are over an hour old, when nobody is connected to them).

Speed: every example needs two sandboxes with the spec's setup DDL in them.
The DDL runs once, in a template database keyed by a hash of the setup text;
each sandbox is `CREATE DATABASE … TEMPLATE` of it (see bench/pg_reset.py for
the measured alternatives). A background thread keeps a couple of clones ready
and drops used sandboxes, so the harness rarely waits on the server.

Instrumentation: connections are real psycopg 3 / psycopg2 connection
subclasses (so `isinstance`, SQLAlchemy and pandas keep working) whose
cursors call `Controller.boundary` around every statement; `psycopg.connect`
and `psycopg2.connect` are patched while a backend is open so that a connect
to a sandbox database returns such a connection, registered with the run's
controller; other DSNs pass through untouched.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import os
import queue
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as _urlquote
from urllib.parse import urlencode

from .._errors import BackendError, IdemtestError
from ..instrument import Controller, InjectedCrash
from . import redact, require
from .base import Backend, Sandbox, resolve_setup_text

if TYPE_CHECKING:
    from ..spec import Spec

PREFIX = "idemtest_"
# idemtest_<host hash>_<pid>_<worker>_<unix time hex>_<suffix>; the sweep parses it
_NAME_RE = re.compile(r"^idemtest_([0-9a-f]{4})_(\d+)_([a-z0-9]+)_([0-9a-f]{8})_([a-z0-9]+)$")
STALE_AFTER_S = 3600.0

_registry: dict[str, PostgresSandbox] = {}  # sandbox database name -> sandbox
_registry_lock = threading.Lock()
_backends: list[PostgresBackend] = []
_patch_lock = threading.Lock()
_orig_pg3_connect: Any = None
_orig_pg2_connect: Any = None


# --- names ------------------------------------------------------------------
def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:4]


def _worker_tag() -> str:
    w = re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "").lower())
    return (w or "m")[:8]


_STARTED = int(time.time())  # databases of an earlier process with our pid are older than this


def name_prefix() -> str:
    """The prefix of every database this process creates (a timestamp and a suffix follow:
    `idemtest_<host>_<pid>_<worker>_<unix time hex>_<backend token><kind><n>`)."""
    return f"{PREFIX}{_host_tag()}_{os.getpid()}_{_worker_tag()}_"


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def is_stale(name: str, now: float | None = None) -> bool:
    """An idemtest database left by a dead process of this host, or older than an hour."""
    m = _NAME_RE.match(name)
    if m is None:
        return False
    host, pid, _worker, stamp, _suffix = m.groups()
    created = int(stamp, 16)
    if host == _host_tag():
        if int(pid) == os.getpid():
            # ours, or an earlier process that had our pid (containers reuse pids)
            return created < _STARTED
        return not _pid_alive(int(pid))
    # another host's process cannot be probed: go by age
    return (time.time() if now is None else now) - created > STALE_AFTER_S


# --- SQL scripts ----------------------------------------------------------------
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.S).strip()


def split_sql(sql: str) -> list[str]:
    """Split a PostgreSQL script on top-level semicolons, respecting quotes,
    E'' strings, dollar quoting and comments. Comment-only pieces are dropped."""
    out: list[str] = []
    i, n, start = 0, len(sql), 0

    def ident_char(k: int) -> bool:
        return k >= 0 and (sql[k].isalnum() or sql[k] in "_$")

    while i < n:
        c = sql[i]
        if c == "'" or c == '"':
            backslashes = c == "'" and i > 0 and sql[i - 1] in "eE" and not ident_char(i - 2)
            j = i + 1
            while j < n:
                if backslashes and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            continue
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and sql.startswith("/*", i):
            depth, j = 1, i + 2  # PostgreSQL block comments nest
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            i = j
            continue
        if c == "$" and not ident_char(i - 1):
            m = _DOLLAR_TAG.match(sql, i)
            if m:
                end = sql.find(m.group(0), m.end())
                i = n if end < 0 else end + len(m.group(0))
                continue
        if c == ";":
            piece = sql[start:i].strip()
            if _strip_comments(piece):
                out.append(piece)
            start = i + 1
        i += 1
    piece = sql[start:].strip()
    if _strip_comments(piece):
        out.append(piece)
    return out


def _sql_text(query: Any, conn: Any = None) -> str:
    if isinstance(query, bytes):
        return query.decode(errors="replace")
    if isinstance(query, str):
        return query
    with contextlib.suppress(Exception):
        return str(query.as_string(conn))  # psycopg.sql.Composed
    return str(query)


def _dead(ctl: Controller) -> bool:
    return ctl.crashed is not None or ctl.aborted


class _TxnBoundaries:
    """COMMIT and ROLLBACK as statement boundaries, for both drivers' connection classes."""

    _idem_ctl: Controller | None = None

    def commit(self) -> None:
        ctl = self._idem_ctl
        if ctl is None:
            return super().commit()  # type: ignore[misc]
        b = ctl.boundary("commit", "COMMIT")
        super().commit()  # type: ignore[misc]
        ctl.done(b)
        return None

    def rollback(self) -> None:
        ctl = self._idem_ctl
        if ctl is None:
            return super().rollback()  # type: ignore[misc]
        if _dead(ctl):
            # a dead process sends nothing more; closing the connection loses the transaction
            return None
        b = ctl.boundary("rollback", "ROLLBACK")
        super().rollback()  # type: ignore[misc]
        ctl.done(b)
        return None


# --- DSNs ----------------------------------------------------------------------
def _conninfo() -> Any:
    return require("psycopg", "postgres").conninfo


def parse_dsn(dsn: str = "", **kwargs: Any) -> dict[str, str]:
    """libpq parameters of a URL or key=value DSN (plus keyword overrides)."""
    if "database" in kwargs and "dbname" not in kwargs:  # psycopg2 spelling
        kwargs["dbname"] = kwargs.pop("database")
    params = {k: v for k, v in kwargs.items() if v is not None}
    return {k: str(v) for k, v in _conninfo().conninfo_to_dict(dsn or "", **params).items()}


def make_url(params: dict[str, str], scheme: str = "postgresql") -> str:
    """A libpq / SQLAlchemy URL from libpq parameters (password included)."""
    p = dict(params)
    user, password = p.pop("user", ""), p.pop("password", "")
    host, port, dbname = p.pop("host", ""), p.pop("port", ""), p.pop("dbname", "")
    auth = ""
    if user:
        auth = _urlquote(user, safe="") + (":" + _urlquote(password, safe="") if password else "") + "@"
    netloc = ""
    if host and not host.startswith("/") and "," not in host:
        netloc = f"[{host}]" if ":" in host else host
        if port:
            netloc += f":{port}"
    else:
        if host:
            p["host"] = host
        if port:
            p["port"] = port
    q = ("?" + urlencode(p)) if p else ""
    return f"{scheme}://{auth}{netloc}/{_urlquote(dbname, safe='')}{q}"


def _host_key(host: str | None) -> str:
    h = (host or "").strip().lower()
    if not h or h.startswith("/") or h in ("localhost", "127.0.0.1", "::1"):
        return "local"
    return h


def _scrub(text: str, secret: str | None) -> str:
    text = redact(text)
    return text.replace(secret, "***") if secret else text


def _sandbox_for(params: dict[str, str]) -> PostgresSandbox | None:
    """The sandbox a connect targets (same database, port and host), or None."""
    sb = _registry.get(params.get("dbname", ""))
    if sb is None:
        return None
    mine = sb.backend_ref.params
    if (params.get("port") or "5432") != (mine.get("port") or "5432"):
        return None
    a, b = _host_key(params.get("host")), _host_key(mine.get("host"))
    if a != b and a != "local" and b != "local":
        return None
    return sb


# --- psycopg 3 instrumentation ------------------------------------------------------
_pg3_cache: dict[Any, Any] = {}


def _pg3_classes() -> tuple[Any, Any]:
    """(connection class, cursor mixin) built on first use, so psycopg loads lazily."""
    if "conn" in _pg3_cache:
        return _pg3_cache["conn"], _pg3_cache["mixin"]
    psycopg = require("psycopg", "postgres")

    class IdemCursorMixin:
        """Every statement of the cursor is a boundary of its connection's controller."""

        def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
            conn = self.connection  # type: ignore[attr-defined]
            ctl: Controller | None = getattr(conn, "_idem_ctl", None)
            if ctl is None:
                return super().execute(query, params, **kw)  # type: ignore[misc]
            if params is None and isinstance(query, str) and ";" in query and not conn.autocommit:
                # inside a transaction a script is several statements a crash can fall
                # between; in autocommit mode PostgreSQL runs it atomically, so keep it whole
                stmts = split_sql(query)
                if len(stmts) > 1:
                    for s in stmts:
                        b = ctl.boundary("execute", s)
                        super().execute(s, **kw)  # type: ignore[misc]
                        ctl.done(b)
                    return self
            b = ctl.boundary("execute", _sql_text(query, conn))
            out = super().execute(query, params, **kw)  # type: ignore[misc]
            ctl.done(b)
            return out

        def executemany(self, query: Any, params_seq: Any, **kw: Any) -> Any:
            conn = self.connection  # type: ignore[attr-defined]
            ctl: Controller | None = getattr(conn, "_idem_ctl", None)
            if ctl is None:
                return super().executemany(query, params_seq, **kw)  # type: ignore[misc]
            b = ctl.boundary("executemany", _sql_text(query, conn))
            out = super().executemany(query, params_seq, **kw)  # type: ignore[misc]
            ctl.done(b)
            return out

        @contextlib.contextmanager
        def copy(self, statement: Any, params: Any = None, **kw: Any) -> Iterator[Any]:
            conn = self.connection  # type: ignore[attr-defined]
            ctl: Controller | None = getattr(conn, "_idem_ctl", None)
            if ctl is None:
                with super().copy(statement, params, **kw) as cp:  # type: ignore[misc]
                    yield cp
                return
            # the COPY is one statement: it starts at entry and completes at exit
            b = ctl.boundary("copy", _sql_text(statement, conn))
            with super().copy(statement, params, **kw) as cp:  # type: ignore[misc]
                yield cp
            ctl.done(b)

    class IdemConnection(_TxnBoundaries, psycopg.Connection):  # type: ignore[name-defined]
        """A psycopg 3 connection to a sandbox; `_idem_ctl` is the run's controller."""

        _idem_ctl: Controller | None = None

        @contextlib.contextmanager
        def transaction(self, savepoint_name: str | None = None, force_rollback: bool = False) -> Iterator[Any]:
            ctl = self._idem_ctl
            if ctl is None or self._pipeline:
                with super().transaction(savepoint_name, force_rollback) as tx:
                    yield tx
                return
            nested = self.info.transaction_status != psycopg.pq.TransactionStatus.IDLE or savepoint_name is not None
            tx = psycopg.Transaction(self, savepoint_name, force_rollback)
            b = ctl.boundary("begin", "SAVEPOINT" if nested else "BEGIN (transaction block)")
            tx.__enter__()
            ctl.done(b)
            try:
                yield tx
            except InjectedCrash:
                # the process died inside the block: no ROLLBACK reaches the server,
                # the transaction is lost when the connection is closed
                raise
            except BaseException as e:
                if not tx.__exit__(type(e), e, e.__traceback__):
                    raise
                return
            b = ctl.boundary("commit", "RELEASE SAVEPOINT" if nested else "COMMIT (end of transaction block)")
            tx.__exit__(None, None, None)
            ctl.done(b)

        def __repr__(self) -> str:
            return f"<idemtest instrumented psycopg connection to sandbox {self.info.dbname}>"

    _pg3_cache["conn"], _pg3_cache["mixin"] = IdemConnection, IdemCursorMixin
    return IdemConnection, IdemCursorMixin


def _instrumented_cursor_class(base: Any, mixin: Any) -> Any:
    """`base` with the boundary mixin in front (cached; keeps ClientCursor etc. working)."""
    if issubclass(base, mixin):
        return base
    key = (mixin, base)
    cls = _pg3_cache.get(key)
    if cls is None:
        cls = type(f"Idem{base.__name__}", (mixin, base), {"__module__": __name__})
        _pg3_cache[key] = cls
    return cls


def _pg3_connect(conninfo: str, ctl: Controller | None, **kwargs: Any) -> Any:
    psycopg = require("psycopg", "postgres")
    conn_cls, mixin = _pg3_classes()
    kwargs["cursor_factory"] = _instrumented_cursor_class(kwargs.get("cursor_factory") or psycopg.Cursor, mixin)
    conn = conn_cls.connect(conninfo, **kwargs)
    conn._idem_ctl = ctl
    return conn


# --- psycopg2 instrumentation -----------------------------------------------------
_pg2_cache: dict[Any, Any] = {}


def _pg2_classes() -> tuple[Any, Any]:
    if "conn" in _pg2_cache:
        return _pg2_cache["conn"], _pg2_cache["mixin"]
    import psycopg2.extensions as ext

    class IdemCursor2Mixin:
        def _idem(self) -> Controller | None:
            return getattr(self.connection, "_idem_ctl", None)  # type: ignore[attr-defined]

        def _stmt(self, kind: str, text: Any, fn: Callable[..., Any], *args: Any) -> Any:
            ctl = self._idem()
            if ctl is None:
                return fn(*args)
            b = ctl.boundary(kind, _sql_text(text, self))
            out = fn(*args)
            ctl.done(b)
            return out

        def execute(self, query: Any, vars: Any = None) -> Any:
            ctl = self._idem()
            if ctl is not None and vars is None and isinstance(query, str) and ";" in query and not self.connection.autocommit:  # type: ignore[attr-defined]
                stmts = split_sql(query)
                if len(stmts) > 1:
                    for s in stmts:
                        self._stmt("execute", s, super().execute, s)  # type: ignore[misc]
                    return None
            return self._stmt("execute", query, super().execute, query, vars)  # type: ignore[misc]

        def executemany(self, query: Any, vars_list: Any) -> Any:
            return self._stmt("executemany", query, super().executemany, query, vars_list)  # type: ignore[misc]

        def callproc(self, procname: Any, parameters: Any = None) -> Any:
            return self._stmt("execute", f"CALL {procname}", super().callproc, procname, parameters)  # type: ignore[misc]

        def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> Any:
            return self._stmt("copy", sql, super().copy_expert, sql, file, size)  # type: ignore[misc]

        def copy_from(self, file: Any, table: str, *args: Any, **kwargs: Any) -> Any:
            return self._stmt("copy", f"COPY {table} FROM STDIN", lambda: super(IdemCursor2Mixin, self).copy_from(file, table, *args, **kwargs))  # type: ignore[misc]

        def copy_to(self, file: Any, table: str, *args: Any, **kwargs: Any) -> Any:
            return self._stmt("copy", f"COPY {table} TO STDOUT", lambda: super(IdemCursor2Mixin, self).copy_to(file, table, *args, **kwargs))  # type: ignore[misc]

    class IdemConnection2(_TxnBoundaries, ext.connection):
        """A psycopg2 connection to a sandbox; `_idem_ctl` is the run's controller."""

        _idem_ctl: Controller | None = None

        def cursor(self, *args: Any, **kwargs: Any) -> Any:
            base = kwargs.get("cursor_factory") or self.cursor_factory or ext.cursor
            kwargs["cursor_factory"] = _instrumented_cursor_class(base, IdemCursor2Mixin)
            return super().cursor(*args, **kwargs)


        # `with conn:` needs no override: psycopg2's __exit__ calls self.commit() / self.rollback()

        def __repr__(self) -> str:
            return f"<idemtest instrumented psycopg2 connection to sandbox {self.info.dbname}>"

    _pg2_cache["conn"], _pg2_cache["mixin"] = IdemConnection2, IdemCursor2Mixin
    return IdemConnection2, IdemCursor2Mixin


# --- the connect patches ----------------------------------------------------------
def _patched_pg3_connect(conninfo: str = "", **kwargs: Any) -> Any:
    try:
        params = parse_dsn(conninfo, **{k: v for k, v in kwargs.items() if k not in _PG3_NON_CONNINFO})
        sb = _sandbox_for(params)
    except Exception:
        sb = None  # not parseable here: let psycopg report it
    if sb is None:
        return _orig_pg3_connect(conninfo, **kwargs)
    from ..instrument import current

    return sb.connect(current(), kind="connect", driver="psycopg", conninfo=conninfo, **kwargs)


_PG3_NON_CONNINFO = frozenset({"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory"})


def _patched_pg2_connect(dsn: str | None = None, connection_factory: Any = None, cursor_factory: Any = None, **kwargs: Any) -> Any:
    try:
        params = parse_dsn(dsn or "", **{k: v for k, v in kwargs.items() if k != "async"})
        sb = _sandbox_for(params)
    except Exception:
        sb = None
    if sb is None:
        return _orig_pg2_connect(dsn, connection_factory, cursor_factory, **kwargs)
    from ..instrument import current

    return sb.connect(current(), kind="connect", driver="psycopg2", dsn=dsn, connection_factory=connection_factory, cursor_factory=cursor_factory, **kwargs)


def _install_patches() -> None:
    global _orig_pg3_connect, _orig_pg2_connect
    with _patch_lock:
        psycopg = require("psycopg", "postgres")
        if _orig_pg3_connect is None:
            _orig_pg3_connect = psycopg.connect
            psycopg.connect = _patched_pg3_connect
        if _orig_pg2_connect is None:
            try:
                import psycopg2
            except ImportError:
                return
            _orig_pg2_connect = psycopg2.connect
            psycopg2.connect = _patched_pg2_connect


def _uninstall_patches() -> None:
    global _orig_pg3_connect, _orig_pg2_connect
    with _patch_lock:
        if _backends:
            return
        if _orig_pg3_connect is not None:
            import psycopg

            psycopg.connect = _orig_pg3_connect
            _orig_pg3_connect = None
        if _orig_pg2_connect is not None:
            import psycopg2

            psycopg2.connect = _orig_pg2_connect
            _orig_pg2_connect = None


def _plain_connect(conninfo: str, **kwargs: Any) -> Any:
    psycopg = require("psycopg", "postgres")
    return psycopg.Connection.connect(conninfo, **kwargs)


# --- the sandbox --------------------------------------------------------------------
class PostgresSandbox(Sandbox):
    backend = "postgres"
    dialect = "postgres"
    param = "%s"

    def __init__(self, backend: PostgresBackend, dbname: str, prepared_for: str | None = None) -> None:
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
        if ctl is not None:
            # a crash closes the connection: its open transaction is lost, as when a process dies
            ctl.register(conn.close, conn.cancel)
            if b is not None:
                ctl.done(b)
        return conn

    def _connect_pg2(self, ctl: Controller | None, dsn: str | None = None, connection_factory: Any = None, cursor_factory: Any = None, **kwargs: Any) -> Any:
        import psycopg2

        conn_cls, _ = _pg2_classes()
        if connection_factory is not None and not issubclass(conn_cls, connection_factory):
            conn_cls = _instrumented_cursor_class(connection_factory, conn_cls)  # e.g. LoggingConnection
        connect = _orig_pg2_connect or psycopg2.connect
        conn = connect(dsn if dsn is not None or kwargs else self._conninfo, conn_cls, cursor_factory, **kwargs)
        conn._idem_ctl = ctl
        return conn

    def raw(self) -> Any:
        return _plain_connect(self._conninfo)

    # --- what the harness does ---------------------------------------------
    @property
    def admin(self) -> Any:
        if self._admin is None or self._admin.closed:
            self._admin = _plain_connect(self._conninfo, autocommit=True)
        return self._admin

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


class PostgresBackend(Backend):
    """`--idem-db postgresql://user@host:port/db`: sandboxes are databases idemtest creates on that server."""

    dialect = "postgres"
    name = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        lock_timeout_ms: int = 2000,
        statement_timeout_ms: int = 300_000,
        pool_size: int = 2,
        background: bool = True,
        sweep: bool = True,
    ) -> None:
        require("psycopg", "postgres")
        self.dsn = dsn
        try:
            self.params = parse_dsn(dsn)
        except Exception as e:
            raise BackendError(
                f"--idem-db={redact(dsn)!r} is not a valid PostgreSQL DSN ({_scrub(str(e), None)}); "
                "use postgresql://user@host:5432/postgres or 'host=… port=… user=… dbname=postgres'"
            ) from None
        self._password = self.params.get("password")
        self.lock_timeout_ms = lock_timeout_ms
        self.statement_timeout_ms = statement_timeout_ms
        self.pool_size = pool_size
        # unique per backend (several may share a process); the time lets other hosts judge age
        self.prefix = f"{name_prefix()}{int(time.time()):08x}_{secrets.token_hex(2)}"
        self._counter = itertools.count(1)
        self._lock = threading.RLock()
        self._created: set[str] = set()  # every database this backend created and has not dropped
        self._templates: dict[str, str] = {}  # setup key -> template database
        self._template_errors: dict[str, BaseException] = {}
        self._ready: dict[str, list[str]] = {}  # setup key -> cloned, unused databases
        self._jobs: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._background = background
        self._closed = False
        self.admin = self._admin_connect()
        v = int(self.admin.info.server_version)
        self.server_version = f"{v // 10000}.{v % 10000}" if v >= 100000 else str(v)
        self._check_privileges()
        self.swept: list[str] = self.sweep() if sweep else []
        with _patch_lock:
            _backends.append(self)
        _install_patches()
        atexit.register(self.close)

    # --- connections ----------------------------------------------------------
    def _admin_connect(self) -> Any:
        psycopg = require("psycopg", "postgres")
        try:
            return _plain_connect(self.dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as e:
            raise BackendError(
                f"cannot connect to PostgreSQL at {redact(self.dsn)}: {_scrub(str(e).strip(), self._password)}\n"
                "  check that the server runs and the DSN is right; idemtest needs a user that may CREATE DATABASE "
                "(it creates and drops its own idemtest_* databases there and never writes to any other)"
            ) from None

    def _check_privileges(self) -> None:
        row = self.admin.execute("SELECT rolcreatedb OR rolsuper, current_user FROM pg_roles WHERE rolname = current_user").fetchone()
        if not row or not row[0]:
            user = row[1] if row else "?"
            self.admin.close()
            raise BackendError(
                f"PostgreSQL user {user!r} at {redact(self.dsn)} may not create databases; "
                f"grant it with ALTER ROLE {user} CREATEDB, or use another user in --idem-db"
            )

    def _ddl(self, sql: str, conn: Any = None) -> None:
        (conn or self.admin).execute(sql)

    def describe(self) -> str:
        return f"PostgreSQL {self.server_version} at {redact(self.dsn)}"

    # --- leftovers --------------------------------------------------------------
    def sweep(self) -> list[str]:
        """Drop idemtest databases left by crashed sessions; returns their names.

        Only names of our own pattern, only when nobody is connected, and only
        when the process that made them is dead (same host) or over an hour old."""
        rows = self.admin.execute(
            "SELECT d.datname, (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname) "
            "FROM pg_database d WHERE d.datname LIKE 'idemtest\\_%' AND NOT d.datistemplate"
        ).fetchall()
        dropped = []
        for name, connected in rows:
            if connected or not is_stale(name):
                continue
            try:
                # no FORCE: if someone connected meanwhile, the drop fails and the database stays
                self._ddl(f'DROP DATABASE IF EXISTS "{name}"')
                dropped.append(name)
            except Exception:
                pass
        return dropped

    # --- templates and clones -------------------------------------------------
    @staticmethod
    def setup_key(spec: Spec | None) -> str:
        """Sandboxes of specs with the same setup share a template."""
        if spec is None:
            return "base"
        text = resolve_setup_text(spec)
        if text is None and spec.setup is not None:  # a setup callable: one template per function object
            text = f"callable:{getattr(spec.setup, '__qualname__', '')}:{id(spec.setup)}"
        return hashlib.sha1((text or "").encode()).hexdigest()[:10]

    def _new_name(self, kind: str) -> str:
        return f"{self.prefix}{kind}{next(self._counter)}"

    def _create_db(self, name: str, template: str | None, conn: Any = None) -> None:
        with self._lock:
            self._created.add(name)
        tpl = f' TEMPLATE "{template}"' if template else ""
        self._ddl(f'CREATE DATABASE "{name}"{tpl}', conn)
        # per-database defaults reach every session, whatever driver user code uses
        self._ddl(
            f"ALTER DATABASE \"{name}\" SET lock_timeout = '{int(self.lock_timeout_ms)}ms'; "
            f"ALTER DATABASE \"{name}\" SET statement_timeout = '{int(self.statement_timeout_ms)}ms'",
            conn,
        )

    def _drop_db(self, name: str, conn: Any = None) -> None:
        if not name.startswith(self.prefix):  # never drop what we did not name
            return
        try:
            self._ddl(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', conn)
        finally:
            with self._lock:
                self._created.discard(name)

    def template_for(self, spec: Spec | None) -> tuple[str, str]:
        """(setup key, template database), built on first use: state schema + setup + schema check."""
        key = self.setup_key(spec)
        with self._lock:
            if key in self._templates:
                return key, self._templates[key]
            err = self._template_errors.get(key)
            if err is not None:
                raise err
            name = self._new_name("t")
            self._create_db(name, None)
            tpl = PostgresSandbox(self, name)
            try:
                if spec is None:
                    tpl.create_state_store()
                else:
                    tpl.prepare(spec)
            except Exception as e:
                tpl.close_connections()
                with contextlib.suppress(Exception):
                    self._drop_db(name)
                if isinstance(e, IdemtestError):  # a bad spec stays bad: do not rebuild for every example
                    self._template_errors[key] = e
                raise
            tpl.close_connections()  # CREATE DATABASE … TEMPLATE needs it idle
            self._templates[key] = name
            return key, name

    def create(self, spec: Spec | None = None) -> PostgresSandbox:
        """A fresh sandbox. With `spec`, it is cloned from a template where the state
        schema and the spec's setup already ran (`sandbox.prepared_for == setup_key(spec)`),
        and the setup was checked against the spec once."""
        if self._closed:
            raise BackendError("this PostgreSQL backend is closed")
        key, template = self.template_for(spec)
        name = None
        with self._lock:
            ready = self._ready.get(key)
            if ready:
                name = ready.pop()
        if name is None:
            name = self._new_name("s")
            self._create_db(name, template)
        self._refill(key)
        sb = PostgresSandbox(self, name, prepared_for=key if spec is not None else None)
        sb.register()
        return sb

    def release(self, name: str) -> None:
        """A used sandbox: dropped in the background (or now)."""
        if self._background and not self._closed:
            self._start_worker()
            self._jobs.put(("drop", name))
        else:
            with contextlib.suppress(Exception):
                self._drop_db(name)

    def _refill(self, key: str) -> None:
        if not self._background or self.pool_size <= 0:
            return
        self._start_worker()
        self._jobs.put(("fill", key))

    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="idemtest postgres pool", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        conn = None
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if conn is None or conn.closed:
                    conn = _plain_connect(self.dsn, autocommit=True)
                what, arg = job
                if what == "drop":
                    self._drop_db(arg, conn)
                elif what == "fill":
                    while not self._closed:
                        with self._lock:
                            template = self._templates.get(arg)
                            have = len(self._ready.get(arg, ()))
                        if template is None or have >= self.pool_size:
                            break
                        name = self._new_name("s")
                        self._create_db(name, template, conn)
                        with self._lock:
                            if self._closed:
                                break
                            self._ready.setdefault(arg, []).append(name)
            except Exception:
                # the harness creates synchronously when the pool is empty; close() drops leftovers
                pass
            finally:
                self._jobs.task_done()
                if job is None and conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()

    def close(self) -> None:
        """Drop every database this backend created (sandboxes, pool, templates)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        if self._worker is not None:
            self._jobs.put(None)
            self._worker.join(30)
        with _registry_lock:
            for dbname, sb in list(_registry.items()):
                if sb.backend_ref is self:
                    sb.close_connections()
                    del _registry[dbname]
        with contextlib.suppress(Exception):
            if self.admin.closed:
                self.admin = _plain_connect(self.dsn, autocommit=True)
            for name in sorted(self._created):
                with contextlib.suppress(Exception):
                    self._drop_db(name)
        with contextlib.suppress(Exception):
            self.admin.close()
        with _patch_lock:
            if self in _backends:
                _backends.remove(self)
        _uninstall_patches()


class DockerPostgresBackend(PostgresBackend):
    """`--idem-db postgres+docker`: a PostgreSQL container (testcontainers) used as PostgresBackend."""

    name = "postgres+docker"

    def __init__(self, image: str = "postgres:16-alpine", **kwargs: Any) -> None:
        require("testcontainers", "docker")
        try:
            mod: Any = require("testcontainers.community.postgres", "docker")
        except BackendError:
            mod = require("testcontainers.postgres", "docker")  # testcontainers < 4.x layout
        container: Any = None
        try:
            container = mod.PostgresContainer(image, driver=None)
            container.start()
        except Exception as e:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.stop()
            raise BackendError(
                f"--idem-db postgres+docker: no Docker engine is reachable ({type(e).__name__}: {redact(str(e).strip())[:200]}); "
                "start Docker, or point idemtest at a PostgreSQL server where it may create databases: "
                "--idem-db postgresql://user@host:5432/postgres"
            ) from None
        self._container = container
        try:
            super().__init__(container.get_connection_url(driver=None), **kwargs)
        except BaseException:
            with contextlib.suppress(Exception):
                container.stop()
            raise

    def describe(self) -> str:
        return f"PostgreSQL container ({super().describe()})"

    def close(self) -> None:
        try:
            super().close()
        finally:
            with contextlib.suppress(Exception):
                self._container.stop()
