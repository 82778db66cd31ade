"""PostgresBackend: the server side of PostgreSQL sandboxes.

The admin connection to the DSN's own database only issues CREATE/DROP
DATABASE. Start-up checks the user may create databases and sweeps leftovers
(names.is_stale). The spec's setup DDL runs once, in a template database keyed
by a hash of the setup text; each sandbox is `CREATE DATABASE … TEMPLATE` of
it. A background thread keeps a couple of clones ready, three more drop used
sandboxes; close (also at exit) drops every database this backend created.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import queue
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from ..._errors import BackendError, IdemtestError
from ..._extras import require
from ..base import Backend, resolve_setup_text
from .drivers import _plain_connect
from .dsn import _scrub, parse_dsn, redact
from .names import LEASE, is_stale, lease, name_prefix
from .patches import (
    _backends,
    _install_patches,
    _patch_lock,
    _registry,
    _registry_lock,
    _uninstall_patches,
)
from .sandbox import PostgresSandbox

if TYPE_CHECKING:
    from ...spec import Spec


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
        self._jobs: queue.Queue[str | None] = queue.Queue()  # setup keys whose ready clones to refill
        self._worker: threading.Thread | None = None
        self._worker_conn: Any = None  # the worker's connection, so close can cancel its job in flight
        # used sandboxes are dropped by a few threads at once: a DROP DATABASE waits for a
        # checkpoint (~0.7 s here) and concurrent drops share one, so three in flight cost
        # about what one costs alone (measured here: four drops 2.8 s in turn, 0.87 s at once)
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._droppers: list[threading.Thread] = []
        self._background = background
        self._closed = False
        self._lease = lease(self.prefix)
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
            # the admin connection is this backend's lease: while it is open, no sweep drops our databases
            return _plain_connect(self.dsn, autocommit=True, connect_timeout=10, application_name=self._lease)
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
        when their owner is provably dead: no lease, and its pid gone (this host)."""
        leases = {r[0] for r in self.admin.execute("SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s", [LEASE + "%"]).fetchall()}
        rows = self.admin.execute(
            "SELECT d.datname, (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname) "
            "FROM pg_database d WHERE d.datname LIKE 'idemtest\\_%' AND NOT d.datistemplate"
        ).fetchall()
        dropped = []
        for name, connected in rows:
            if connected or not is_stale(name, leases):
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
        # per-database defaults reach every session, whatever driver user code uses;
        # UTC keeps now()::date, timestamptz output and the SQL clock's literals in the
        # run's (UTC) time, whatever the server's own zone
        self._ddl(
            f"ALTER DATABASE \"{name}\" SET lock_timeout = '{int(self.lock_timeout_ms)}ms'; "
            f"ALTER DATABASE \"{name}\" SET statement_timeout = '{int(self.statement_timeout_ms)}ms'; "
            f"ALTER DATABASE \"{name}\" SET timezone = 'UTC'",
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

    #: used sandboxes waiting to be dropped before the harness drops one itself:
    #: without this bound a busy server falls behind and the run's exit waits minutes
    MAX_PENDING_DROPS = 6
    #: threads dropping used sandboxes (their drops share checkpoints)
    DROP_WORKERS = 3

    def release(self, name: str) -> None:
        """A used sandbox: dropped in the background, or now when the background is behind."""
        if self._background and not self._closed and self._drops.qsize() < self.MAX_PENDING_DROPS:
            self._start_droppers()
            self._drops.put(name)
        else:
            with contextlib.suppress(Exception):
                self._drop_db(name)

    def _start_droppers(self) -> None:
        with self._lock:
            while len(self._droppers) < self.DROP_WORKERS:
                t = threading.Thread(target=self._drop_work, name="idemtest postgres drops", daemon=True)
                self._droppers.append(t)
                t.start()

    def _drop_work(self) -> None:
        conn = None
        try:
            while True:
                name = self._drops.get()
                if name is None:
                    return
                with contextlib.suppress(Exception):  # close() drops whatever is left
                    if conn is None or conn.closed:
                        conn = _plain_connect(self.dsn, autocommit=True, application_name=self._lease)
                    self._drop_db(name, conn)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _refill(self, key: str) -> None:
        if not self._background or self.pool_size <= 0:
            return
        self._start_worker()
        self._jobs.put(key)

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
                    conn = self._worker_conn = _plain_connect(self.dsn, autocommit=True)
                while not self._closed:  # refill the ready clones of setup key `job`
                    with self._lock:
                        template = self._templates.get(job)
                        have = len(self._ready.get(job, ()))
                    if template is None or have >= self.pool_size:
                        break
                    name = self._new_name("s")
                    self._create_db(name, template, conn)
                    with self._lock:
                        if self._closed:
                            break
                        self._ready.setdefault(job, []).append(name)
            except Exception:
                # the harness creates synchronously when the pool is empty; close() drops leftovers
                pass
            finally:
                self._jobs.task_done()
                if job is None and conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()

    def _listed(self) -> set[str]:
        """Databases on the server under this backend's prefix."""
        try:
            conn = _plain_connect(self.dsn, autocommit=True, connect_timeout=5, application_name=self._lease)
        except Exception:
            return set()
        try:
            rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [self.prefix]).fetchall()
            return {r[0] for r in rows}
        except Exception:
            return set()
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _drop_all(self, names: list[str], workers: int = 8, budget_s: float = 20.0) -> None:
        """Drop `names` on a few connections at once, for at most `budget_s`: what is
        left then is swept by the next run (its owner's pid is gone by then)."""
        if not names:
            return
        todo: queue.Queue[str] = queue.Queue()
        for n in names:
            todo.put(n)
        deadline = time.monotonic() + budget_s

        def drain() -> None:
            try:
                conn = _plain_connect(self.dsn, autocommit=True, connect_timeout=5, application_name=self._lease)
            except Exception:
                return
            try:
                while time.monotonic() < deadline:
                    try:
                        name = todo.get_nowait()
                    except queue.Empty:
                        return
                    with contextlib.suppress(Exception):
                        self._drop_db(name, conn)
            finally:
                with contextlib.suppress(Exception):
                    conn.close()

        threads = [threading.Thread(target=drain, name="idemtest postgres cleanup", daemon=True) for _ in range(min(workers, len(names)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 1.0)

    def close(self) -> None:
        """Drop every database this backend created (sandboxes, pool, templates)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        if self._worker is not None:
            # pending drops are done below, in parallel: the worker only finishes its current job
            with contextlib.suppress(queue.Empty):
                while True:
                    self._jobs.get_nowait()
                    self._jobs.task_done()
            self._jobs.put(None)
            conn = self._worker_conn
            if conn is not None:
                # a clone for the pool in flight would hold the exit for a second or more:
                # cancelled, it leaves nothing (CREATE DATABASE is atomic); a drop cut short
                # is done again below, since the server is listed after the worker stops
                with contextlib.suppress(Exception):
                    conn.cancel_safe(timeout=2.0)
            self._worker.join(10)
        if self._droppers:
            # queued drops are done below, in parallel; each dropper ends its drop in flight
            with contextlib.suppress(queue.Empty):
                while True:
                    self._drops.get_nowait()
            for _ in self._droppers:
                self._drops.put(None)
            until = time.monotonic() + 2.0  # the exit must stay prompt: _drop_all below finishes their work
            for t in self._droppers:
                t.join(max(0.0, until - time.monotonic()))
        with _registry_lock:
            for dbname, sb in list(_registry.items()):
                if sb.backend_ref is self:
                    sb.close_connections()
                    del _registry[dbname]
        # what the server holds under our prefix too: a CREATE interrupted by Ctrl-C may
        # still complete on the server after the interrupt reached us
        self._drop_all(sorted(set(self._created) | self._listed()))
        for _ in range(3):
            left = self._listed()
            if not left:
                break
            time.sleep(0.3)
            self._drop_all(sorted(left), budget_s=5.0)
        with contextlib.suppress(Exception):
            self.admin.close()
        with _patch_lock:
            if self in _backends:
                _backends.remove(self)
        _uninstall_patches()
