"""The `psycopg.connect` / `psycopg2.connect` patches, and the registry they consult.

While a PostgresBackend is open, both drivers' `connect` are patched: a connect
to a registered sandbox database (same database, port and host) returns an
instrumented connection bound to the run's controller. During a run, any other
DSN is refused (ForeignDatabaseError) unless Spec(allow_foreign=...) names it;
outside a run (test code, fixtures) other DSNs pass through untouched. The last backend to close restores the originals.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from ..._extras import require
from ...instrument import Controller
from ..base import refuse_foreign
from .dsn import _host_key, make_url, parse_dsn


class _RegisteredSandbox(Protocol):
    """What the patches (and the pool) need of a PostgresSandbox; sandbox.py imports this module."""

    backend_ref: Any  # the PostgresBackend that created it

    def connect(self, ctl: Controller | None, kind: str | None = "connect", *, driver: str = "psycopg", **kwargs: Any) -> Any: ...

    def close_connections(self) -> None: ...


_registry: dict[str, _RegisteredSandbox] = {}  # sandbox database name -> sandbox
_registry_lock = threading.Lock()
_backends: list[object] = []  # the open PostgresBackends: the patches stay while there is one
_patch_lock = threading.Lock()
_orig_pg3_connect: Any = None
_orig_pg2_connect: Any = None


def _sandbox_for(params: dict[str, str]) -> _RegisteredSandbox | None:
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


def _same_database(a: dict[str, str], b: dict[str, str]) -> bool:
    if (a.get("port") or "5432") != (b.get("port") or "5432") or a.get("dbname", "") != b.get("dbname", ""):
        return False
    ha, hb = _host_key(a.get("host")), _host_key(b.get("host"))
    return ha == hb or "local" in (ha, hb)


def _check_foreign(params: dict[str, str] | None) -> None:
    """During a run (a controller on this thread), a connect that does not reach a
    sandbox is refused unless the spec allows that database (Spec.allow_foreign).
    The harness's own connections never come here: they use the unpatched classes."""
    from ...instrument import current

    ctl = current()
    if ctl is None or params is None:
        return  # outside a run; or a DSN libpq cannot parse, which the driver reports
    for entry in ctl.allow_foreign:
        try:
            if _same_database(params, parse_dsn(entry)):
                return
        except Exception:
            continue  # a DuckDB path, or not a DSN
    shown = {k: v for k, v in params.items() if k in ("host", "port", "user", "dbname")}
    refuse_foreign(ctl, f"the PostgreSQL database {make_url(shown)}", make_url({k: v for k, v in shown.items() if k != "user"}))


def _patched_pg3_connect(conninfo: str = "", **kwargs: Any) -> Any:
    params: dict[str, str] | None = None
    try:
        params = parse_dsn(conninfo, **{k: v for k, v in kwargs.items() if k not in _PG3_NON_CONNINFO})
        sb = _sandbox_for(params)
    except Exception:
        sb = None  # not parseable here: let psycopg report it
    if sb is None:
        _check_foreign(params)
        return _orig_pg3_connect(conninfo, **kwargs)
    from ...instrument import current

    return sb.connect(current(), kind="connect", driver="psycopg", conninfo=conninfo, **kwargs)


_PG3_NON_CONNINFO = frozenset({"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory"})


def _patched_pg2_connect(dsn: str | None = None, connection_factory: Any = None, cursor_factory: Any = None, **kwargs: Any) -> Any:
    params: dict[str, str] | None = None
    try:
        params = parse_dsn(dsn or "", **{k: v for k, v in kwargs.items() if k != "async"})
        sb = _sandbox_for(params)
    except Exception:
        sb = None
    if sb is None:
        _check_foreign(params)
        return _orig_pg2_connect(dsn, connection_factory, cursor_factory, **kwargs)
    from ...instrument import current

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
