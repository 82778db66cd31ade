"""`@idemtest.check(spec)`: the decorator form of a check, in the style of `@given`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import SpecError

if TYPE_CHECKING:
    from .spec import Spec

F = TypeVar("F", bound=Callable[..., Any])
FIXTURE = "idempotency"


def check(spec: Spec, *, examples: int | None = None) -> Callable[[F], F]:
    """Turn `def test_x(run, <fixtures>...)` into a pytest test that runs the
    body as the load function under generated scenarios.

    The first parameter receives the RunContext; the others are pytest fixtures,
    resolved once per test and passed on every run."""
    from .spec import Spec as SpecType

    if not isinstance(spec, SpecType):
        raise SpecError(f"@idemtest.check expects an idemtest.Spec, got {spec!r}")
    if examples is not None and (not isinstance(examples, int) or examples < 1):
        raise SpecError(f"examples={examples!r} must be a whole number >= 1")

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

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> None:
            harness = kwargs.pop(FIXTURE)

            def load(run: Any) -> Any:
                return fn(run, **kwargs)

            load.__qualname__ = fn.__qualname__
            harness.check(spec, load, examples=examples)

        # pytest reads __signature__: it asks for our fixture plus the user's own
        wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[inspect.Parameter(FIXTURE, inspect.Parameter.KEYWORD_ONLY), *[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in fixtures]]
        )
        del wrapper.__wrapped__
        wrapper._idemtest_spec = spec  # type: ignore[attr-defined]
        wrapper._idemtest_load = fn  # type: ignore[attr-defined]  # for bench/ and tools
        return wrapper  # type: ignore[return-value]

    return decorate
