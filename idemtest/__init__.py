"""idemtest: prove that data-pipeline load functions are idempotent.

Declare a pipeline with `Spec`, `Source`, `Target` and a schedule, then either
decorate a test with `@idemtest.check(spec)` or call
`idempotency.check(spec, load)` from the `idempotency` fixture, and run
`pytest --idempotency`. Without pytest, `idemtest.verify(spec, load)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._defaults import VERSION as __version__
from ._errors import (
    BackendError,
    CheckFailure,
    CheckTimedOut,
    ConfigurationError,
    DbtProjectError,
    IdempotencyViolation,
    IdemtestError,
    IdemtestWarning,
    LoadError,
    MissingExtraError,
    NonDeterminismError,
    ReplayError,
    SetupError,
    SpecError,
    UninstrumentedError,
)

if TYPE_CHECKING:
    from .context import RunContext, State
    from .decorator import CheckDefinition, check
    from .engine.model import Stats
    from .engine.search import replay, verify
    from .instrument import fault_point
    from .spec import Schedule, Source, Spec, Target, Window, daily, every, hourly, monthly, windows

__all__ = [
    "BackendError",
    "CheckDefinition",
    "CheckFailure",
    "CheckTimedOut",
    "ConfigurationError",
    "DbtProjectError",
    "IdempotencyViolation",
    "IdemtestError",
    "IdemtestWarning",
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
    "UninstrumentedError",
    "Window",
    "__version__",
    "check",
    "daily",
    "every",
    "fault_point",
    "hourly",
    "monthly",
    "replay",
    "verify",
    "windows",
]

# The rest loads on first use: `import idemtest` (and the pytest plugin, which
# every pytest run loads) stays cheap, and the engine comes in with a check.
_LAZY: dict[str, str] = {
    "RunContext": "context",
    "State": "context",
    "CheckDefinition": "decorator",
    "check": "decorator",
    "Stats": "engine.model",
    "replay": "engine.search",
    "verify": "engine.search",
    "fault_point": "instrument",
    **{n: "spec" for n in ("Schedule", "Source", "Spec", "Target", "Window", "daily", "every", "hourly", "monthly", "windows")},
}


def _own(obj: Any) -> Any:
    # public names belong to `idemtest`, wherever they are defined (as httpx does):
    # reprs, docs and tracebacks show `idemtest.Spec`, not a private module path
    try:
        obj.__module__ = "idemtest"
    except (AttributeError, TypeError):
        pass
    return obj


for _name in __all__:
    if _name in globals() and not _name.startswith("__"):
        _own(globals()[_name])


#: adapters, reached as `idemtest.dbt` (a module, loaded on first use)
_ADAPTERS: dict[str, str] = {"dbt": "adapters.dbt", "dlt": "adapters.dlt", "airflow": "adapters.airflow", "dagster": "adapters.dagster", "spark": "adapters.spark"}


def __getattr__(name: str) -> Any:
    if name == "keys":  # a module of its own: idemtest.keys.autoincrement()
        import importlib

        return importlib.import_module("idemtest.keys")
    if name in _ADAPTERS:
        import importlib

        adapter = importlib.import_module(f"idemtest.{_ADAPTERS[name]}")
        globals()[name] = adapter
        return adapter
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'idemtest' has no attribute {name!r}")
    import importlib

    value = _own(getattr(importlib.import_module(f"idemtest.{module}"), name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | {"keys"})
