"""The DuckDB connection proxies: every statement path is a boundary, and crashes
behave as a killed process would (uncommitted work lost, commits kept)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

import idemtest
from idemtest.instrument import Controller, Fault, InjectedCrash, activate
from idemtest.sandbox.duckdb import DuckDBBackend


@pytest.fixture
def sandbox() -> Iterator[Any]:
    backend = DuckDBBackend()
    sb = backend.create()
    sb.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR)")
    yield sb
    sb.close()
    backend.close()


def rows(sb: Any) -> list[tuple[Any, ...]]:
    return sb.query("SELECT * FROM t ORDER BY id")[1]


def test_every_statement_path_is_a_boundary(sandbox: Any) -> None:
    import pandas as pd

    ctl = Controller("t")
    conn = sandbox.connect(ctl, kind=None)
    assert isinstance(conn, duckdb.DuckDBPyConnection)
    conn.execute("INSERT INTO t VALUES (1, 'a'); INSERT INTO t VALUES (2, 'b')")  # a script: two statements
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(3, "c"), (4, "d")])
    conn.sql("INSERT INTO t VALUES (5, 'e')")
    conn.append("t", pd.DataFrame({"id": [6], "v": ["f"]}))
    conn.register("frame", pd.DataFrame({"id": [7], "v": ["g"]}))
    conn.table("frame").insert_into("t")
    cur = conn.cursor()
    cur.execute("BEGIN")
    cur.execute("INSERT INTO t VALUES (8, 'h')")
    cur.commit()
    kinds = [b.kind for b in ctl.trace]
    assert kinds == ["execute", "execute", "executemany", "sql", "append", "register", "relation", "cursor", "execute", "execute", "commit"]
    assert [r[0] for r in rows(sandbox)] == list(range(1, 9))


@pytest.mark.parametrize(
    ("fault", "kept"),
    [
        (Fault(2, "before"), []),  # before the INSERT: nothing written
        (Fault(2, "after"), []),  # after the INSERT, before COMMIT: the open transaction dies with the process
        (Fault(3, "before"), []),  # just before COMMIT
        (Fault(3, "after"), [(1, "a")]),  # just after COMMIT: committed, though the orchestrator saw a failure
    ],
)
def test_crash_semantics(sandbox: Any, fault: Fault, kept: list[tuple[Any, ...]]) -> None:
    ctl = Controller("t", fault)
    conn = sandbox.connect(ctl, kind=None)
    with pytest.raises(InjectedCrash), activate(ctl):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (1, 'a')")
        conn.execute("COMMIT")
    ctl.close_all()
    assert rows(sandbox) == kept
    # the dead process cannot run anything more
    with pytest.raises(InjectedCrash):
        conn.execute("SELECT 1")


def test_own_connections_by_path_and_sqlalchemy_are_instrumented(sandbox: Any) -> None:
    import pandas as pd
    import sqlalchemy as sa

    ctl = Controller("t")
    with activate(ctl):
        own = duckdb.connect(sandbox.path)  # what a pipeline that opens its own connection does
        own.execute("INSERT INTO t VALUES (1, 'a')")
        engine = sa.create_engine(sandbox.url)
        pd.DataFrame({"id": [2], "v": ["b"]}).to_sql("t", engine, if_exists="append", index=False)
        engine.dispose()
    kinds = [b.kind for b in ctl.trace]
    assert kinds[:2] == ["connect", "execute"]
    assert any(b.kind == "connect" for b in ctl.trace[2:])  # SQLAlchemy's own connect
    assert any("INSERT INTO t" in b.text for b in ctl.trace[2:])  # to_sql's INSERT
    assert rows(sandbox) == [(1, "a"), (2, "b")]


def test_fault_point_is_a_boundary_and_a_noop_outside_runs(sandbox: Any) -> None:
    idemtest.fault_point("outside")  # no run: nothing happens
    ctl = Controller("t", Fault(1, "after"))
    with pytest.raises(InjectedCrash, match=r"fault_point\('after_stage'\)"), activate(ctl):
        idemtest.fault_point("after_stage")


def test_run_engine_gives_an_instrumented_sqlalchemy_engine(sandbox: Any) -> None:
    import pandas as pd

    from idemtest.sandbox import sqlalchemy_engine

    ctl = Controller("t")
    engine = sqlalchemy_engine(sandbox, ctl)
    pd.DataFrame({"id": [1, 2], "v": ["a", "b"]}).to_sql("t", engine, if_exists="append", index=False)
    assert any("INSERT INTO t" in b.text for b in ctl.trace)
    assert rows(sandbox) == [(1, "a"), (2, "b")]
