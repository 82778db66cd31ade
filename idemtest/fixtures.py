"""The `idempotency` fixture (the fixture form of a check) and the per-session
state behind both forms. Importing this module costs pytest only: the core is
imported when a check runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import _defaults

if TYPE_CHECKING:
    from .context import RunContext
    from .engine.model import Stats
    from .sandbox import DbChoice
    from .sandbox.base import Backend
    from .spec import Spec

SKIP_REASON = "idempotency checks run only with `pytest --idempotency` (or `idempotency = true` in the ini file)"

#: option name -> default, for options that also have an ini key of the same name
DEFAULTS: dict[str, Any] = {
    "idempotency": False,
    "idem_examples": _defaults.EXAMPLES,
    "idem_db": _defaults.DB,
    "idem_replay": None,
    "idem_shrink_seconds": _defaults.SHRINK_SECONDS,
    "idem_crash": None,  # None: each Spec(crash=...) decides
    "idem_max_seconds": _defaults.MAX_SECONDS,
}


def option(config: pytest.Config, name: str) -> Any:
    """Command line first, then the ini file, then the default."""
    value = config.getoption(name, None)
    if value is not None and value is not False:
        return value
    ini = config.getini(name)
    if ini not in (None, "", False):
        return ini
    return DEFAULTS[name]


class Session:
    """Per pytest session: options, the shared sandbox backend, the counters.

    Options are read and checked only when checks are enabled, so a bad
    `idem_*` ini value never breaks a plain `pytest` run."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.enabled = bool(option(config, "idempotency"))
        self.failures_dir = Path(str(config.rootpath)) / _defaults.FAILURES_DIR
        self.examples = _defaults.EXAMPLES
        self.shrink_seconds = _defaults.SHRINK_SECONDS
        self.max_seconds: float | None = _defaults.MAX_SECONDS
        self.max_seconds_forced = False  # given on the command line: beats a per-test max_seconds=
        self.examples_forced = False  # a number given on the command line beats a per-test examples=
        self.db = _defaults.DB
        self.replay: str | None = None
        self.replay_test: str | None = None
        self.crash: str | None = None
        self.replay_note = ""  # set when a replay runs on the engine it was saved on, not the configured one
        self.checks = 0
        self._stats: Stats | None = None
        self._backend: Backend | None = None
        self._choice: DbChoice | None = None
        self._worker_db = ""  # on an xdist controller: the sandbox its workers reported
        self._closer: Any = None  # the thread dropping a server's sandboxes (begin_close)
        if self.enabled:
            self._read_options()

    def __repr__(self) -> str:
        return f"<idemtest session: {self.checks} check(s) on {self.describe_db()}>"

    def _read_options(self) -> None:
        raw = option(self.config, "idem_examples")
        try:
            self.examples = int(raw)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"--idem-examples / idem_examples={raw!r} is not a whole number; give the number of scenarios per check, e.g. 50") from None
        if self.examples < 1:
            raise pytest.UsageError(f"--idem-examples / idem_examples={self.examples}: give at least 1 scenario per check (default {_defaults.EXAMPLES})")
        self.examples_forced = self.config.getoption("idem_examples", None) is not None
        raw = option(self.config, "idem_shrink_seconds")
        try:
            self.shrink_seconds = float(raw)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"--idem-shrink-seconds / idem_shrink_seconds={raw!r} is not a number of seconds; e.g. 10") from None
        if self.shrink_seconds < 0:
            raise pytest.UsageError(f"--idem-shrink-seconds / idem_shrink_seconds={raw!r}: give 0 (report the first failure as found) or more seconds")
        crash = option(self.config, "idem_crash")
        if crash is not None:
            crash = str(crash).strip().lower()
            if crash not in ("raise", "kill"):
                raise pytest.UsageError(
                    f"--idem-crash / idem_crash={crash!r}: use 'raise' (a crash is an exception at the statement, in process) "
                    "or 'kill' (each attempt runs in a child process killed at the crash point; POSIX only)"
                )
            self.crash = crash
        raw = option(self.config, "idem_max_seconds")
        if raw not in (None, ""):
            try:
                self.max_seconds = float(raw)
            except (TypeError, ValueError):
                raise pytest.UsageError(f"--idem-max-seconds / idem_max_seconds={raw!r} is not a number of seconds; e.g. 120") from None
            if not self.max_seconds > 0:
                raise pytest.UsageError(f"--idem-max-seconds / idem_max_seconds={raw!r}: give a time budget per check above 0 seconds, e.g. 120 (or leave it unset: unbounded)")
        self.max_seconds_forced = self.config.getoption("idem_max_seconds", None) is not None
        self.db = str(option(self.config, "idem_db"))
        from ._errors import IdemtestError
        from .sandbox import parse_db

        try:
            self._choice = parse_db(self.db)
        except IdemtestError as e:
            raise pytest.UsageError(str(e)) from None
        self.replay = option(self.config, "idem_replay") or None
        if self.replay:
            from .engine.report import load_failure

            try:
                payload = load_failure(self.replay)
            except IdemtestError as e:
                raise pytest.UsageError(f"--idem-replay: {e}") from None
            self.replay_test = payload.get("test")
            self._replay_on_saved_backend(payload.get("db"))

    def _replay_on_saved_backend(self, saved: Any) -> None:
        """A replay runs on the engine it was saved on unless --idem-db says otherwise
        on the command line (Checker.replay then warns that the engines differ)."""
        from .sandbox import parse_db, saved_db

        if not saved or self.config.getoption("idem_db", None) is not None or self._choice is None:
            return
        was = saved_db(str(saved))
        if was.dialect == self._choice.dialect:
            return
        if was.server:
            raise pytest.UsageError(
                f"--idem-replay {self.replay} was saved on PostgreSQL and the configured sandbox is {self._choice.kind}; "
                "give the server: --idem-db postgresql://user@host:port/db"
            )
        self.replay_note = f"replayed on {was.kind}, where {self.replay} was saved (the configured sandbox is {self._choice.kind}; --idem-db overrides)"
        self.db = was.text
        self._choice = parse_db(was.text)

    @property
    def stats(self) -> Stats:
        if self._stats is None:
            from .engine.model import Stats

            self._stats = Stats()
        return self._stats

    def export(self) -> dict[str, Any]:
        """The counters as plain data, for an xdist worker to send to the controller."""
        from dataclasses import asdict

        return {"checks": self.checks, "stats": asdict(self.stats), "db": self.describe_db()}

    def absorb(self, data: dict[str, Any]) -> None:
        """Add a worker's counters to this (controller) session's."""
        self.checks += int(data.get("checks", 0))
        for k, v in dict(data.get("stats", {})).items():
            if hasattr(self.stats, k):
                setattr(self.stats, k, getattr(self.stats, k) + v)
        self._worker_db = str(data.get("db") or "")

    @property
    def dialect(self) -> str:
        """The sandbox's dialect, known without connecting to a server."""
        return self._choice.dialect if self._choice is not None else "duckdb"

    def describe_db(self) -> str:
        if self._worker_db:
            return self._worker_db
        if self._backend is not None and self._choice is not None and self._choice.server:
            return self._backend.describe()
        return str(self._choice) if self._choice is not None else self.db

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from .sandbox import get_backend

            self._backend = get_backend(self._choice or self.db)
        return self._backend

    def begin_close(self) -> None:
        """Start dropping a server's sandboxes now, in the background: pytest prints its
        summary meanwhile, and close() waits only for what is left (seconds of DROP DATABASE
        on a busy server would otherwise follow the summary, or Ctrl-C)."""
        if self._backend is None or self._closer is not None or self._choice is None or self._choice.dialect != "postgres":
            return
        import threading

        self._closer = threading.Thread(target=self._backend.close, name="idemtest close", daemon=True)
        self._closer.start()

    def close(self) -> None:
        if self._closer is not None:
            self._closer.join()
            self._closer = None
        if self._backend is not None:
            self._backend.close()  # nothing left to do when begin_close ran it
            self._backend = None


