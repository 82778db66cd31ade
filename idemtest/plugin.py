"""The pytest plugin: wires options, the marker, fixtures and reporting to the core.

Loaded through the `pytest11` entry point on every pytest run, so it imports
only pytest and `fixtures`; the engine is imported when a check runs."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from .fixtures import (
    DEFAULTS,
    SESSION_KEY,
    SKIP_REASON,
    Session,
    _idemtest_session,
    idempotency,
    option,
)

__all__ = ["_idemtest_session", "idempotency", "option"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("idemtest", "idempotency checks of data-pipeline loads")
    group.addoption("--idempotency", action="store_true", default=None, help="run @idemtest.check tests and idempotency.check() calls (skipped otherwise)")
    group.addoption("--idem-examples", default=None, metavar="N", help=f"generated scenarios per check (default {DEFAULTS['idem_examples']})")
    group.addoption("--idem-db", default=None, metavar="DB", help="sandbox: duckdb (default), duckdb-file, postgresql://user@host:port/db, postgres+docker")
    group.addoption("--idem-replay", default=None, metavar="FILE", help="replay a saved failure from .idemtest/failures/ exactly")
    group.addoption("--idem-shrink-seconds", default=None, metavar="S", help=f"time spent shrinking a failure before reporting it (default {DEFAULTS['idem_shrink_seconds']:g})")
    group.addoption(
        "--idem-crash", default=None, choices=("raise", "kill"),
        help="how an injected crash ends an attempt: raise (an exception, in process) or kill (each attempt in a child process ended with os._exit; POSIX only); overrides Spec(crash=...)",
    )
    group.addoption(
        "--idem-max-seconds", default=None, metavar="S",
        help="time budget per check: the search stops after S seconds and the summary says the check was cut short (default: unbounded)",
    )
    parser.addini("idempotency", "run idempotency checks without --idempotency", type="bool", default=False)
    parser.addini("idem_examples", "generated scenarios per check", default=str(DEFAULTS["idem_examples"]))
    parser.addini("idem_db", "sandbox database (see --idem-db)", default=DEFAULTS["idem_db"])
    parser.addini("idem_replay", "saved failure to replay", default="")
    parser.addini("idem_crash", "crash mode for every check: raise or kill (see --idem-crash)", default="")
    parser.addini("idem_shrink_seconds", "time spent shrinking a failure", default=str(DEFAULTS["idem_shrink_seconds"]))
    parser.addini("idem_max_seconds", "time budget per check (see --idem-max-seconds)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "idempotency: an idemtest check; runs only with --idempotency")
    session = Session(config)
    config.stash[SESSION_KEY] = session
    if session.enabled:
        _sigterm_ends_the_session()
        if not config.option.fulltrace:
            config.pluginmanager.register(_QuickInterrupt(), "idemtest-quick-interrupt")


class _QuickInterrupt:
    """On Ctrl-C pytest renders the whole traceback, every frame with its arguments, only
    to print its last line (without --full-trace); through Hypothesis and the runner that
    took seconds before the session could drop its sandboxes. Keep just that last frame."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if not isinstance(excinfo.value, KeyboardInterrupt):
            return  # pytest.exit() comes here too: its frames are hidden, leave them be
        try:
            visible = excinfo.traceback.filter(excinfo)  # the frames pytest would show
        except Exception:
            return
        if len(visible) > 1:
            excinfo.traceback = visible[-1:]


def _sigterm_ends_the_session() -> None:
    """SIGTERM (a CI runner cancelling the job) ends pytest as Ctrl-C does, so the
    session still drops its sandboxes; by default it would kill the process at once.
    Both also leave a flag (sandbox/base.py `_stop`): DuckDB turns the interrupt into an
    exception an `except Exception` can drop, and the next scenario boundary re-raises it."""
    import signal
    import threading

    from .sandbox.base import clear_stop, note_stop

    if threading.current_thread() is not threading.main_thread():
        return
    clear_stop()

    def interrupt(signum: int, frame: Any) -> None:
        note_stop()
        raise KeyboardInterrupt("SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt

    for sig, default in ((signal.SIGTERM, signal.SIG_DFL), (signal.SIGINT, signal.default_int_handler)):
        if signal.getsignal(sig) is default:  # a handler the user installed stays theirs
            signal.signal(sig, interrupt)
            _restore.append(lambda sig=sig, default=default: signal.signal(sig, default))


_restore: list[Any] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    # an xdist worker hands its counters to the controller, which prints the summary
    state = session.config.stash.get(SESSION_KEY, None)
    out = getattr(session.config, "workeroutput", None)
    if state is not None and out is not None and state.checks:
        out["idemtest"] = state.export()
    if state is not None:
        # no check runs after this: drop the sandboxes while pytest prints its summary
        state.begin_close()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    state = node.config.stash.get(SESSION_KEY, None)
    got = getattr(node, "workeroutput", {}).get("idemtest")
    if state is not None and got:
        state.absorb(got)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()
    while _restore:
        _restore.pop()()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from .decorator import definition

    session = config.stash[SESSION_KEY]
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if definition(getattr(item, "obj", None)) is not None:
            item.add_marker(pytest.mark.idempotency)
            if not session.enabled:
                item.add_marker(skip)
    if session.replay and session.replay_test:
        # replaying runs just the test that saved the file
        keep = [i for i in items if i.nodeid == session.replay_test]
        if not keep:
            # a replay that cannot replay must not pass by skipping everything
            pytest.exit(
                f"--idem-replay {session.replay} was saved by {session.replay_test}, which is not among the collected tests; "
                f"run it from the rootdir it was saved in: pytest --idempotency --idem-replay {session.replay} {session.replay_test}",
                returncode=pytest.ExitCode.USAGE_ERROR,
            )
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or not report.failed:
        return
    from ._errors import IdemtestError

    if isinstance(call.excinfo.value, IdemtestError):
        # the report is the message: idemtest's own frames would only hide it
        report.longrepr = str(call.excinfo.value)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or not session.checks:
        return
    s = session.stats
    tr = terminalreporter
    tr.section("idemtest")
    replayed = s.scenarios - s.systematic - s.generated - s.reduced
    reduced = f", {s.reduced} re-runs reducing failures" if s.reduced else ""
    tr.write_line(
        f"{session.checks} check(s) on {session.describe_db()}: "
        f"{s.systematic} systematic + {s.generated} generated scenarios{f' + {replayed} replayed' if replayed > 0 else ''}, {s.runs} runs, {s.crashes} crashes injected, {s.retries} retries, "
        f"{s.duplicates} duplicate runs, {s.backfills} backfill runs, {s.catch_up} catch-up runs, "
        f"{s.interleavings} interleavings ({s.blocked} lock waits), {s.late_rows} late rows{reduced}"
    )
    if session.replay_note:
        tr.write_line(session.replay_note)
    if s.systematic:
        tr.write_line(s.coverage_line())
    if s.kill_checks:
        tr.write_line(f"crash='kill': {s.kill_checks} check(s) ran each attempt in a child process killed at its crash point; concurrent runs are not played in this mode")
    if config.getoption("verbose", 0) > 0:
        # what each check's systematic pass covered, one short line per check
        for line in s.coverage:
            tr.write_line(f"  {line}")
    for line in s.cut_short:
        # never silently a full pass: a check stopped by its time budget says so
        tr.write_line(f"CUT SHORT (not a full pass) {line}")
    if s.failures:
        tr.write_line(f"{s.failures} failing scenario(s) saved under {session.failures_dir}")
