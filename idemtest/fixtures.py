"""The `idempotency` fixture: the fixture form of a check, and the session state behind both forms."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .runner import Stats

if TYPE_CHECKING:
    from .context import RunContext
    from .sandbox.base import Backend
    from .spec import Spec

SKIP_REASON = "idempotency checks run only with `pytest --idempotency` (or `idempotency = true` in the ini file)"


class Session:
    """Per pytest session: options, the shared sandbox backend, the counters."""

    def __init__(self, config: pytest.Config) -> None:
        from .plugin import option

        self.config = config
        self.enabled = bool(option(config, "idempotency"))
        self.examples = int(option(config, "idem_examples"))
        # a number given on the command line beats a per-test examples=
        self.examples_forced = config.getoption("idem_examples", None) is not None
        self.db = str(option(config, "idem_db"))
        self.replay: str | None = option(config, "idem_replay") or None
        self.replay_test: str | None = None
        root = Path(str(config.rootpath))
        self.failures_dir = root / ".idemtest" / "failures"
        self.stats = Stats()
        self.checks = 0
        self._backend: Backend | None = None
        if self.replay:
            from .report import load_failure

            self.replay_test = load_failure(self.replay).get("test")

    @property
    def dialect(self) -> str:
        """The sandbox's dialect, known without connecting to a server."""
        low = self.db.lower()
        return "postgres" if low.startswith(("postgres", "docker")) else "duckdb"

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from .sandbox import get_backend

            self._backend = get_backend(self.db)
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


class Idempotency:
    """What the `idempotency` fixture returns: `idempotency.check(spec, load)`."""

    def __init__(self, session: Session, nodeid: str) -> None:
        self._session = session
        self._nodeid = nodeid

    @property
    def stats(self) -> Stats:
        return self._session.stats

    def check(self, spec: Spec, load: Callable[[RunContext], Any], *, examples: int | None = None) -> None:
        """Run `load` under generated scenarios; fails the test with the minimal scenario."""
        from .harness import Checker, Config

        s = self._session
        if not s.enabled:
            pytest.skip(SKIP_REASON)
        if spec.dialect is not None and spec.dialect != s.dialect:
            hint = "--idem-db postgresql://user@host:port/db" if spec.dialect == "postgres" else f"--idem-db {spec.dialect}"
            pytest.skip(f"this check declares dialect={spec.dialect!r} and the sandbox is {s.dialect}; run it with {hint}")
        replay = None
        if s.replay:
            if s.replay_test and s.replay_test != self._nodeid:
                pytest.skip(f"--idem-replay {s.replay} belongs to {s.replay_test}")
            replay = s.replay
        cfg = Config(
            examples=s.examples if examples is None or s.examples_forced else examples,
            db=s.db,
            replay=replay,
            failures_dir=s.failures_dir,
            test_id=self._nodeid,
            stats=s.stats,
            backend=s.backend,
        )
        s.checks += 1
        Checker(spec, load, cfg).run()


@pytest.fixture(scope="session")
def _idemtest_session(pytestconfig: pytest.Config) -> Iterator[Session]:
    session: Session = pytestconfig.stash[SESSION_KEY]
    yield session


@pytest.fixture
def idempotency(_idemtest_session: Session, request: pytest.FixtureRequest) -> Idempotency:
    """Check a load function: `idempotency.check(spec, load)`."""
    return Idempotency(_idemtest_session, request.node.nodeid)


SESSION_KEY = pytest.StashKey[Session]()
