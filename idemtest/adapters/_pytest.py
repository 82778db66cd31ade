"""What every adapter's `check(...)` shares: the pytest test function it returns
(skipped without --idempotency, or without the extra), named and placed as if the
user had written it in their module, and the adapter's note on a failure's report."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from .._errors import CheckFailure, MissingExtraError

P = TypeVar("P")


def skip_unless_enabled(idempotency: Any) -> None:
    """Outside `--idempotency` (or the ini option) a check is skipped, saying how to run it."""
    if not idempotency.enabled:
        import pytest

        from ..fixtures import SKIP_REASON

        pytest.skip(SKIP_REASON)


def plan_or_skip(make: Callable[[], P]) -> P:
    """The adapter's plan; a missing extra skips the test with its pip command."""
    try:
        return make()
    except MissingExtraError as e:
        import pytest

        pytest.skip(str(e))
        raise  # unreachable: pytest.skip raises


def with_note(failure: CheckFailure, note: str) -> CheckFailure:
    """The verdict, with what the adapter ran (the user reads 'clean run' through it)."""
    text = f"{failure.report}\n\n{note}"
    failure.report = text
    failure.args = (text,)
    return failure


def as_user_test(test: Callable[..., None], *, name: str, doc: str, attr: str, definition: Any) -> Callable[..., None]:
    """`test` named `name`, with `definition` under `attr` (tools read it back), and
    reported as a function of the module that called the adapter's `check(...)`."""
    test.__name__ = test.__qualname__ = name
    test.__doc__ = doc
    frame = inspect.currentframe()
    caller = frame.f_back.f_back if frame is not None and frame.f_back is not None else None
    module = caller.f_globals.get("__name__") if caller is not None else None
    if module:
        test.__module__ = module
    setattr(test, attr, definition)
    return test
