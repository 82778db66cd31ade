"""One exception tree: every error idemtest raises on purpose derives from IdemtestError.

    IdemtestError
    ├── ConfigurationError          the declaration or the setup is wrong: fix it, then re-run
    │   ├── SpecError (ValueError)  the Spec contradicts itself or the sandbox schema
    │   ├── SetupError              the setup DDL fails in a fresh sandbox
    │   ├── BackendError            a sandbox cannot be created (unreachable server, no Docker)
    │   │   └── MissingExtraError   an optional dependency is missing; names the pip command
    │   ├── ReplayError             a saved failure cannot be replayed
    │   ├── UninstrumentedError     statements reached the sandbox on a path idemtest cannot see or crash
    │   ├── DbtProjectError         a dbt project or model cannot be checked (not found, not incremental, dbt's own error)
    │   └── AirflowDagError         an Airflow DAG cannot be checked (not importable, unknown task, unsupported operator, no schedule)
    ├── LoadError                   the load fails or hangs even without injected faults
    │   ├── ForeignDatabaseError    the load connected to a database other than the sandbox
    │   └── OpenTransactionError    the load ended leaving a transaction open (never committed)
    ├── CheckTimedOut               pytest-timeout (or another runner's timeout) ended the check
    └── CheckFailure                a check's verdict; carries .prop, .report, .diffs
        ├── IdempotencyViolation    P1-P5 broken under a generated scenario
        └── NonDeterminismError     P0: two clean runs differ, idempotency cannot be judged

    IdemtestWarning (UserWarning)   the check ran but may not see much (every target empty)

Internal control flow (never seen by users) lives here too: InjectedCrash (a
BaseException, so `except Exception` in user code cannot swallow the simulated
kill), ScenarioFailed, TargetUnreadable, and the two signals the search passes through Hypothesis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine.model import Boundary, Finding


class IdemtestError(Exception):
    """Root of every error idemtest raises on purpose."""


# --- configuration ------------------------------------------------------------------


class ConfigurationError(IdemtestError):
    """Something declared or configured is wrong; the message names the fix."""


class SpecError(ConfigurationError, ValueError):
    """The declared Spec is inconsistent with itself or with the sandbox schema."""


class SetupError(ConfigurationError):
    """The spec's setup DDL failed in a fresh sandbox."""


class BackendError(ConfigurationError):
    """A sandbox backend cannot be created (unreachable server, no Docker engine)."""


class MissingExtraError(BackendError):
    """An optional dependency is not installed; the message names the pip command."""

    def __init__(self, message: str, *, extra: str = "", module: str = "") -> None:
        super().__init__(message)
        self.extra = extra
        self.module = module


class ReplayError(ConfigurationError):
    """A saved failure file cannot be replayed."""


class UninstrumentedError(ConfigurationError):
    """Statements reached the sandbox on a path idemtest did not instrument (a
    connection opened outside the run, a driver it does not patch, a thread it
    cannot attribute): those statements were never crashed, so a pass would lie."""


class AirflowDagError(ConfigurationError):
    """An Airflow DAG cannot be checked: its file does not import, a task id is unknown,
    an operator kind is not supported, it has no schedule, or a conn_id is not mapped."""


class DbtProjectError(ConfigurationError):
    """A dbt project or model cannot be checked: the project or model is not found,
    the model is not incremental, or dbt cannot parse it (dbt's own message)."""


# --- the load's own failure ----------------------------------------------------------


class LoadError(IdemtestError):
    """The load function fails or hangs even without injected faults."""


class ForeignDatabaseError(LoadError):
    """During a run the load opened a connection to a database that is not the
    sandbox (a hard-coded DSN or file): its writes would land outside the check,
    which would then pass whatever they do. Raised before connecting."""


class OpenTransactionError(LoadError):
    """A run ended with a transaction still open on one of its connections: in
    production the process exit rolls it back and nothing the load wrote lands."""


# --- verdicts ------------------------------------------------------------------------


class CheckFailure(IdemtestError):
    """A check's verdict against the pipeline: `prop` names the property
    (P0-P5), `report` is the full text shown to the user, `diffs` the row diffs."""

    prop: str = ""

    def __init__(self, report: str, *, prop: str, finding: Finding | None = None) -> None:
        super().__init__(report)
        self.report = report
        self.prop = prop
        self.finding = finding

    @property
    def diffs(self) -> list[Any]:
        return list(getattr(self.finding, "diffs", None) or [])


class IdempotencyViolation(CheckFailure):
    """The pipeline broke a property (P1-P5) under a generated scenario (P5: or in the clean run itself).

    `scenario` is the minimal failing scenario, `attempts` what each run did,
    `saved` the JSON file that replays it."""

    def __init__(
        self,
        report: str,
        *,
        prop: str,
        finding: Finding | None = None,
        scenario: Any = None,
        attempts: Any = None,
        saved: str | None = None,
    ) -> None:
        super().__init__(report, prop=prop, finding=finding)
        self.scenario = scenario
        self.attempts = attempts
        self.saved = saved


class NonDeterminismError(CheckFailure):
    """P0: two clean runs on the same data differ, so idempotency cannot be judged.
    `columns` maps each target to the columns whose values differed."""

    def __init__(self, report: str, *, columns: dict[str, list[str]] | None = None, finding: Finding | None = None) -> None:
        super().__init__(report, prop="P0", finding=finding)
        self.columns = columns or {}


class CheckTimedOut(IdemtestError):
    """A test-runner timeout (pytest-timeout's `--timeout`) ended the check before
    it finished: a clear note of how far it got, instead of Hypothesis's replay of
    the interrupted example."""


# --- warnings ------------------------------------------------------------------------


class IdemtestWarning(UserWarning):
    """The check ran, but something suggests it cannot see much: e.g. every
    target stayed empty after a clean run of data that covers every window."""


# --- internal control flow -----------------------------------------------------------


class InjectedCrash(BaseException):
    """The simulated process kill. A BaseException, so `except Exception` in
    user code cannot swallow it: a real SIGKILL cannot be caught either."""

    def __init__(self, boundary: Boundary | None, when: str, note: str = "") -> None:
        super().__init__(note or "injected crash")
        self.boundary = boundary
        self.when = when


class ScenarioFailed(Exception):
    """A property broke mid-scenario; stops the remaining steps."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.headline)
        self.finding = finding


class TargetUnreadable(Exception):
    """A target cannot be read after a run (dropped, renamed, broken by the load)."""

    def __init__(self, target: str, error: str) -> None:
        super().__init__(f"{target}: {error}")
        self.target = target
        self.error = error


class AbortSearch(BaseException):
    """Carries a configuration or load error out of Hypothesis, unshrunk."""

    def __init__(self, error: IdemtestError) -> None:
        super().__init__(str(error))
        self.error = error


class StopSearch(BaseException):
    """Ends the Hypothesis search from inside an example: a BaseException, so
    Hypothesis neither shrinks nor replays it. `reason`: "shrink" (the shrink
    budget is spent), "max-seconds" (the check's time budget is spent) or
    "timeout" (a test-runner timeout, `cause`, interrupted the example)."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


class ExampleFailed(Exception):
    """Tells Hypothesis that this example broke a property."""
