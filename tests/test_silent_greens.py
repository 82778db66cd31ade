"""Loads that used to pass on DuckDB while proving nothing: one writing through its
own `duckdb.connect(file)` to a file that is not the sandbox, one leaving a
transaction open. Each is an error naming the fix; the correct forms pass.
(PostgreSQL: tests/postgres/test_silent_greens.py.)"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

import idemtest
from idemtest import Source, Spec, Target, hourly

DDL = """
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, amount DOUBLE, updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT PRIMARY KEY, amount DOUBLE, updated_at TIMESTAMP);
"""
COLS = {"order_id": "BIGINT", "amount": "DOUBLE", "updated_at": "TIMESTAMP"}
UPSERT = (
    "INSERT INTO analytics.orders SELECT * FROM src.orders ON CONFLICT (order_id) DO UPDATE "
    "SET amount = excluded.amount, updated_at = excluded.updated_at WHERE excluded.updated_at > analytics.orders.updated_at"
)


def spec(**kw: Any) -> Spec:
    args: dict[str, Any] = dict(
        setup=DDL, sources=[Source("src.orders", columns=COLS, key="order_id", event_time="updated_at", max_rows=3)],
        targets=[Target("analytics.orders", key="order_id")], schedule=hourly("2026-06-01", periods=2), concurrency="none",
    )
    args.update(kw)
    return Spec(**args)


def verify(s: Spec, load: Callable[[Any], None], tmp_path: Path, db: str = "duckdb") -> idemtest.Stats:
    """The systematic pass of idemtest.verify, thinned: a clean run, then a few single-fault scenarios."""
    from idemtest.engine.search import Checker, Config

    config = Config(db=db, failures_dir=tmp_path / "failures", systematic_max=6, shrink_seconds=0)
    checker = Checker(s, load, config)
    try:
        checker.run_systematic()
    finally:
        checker.close()
    return config.stats


def copies_to(path: Path, catch: bool = False) -> Callable[[Any], None]:
    def load(run: Any) -> None:
        run.conn.execute(UPSERT)
        try:
            other = duckdb.connect(str(path))  # a hard-coded file: not the sandbox
            other.execute("CREATE TABLE IF NOT EXISTS landed AS SELECT 1 AS x")
            other.close()
        except Exception:
            if not catch:
                raise

    return load


@pytest.mark.parametrize("catch", [False, True], ids=["raised", "caught by the load"])
def test_a_load_writing_to_another_duckdb_file_is_an_error(tmp_path: Path, catch: bool) -> None:
    target = tmp_path / "warehouse.duckdb"
    with pytest.raises(idemtest.LoadError) as info:
        verify(spec(), copies_to(target, catch), tmp_path)
    assert type(info.value).__name__ == "ForeignDatabaseError"
    text = str(info.value)
    assert f"the load connected to the DuckDB database {str(target)!r}, which is not the sandbox" in text
    assert "duckdb.connect(run.path)" in text and f"Spec(allow_foreign=[{str(target)!r}])" in text
    assert not target.exists()  # refused before DuckDB created the file


def test_an_allowed_file_and_private_memory_databases_are_fine(tmp_path: Path) -> None:
    lookup = tmp_path / "rates.duckdb"
    with duckdb.connect(str(lookup)) as c:
        c.execute("CREATE TABLE rates AS SELECT 2.0 AS rate")

    def load(run: Any) -> None:
        with duckdb.connect(str(lookup), read_only=True) as c:
            rate = c.execute("SELECT rate FROM rates").fetchone()[0]
        scratch = duckdb.connect()  # a private in-memory database: nothing there outlives the run
        scratch.execute("SELECT 1")
        scratch.close()
        run.conn.execute(UPSERT.replace("SELECT * FROM src.orders", f"SELECT order_id, amount * {rate}, updated_at FROM src.orders"))

    verify(spec(allow_foreign=[str(lookup)]), load, tmp_path)
    with pytest.raises(idemtest.LoadError, match="allow_foreign"):
        verify(spec(), load, tmp_path)


def test_a_duckdb_file_sandbox_is_reached_through_its_path(tmp_path: Path) -> None:
    def load(run: Any) -> None:
        with duckdb.connect(run.path) as c:  # the sandbox itself, on --idem-db duckdb-file
            c.execute(UPSERT)

    verify(spec(), load, tmp_path, db="duckdb-file")


def never_commits(how: str) -> Callable[[Any], None]:
    def load(run: Any) -> None:
        if how == "run.conn":
            run.conn.execute("BEGIN")
            run.conn.execute(UPSERT)
        elif how == "begin()":
            run.conn.begin()
            run.conn.execute(UPSERT)
        elif how == "cursor":
            cur = run.conn.cursor()
            cur.execute("BEGIN TRANSACTION")
            cur.execute(UPSERT)
        elif how == "failed":
            run.conn.execute("BEGIN")
            run.conn.execute(UPSERT)
            try:
                run.conn.execute("SELECT * FROM no_such_table")
            except duckdb.Error:
                pass  # swallowed; the failed transaction is never rolled back

    return load


@pytest.mark.parametrize(("how", "what"), [
    ("run.conn", r"a transaction that was begun and never committed on run\.conn"),
    ("begin()", r"a transaction that was begun and never committed on run\.conn"),
    ("cursor", r"a transaction that was begun and never committed on a DuckDB cursor the load opened to the sandbox"),
    ("failed", r"a failed transaction \(an error inside it was caught, and it was never rolled back\) on run\.conn"),
])
def test_a_load_that_never_commits_is_an_error(tmp_path: Path, how: str, what: str) -> None:
    with pytest.raises(idemtest.LoadError) as info:
        verify(spec(), never_commits(how), tmp_path)
    assert type(info.value).__name__ == "OpenTransactionError"
    assert re.search(rf"clean run of window 0 .*: the load left {what}; commit it", str(info.value)), str(info.value)


def test_crashed_attempts_are_not_open_transactions(tmp_path: Path) -> None:
    def load(run: Any) -> None:
        run.conn.execute("BEGIN")
        run.conn.execute(UPSERT)
        run.conn.execute("COMMIT")

    stats = verify(spec(exercise=["crash"]), load, tmp_path)
    assert stats.crashes > 0


def test_the_plugin_reports_a_foreign_file_as_an_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    target = tmp_path / "prod.duckdb"
    pytester.makepyfile(test_pipe=f"""
import duckdb, idemtest
from idemtest import Source, Spec, Target, hourly
spec = Spec(setup='''{DDL}''', sources=[Source("src.orders", columns={COLS!r}, key="order_id", event_time="updated_at", max_rows=3)],
            targets=[Target("analytics.orders", key="order_id")], schedule=hourly("2026-06-01", periods=2), concurrency="none")

@idemtest.check(spec, examples=2)
def test_copy(run):
    run.conn.execute('''{UPSERT}''')
    duckdb.connect({str(target)!r}).execute("CREATE TABLE t AS SELECT 1")
""")
    result = pytester.runpytest("--idempotency", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "which is not the sandbox" in out and "INTERNALERROR" not in out
    assert not target.exists()
