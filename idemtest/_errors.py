"""One exception tree: every error idemtest raises derives from IdemtestError."""

from __future__ import annotations


class IdemtestError(Exception):
    """Root of every error idemtest raises on purpose."""


class SpecError(IdemtestError):
    """The declared Spec is inconsistent with itself or with the sandbox schema."""


class SetupError(IdemtestError):
    """The spec's setup DDL failed in a fresh sandbox."""


class LoadError(IdemtestError):
    """The load function fails or hangs even without injected faults."""


class BackendError(IdemtestError):
    """A sandbox backend cannot be created (missing extra, unreachable server, no Docker)."""


class MissingExtraError(BackendError):
    """An optional dependency is not installed; the message names the pip command."""


class ReplayError(IdemtestError):
    """A saved failure file cannot be replayed."""


class IdempotencyViolation(IdemtestError):
    """The pipeline broke a property (P1-P4) under a generated scenario.

    `prop` is the property id, `finding` the evidence (row diffs), `scenario`
    the minimal failing scenario, `saved` the JSON file that replays it and
    `report` the full text shown to the user."""

    def __init__(self, report: str, *, prop: str, finding: object = None, scenario: object = None, attempts: object = None, saved: str | None = None) -> None:
        super().__init__(report)
        self.report = report
        self.prop = prop
        self.finding = finding
        self.scenario = scenario
        self.attempts = attempts
        self.saved = saved

    @property
    def diffs(self) -> list[object]:
        return list(getattr(self.finding, "diffs", []) or [])


class NonDeterminismError(IdemtestError):
    """P0: two clean runs on the same data differ, so idempotency cannot be judged."""

    def __init__(self, report: str, *, columns: dict[str, list[str]] | None = None) -> None:
        super().__init__(report)
        self.report = report
        self.columns = columns or {}
