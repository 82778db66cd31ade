"""The pytest plugin: wires options, the marker, fixtures and reporting to the core."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from .fixtures import SESSION_KEY, SKIP_REASON, Session, _idemtest_session, idempotency

__all__ = ["_idemtest_session", "idempotency"]

_DEFAULTS: dict[str, Any] = {"idempotency": False, "idem_examples": 50, "idem_db": "duckdb", "idem_replay": None}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("idemtest", "idempotency checks of data-pipeline loads")
    group.addoption("--idempotency", action="store_true", default=None, help="run @idemtest.check tests and idempotency.check() calls (skipped otherwise)")
    group.addoption("--idem-examples", type=int, default=None, metavar="N", help="generated scenarios per check (default 50)")
    group.addoption("--idem-db", default=None, metavar="DB", help="sandbox: duckdb (default), duckdb-file, postgresql://user@host:port/db, postgres+docker")
    group.addoption("--idem-replay", default=None, metavar="FILE", help="replay a saved failure from .idemtest/failures/ exactly")
    parser.addini("idempotency", "run idempotency checks without --idempotency", type="bool", default=False)
    parser.addini("idem_examples", "generated scenarios per check", default="50")
    parser.addini("idem_db", "sandbox database (see --idem-db)", default="duckdb")
    parser.addini("idem_replay", "saved failure to replay", default="")


def option(config: pytest.Config, name: str) -> Any:
    """Command line first, then the ini file, then the default."""
    value = config.getoption(name, None)
    if value is not None and value is not False:
        return value
    ini = config.getini(name)
    if ini not in (None, "", False):
        return ini
    return _DEFAULTS[name]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "idempotency: an idemtest check; runs only with --idempotency")
    config.stash[SESSION_KEY] = Session(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    session = config.stash[SESSION_KEY]
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        fn = getattr(item, "obj", None)
        if getattr(fn, "_idemtest_spec", None) is not None:
            item.add_marker(pytest.mark.idempotency)
            if not session.enabled:
                item.add_marker(skip)
    if session.replay and session.replay_test:
        # replaying runs just the test that saved the file
        keep = [i for i in items if i.nodeid == session.replay_test]
        if keep:
            config.hook.pytest_deselected(items=[i for i in items if i not in keep])
            items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    from ._errors import IdemtestError

    if call.excinfo is not None and isinstance(call.excinfo.value, IdemtestError) and report.failed:
        # the report is the message: idemtest's own frames would only hide it
        report.longrepr = str(call.excinfo.value)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or not session.checks:
        return
    s = session.stats
    tr = terminalreporter
    tr.section("idemtest")
    tr.write_line(
        f"{session.checks} check(s) on {session.db if '://' not in session.db else session.backend.describe()}: "
        f"{s.scenarios} scenarios, {s.runs} runs, {s.crashes} crashes injected, {s.retries} retries, "
        f"{s.duplicates} duplicate runs, {s.backfills} backfill runs, {s.catch_up} catch-up runs, "
        f"{s.interleavings} interleavings ({s.blocked} lock waits), {s.late_rows} late rows"
    )
    if s.failures:
        tr.write_line(f"{s.failures} failing scenario(s) saved under {session.failures_dir}")
