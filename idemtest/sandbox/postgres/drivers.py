"""Instrumented psycopg 3 / psycopg2 connections: every statement is a boundary.

The connections are real subclasses of the drivers' connection classes (so
`isinstance`, SQLAlchemy and pandas keep working); their cursors call
`Controller.boundary` around every statement, and COMMIT / ROLLBACK are
boundaries too. The classes are built on first use, so the drivers load lazily.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from ..._errors import InjectedCrash
from ..._extras import require
from ...engine.clock import sql_now
from ...instrument import Controller, abbreviate, live_runs, note_unseen
from ..sqlclock import clocked
from .sqlsplit import split_sql


def _sql_text(query: Any, conn: Any = None) -> str:
    if isinstance(query, bytes):
        return query.decode(errors="replace")
    if isinstance(query, str):
        return query
    with contextlib.suppress(Exception):
        return str(query.as_string(conn))  # psycopg.sql.Composed
    return str(query)


def _clocked(query: Any, ctx: Any = None) -> Any:
    """The query to send: SQL clock calls replaced by the run's simulated time
    (`sandbox.sqlclock`); the query object itself when there is nothing to replace."""
    if sql_now() is None:
        return query  # no run is timing this statement
    if isinstance(query, str):
        return clocked(query, "postgres")
    text = _sql_text(query, ctx)  # bytes or psycopg.sql.Composed
    sent = clocked(text, "postgres")
    return query if sent is text else sent


def _outside(kind: str, text: Any) -> None:
    """A statement on a sandbox connection opened outside any run, while a run is live:
    never crashed, so the live run's check fails on it."""
    if live_runs():
        note_unseen(f"a PostgreSQL connection to the sandbox opened outside the run ({kind}: {abbreviate(_sql_text(text), 80)})")


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
                _outside("execute", query)
                return super().execute(_clocked(query, conn), params, **kw)  # type: ignore[misc]
            if params is None and isinstance(query, str) and ";" in query and not conn.autocommit:
                # inside a transaction a script is several statements a crash can fall
                # between; in autocommit mode PostgreSQL runs it atomically, so keep it whole
                stmts = split_sql(query)
                if len(stmts) > 1:
                    for s in stmts:
                        b = ctl.boundary("execute", s)
                        super().execute(_clocked(s), **kw)  # type: ignore[misc]
                        ctl.done(b)
                    return self
            b = ctl.boundary("execute", _sql_text(query, conn))
            out = super().execute(_clocked(query, conn), params, **kw)  # type: ignore[misc]
            ctl.done(b)
            return out

        def executemany(self, query: Any, params_seq: Any, **kw: Any) -> Any:
            conn = self.connection  # type: ignore[attr-defined]
            ctl: Controller | None = getattr(conn, "_idem_ctl", None)
            if ctl is None:
                _outside("executemany", query)
                return super().executemany(_clocked(query, conn), params_seq, **kw)  # type: ignore[misc]
            b = ctl.boundary("executemany", _sql_text(query, conn))
            out = super().executemany(_clocked(query, conn), params_seq, **kw)  # type: ignore[misc]
            ctl.done(b)
            return out

        @contextlib.contextmanager
        def copy(self, statement: Any, params: Any = None, **kw: Any) -> Iterator[Any]:
            conn = self.connection  # type: ignore[attr-defined]
            ctl: Controller | None = getattr(conn, "_idem_ctl", None)
            if ctl is None:
                with super().copy(_clocked(statement, conn), params, **kw) as cp:  # type: ignore[misc]
                    yield cp
                return
            # the COPY is one statement: it starts at entry and completes at exit
            b = ctl.boundary("copy", _sql_text(statement, conn))
            with super().copy(_clocked(statement, conn), params, **kw) as cp:  # type: ignore[misc]
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
                _outside(kind, text)
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
                        self._stmt("execute", s, super().execute, _clocked(s))  # type: ignore[misc]
                    return None
            return self._stmt("execute", query, super().execute, _clocked(query, self), vars)  # type: ignore[misc]

        def executemany(self, query: Any, vars_list: Any) -> Any:
            return self._stmt("executemany", query, super().executemany, _clocked(query, self), vars_list)  # type: ignore[misc]

        def callproc(self, procname: Any, parameters: Any = None) -> Any:
            return self._stmt("execute", f"CALL {procname}", super().callproc, procname, parameters)  # type: ignore[misc]

        def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> Any:
            return self._stmt("copy", sql, super().copy_expert, _clocked(sql, self), file, size)  # type: ignore[misc]

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


# --- plain connections (the harness's own: not instrumented) ------------------------
def _plain_connect(conninfo: str, **kwargs: Any) -> Any:
    psycopg = require("psycopg", "postgres")
    return psycopg.Connection.connect(conninfo, **kwargs)


# --- transactions a run leaves open ------------------------------------------------
_INTRANS, _INERROR = 2, 3  # libpq's PQtransactionStatus, as both drivers report it


def open_transaction(conn: Any) -> str | None:
    """What is open on a psycopg 3 / psycopg2 connection when its run ends: 'a transaction
    that wrote', 'a failed transaction', or None (idle, closed, or a transaction that
    only read: its rollback loses nothing, e.g. after a lone SELECT outside autocommit)."""
    if conn.closed:
        return None
    status = int(conn.info.transaction_status)
    if status == _INERROR:
        return "a failed transaction (an error inside it was caught, and it was never rolled back)"
    if status != _INTRANS:
        return None
    # a plain cursor of the driver's base class: not a statement of the run
    if hasattr(conn, "pgconn"):
        psycopg = require("psycopg", "postgres")
        cur = psycopg.Cursor(conn)
    else:
        import psycopg2.extensions as ext

        cur = ext.cursor(conn)
    try:
        # an xid is assigned at the transaction's first write (PostgreSQL 10+)
        cur.execute("SELECT txid_current_if_assigned() IS NOT NULL")
        row = cur.fetchone()
    finally:
        cur.close()
    return "a transaction that wrote and was never committed" if row and row[0] else None