class Idempotency:
    """What the `idempotency` fixture returns: `idempotency.check(spec, load)`."""

    def __init__(self, session: Session, nodeid: str, base_dir: Path | None) -> None:
        self._session = session
        self._nodeid = nodeid
        self._base_dir = base_dir

    @property
    def stats(self) -> Stats:
        return self._session.stats

    @property
    def enabled(self) -> bool:
        """Whether checks run in this session (`--idempotency`); adapters skip costly preparation otherwise."""
        return self._session.enabled

    @property
    def dialect(self) -> str:
        """The sandbox's dialect: 'duckdb' or 'postgres'."""
        return self._session.dialect

    def check(
        self, spec: Spec, load: Callable[[RunContext], Any], *, examples: int | None = None, base_dir: Path | None = None,
        max_seconds: float | None = None, systematic_max: int | None = None, backend: Backend | None = None,
    ) -> None:
        """Run `load` under generated scenarios; fails the test with the minimal scenario.

        A relative `Spec(setup="x.sql")` is looked for in the working directory,
        then next to the test module (or in `base_dir`). `systematic_max` thins the
        single-fault pass to that many scenarios (for loads whose runs cost seconds).
        `backend`: sandboxes from this backend instead of the session's (an adapter
        that brings its own engine, as the Spark one does)."""
        from ._errors import MissingExtraError
        from .engine.search import Checker, Config
        from .sandbox import option_for

        s = self._session
        if not s.enabled:
            pytest.skip(SKIP_REASON)
        replay = None
        if s.replay:
            if s.replay_test and s.replay_test != self._nodeid:
                pytest.skip(f"--idem-replay {s.replay} belongs to {s.replay_test}")
            replay = s.replay
        if spec.dialect is not None and spec.dialect != s.dialect:
            reason = f"this check declares dialect={spec.dialect!r} and the sandbox is {s.dialect}; run it with {option_for(spec.dialect)}"
            if replay is not None:
                # a replay that cannot run must not pass by skipping
                pytest.fail(f"--idem-replay {replay} cannot replay here: {reason}", pytrace=False)
            pytest.skip(reason)
        cfg = Config(
            examples=s.examples if examples is None or s.examples_forced else examples,
            db=s.db if backend is None else backend.name,
            replay=replay,
            failures_dir=s.failures_dir,
            test_id=self._nodeid,
            stats=s.stats,
            backend=s.backend if backend is None else backend,
            base_dir=base_dir or self._base_dir,
            shrink_seconds=s.shrink_seconds,
            crash=s.crash,
            max_seconds=s.max_seconds if max_seconds is None or s.max_seconds_forced else max_seconds,
            systematic_max=systematic_max,
        )
        s.checks += 1
        checker = None
        try:
            checker = Checker(spec, load, cfg)
            checker.run()
        except MissingExtraError as e:
            # a driver the load needs is not installed here: say which extra, as importorskip would
            pytest.skip(str(e))
        finally:
            if checker is not None:
                checker.close()  # the session's backend stays; a kill-mode file backend goes


@pytest.fixture(scope="session")
def _idemtest_session(pytestconfig: pytest.Config) -> Iterator[Session]:
    session: Session = pytestconfig.stash[SESSION_KEY]
    yield session


@pytest.fixture
def idempotency(_idemtest_session: Session, request: pytest.FixtureRequest) -> Idempotency:
    """Check a load function: `idempotency.check(spec, load)`."""
    return Idempotency(_idemtest_session, request.node.nodeid, Path(str(request.path)).parent)


SESSION_KEY = pytest.StashKey[Session]()
