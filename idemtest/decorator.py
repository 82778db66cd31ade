"""`@idemtest.check(spec)`: the decorator form of a check, in the style of `@given`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import SpecError

if TYPE_CHECKING:
    from .spec import Spec

F = TypeVar("F", bound=Callable[..., Any])
FIXTURE = "idempotency"


@dataclass(frozen=True)
class CheckDefinition:
    """What `@idemtest.check` attached to a test, as `test.idemtest`: the spec,
    the undecorated body (called as `load(run, **fixtures)`), the examples asked
    for, and the folder relative setup files are found in. Tools (bench/,
    plugins) read it instead of reaching into private attributes."""

    spec: Spec
    load: Callable[..., Any]
    examples: int | None
    base_dir: Path | None
    max_seconds: float | None = None


def definition(test: Any) -> CheckDefinition | None:
    """The check a test function was decorated with, or None."""
    found = getattr(test, "idemtest", None)
    return found if isinstance(found, CheckDefinition) else None


def check(spec: Spec, *, examples: int | None = None, max_seconds: float | None = None) -> Callable[[F], F]:
    """Turn `def test_x(run, <fixtures>...)` into a pytest test that runs the
    body as the load function under generated scenarios.

    `max_seconds` bounds the check's time (`--idem-max-seconds` on the command
    line overrides it): the search then stops and the summary says it was cut short.

    The first parameter receives the RunContext; the others are pytest fixtures,
    resolved once per test and passed on every run."""
    from .spec import Spec as SpecType

    if not isinstance(spec, SpecType):
        raise SpecError(f"@idemtest.check expects an idemtest.Spec, got {spec!r}")
    if examples is not None and (not isinstance(examples, int) or isinstance(examples, bool) or examples < 1):
        raise SpecError(f"examples={examples!r} must be a whole number >= 1")
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0):
        raise SpecError(f"max_seconds={max_seconds!r} must be a number of seconds > 0 (or None: unbounded)")

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
            raise SpecError(
                f"@idemtest.check: {fn.__name__}{sig} must take the run context as its first parameter, "
                f"e.g. `def {fn.__name__}(run): load(run.conn, now=run.now)`"
            )
        fixtures = params[1:]
        if any(p.name == FIXTURE for p in fixtures):
            raise SpecError(f"@idemtest.check: {fn.__name__} may not take a fixture named {FIXTURE!r}; idemtest provides it")
        try:
            base_dir: Path | None = Path(inspect.getfile(fn)).resolve().parent
        except (TypeError, OSError):
            base_dir = None

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> None:
            harness = kwargs.pop(FIXTURE)

            def load(run: Any) -> Any:
                return fn(run, **kwargs)

            load.__qualname__ = fn.__qualname__
            harness.check(spec, load, examples=examples, base_dir=base_dir, max_seconds=max_seconds)

        # pytest reads __signature__: it asks for our fixture plus the user's own
        wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[inspect.Parameter(FIXTURE, inspect.Parameter.KEYWORD_ONLY), *[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in fixtures]]
        )
        del wrapper.__wrapped__
        wrapper.idemtest = CheckDefinition(spec, fn, examples, base_dir, max_seconds)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
