"""idemtest: prove that data-pipeline load functions are idempotent.

Declare a pipeline with `Spec`, `Source`, `Target` and a schedule, then either
decorate a test with `@idemtest.check(spec)` or call
`idempotency.check(spec, load)` from the `idempotency` fixture, and run
`pytest --idempotency`. Without pytest, `idemtest.verify(spec, load)`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._errors import (
    BackendError,
    IdempotencyViolation,
    IdemtestError,
    LoadError,
    MissingExtraError,
    NonDeterminismError,
    ReplayError,
    SetupError,
    SpecError,
)
from .context import RunContext, State
from .decorator import check
from .harness import replay, verify
from .instrument import fault_point
from .runner import Stats
from .spec import Schedule, Source, Spec, Target, Window, daily, every, hourly, windows

__all__ = [
    "BackendError",
    "IdempotencyViolation",
    "IdemtestError",
    "LoadError",
    "MissingExtraError",
    "NonDeterminismError",
    "ReplayError",
    "RunContext",
    "Schedule",
    "SetupError",
    "Source",
    "Spec",
    "SpecError",
    "State",
    "Stats",
    "Target",
    "Window",
    "__version__",
    "check",
    "daily",
    "every",
    "fault_point",
    "hourly",
    "replay",
    "verify",
    "windows",
]
