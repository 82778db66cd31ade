"""What every adapter's `check(...)` shares: the pytest test function it returns
(skipped without --idempotency, or without the extra), named and placed as if the
user had written it in their module, the adapter's note on a failure's report, the
folder of the calling module, and the DDL of the source tables a tool reads."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from .._errors import CheckFailure, MissingExtraError
from ..spec import Source

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


def caller_dir() -> Path | None:
    """The folder of the module that called the adapter's `check(...)` (relative paths start there)."""
    frame = inspect.currentframe()
    caller = frame.f_back.f_back if frame is not None and frame.f_back is not None else None
    file = caller.f_globals.get("__file__") if caller is not None else None
    return Path(file).resolve().parent if file else None


def sources_ddl(sources: Iterable[Source]) -> str:
    """DDL of the source tables the tool reads (the sandbox is empty otherwise: the tool builds the rest)."""
    stmts = []
    for s in sources:
        schema, _, _ = s.table.rpartition(".")
        if schema:
            stmts.append(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        cols = ", ".join(f"{c} {t}" for c, t in s.columns.items())
        stmts.append(f"CREATE TABLE {s.table} ({cols})")
    return ";\n".join(stmts) + ";\n"
