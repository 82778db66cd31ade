"""Optional dependencies: which extra installs which module, and one way to import them.

A missing driver must name the exact pip command, never surface as a bare
ImportError deep inside a run."""

from __future__ import annotations

import importlib
from typing import Any

from ._errors import MissingExtraError

#: top-level module -> the idemtest extra that installs it
EXTRA_OF: dict[str, str] = {
    "psycopg": "postgres",
    "psycopg_binary": "postgres",
    "psycopg2": "psycopg2",
    "sqlalchemy": "sqlalchemy",
    "duckdb_engine": "sqlalchemy",
    "testcontainers": "docker",
    "docker": "docker",
    "dbt": "dbt",
    "airflow": "airflow",
    "pyspark": "spark",
    "deltalake": "spark",
    "pyarrow": "spark",
    "delta": "spark",
    "dlt": "dlt",
    "dagster": "dagster",
    "dagster_duckdb": "dagster",
}


def install_hint(extra: str) -> str:
    return f"pip install 'idemtest[{extra}]'"


def require(module: str, extra: str | None = None) -> Any:
    """Import an optional dependency, or raise MissingExtraError naming the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        name = extra or EXTRA_OF.get(module.split(".")[0], "dev")
        raise MissingExtraError(f"{module} is not installed; install it with: {install_hint(name)}", extra=name, module=module) from None


def missing_extra(error: BaseException) -> MissingExtraError | None:
    """A ModuleNotFoundError for a module an idemtest extra installs, as a MissingExtraError."""
    if isinstance(error, MissingExtraError):
        return error
    if isinstance(error, ModuleNotFoundError) and error.name:
        top = error.name.split(".")[0]
        extra = EXTRA_OF.get(top)
        if extra is not None:
            return MissingExtraError(f"{error.name} is not installed; install it with: {install_hint(extra)}", extra=extra, module=error.name)
    return None
