"""Bad input gets a clear IdemtestError that names the fix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import idemtest
from idemtest import Source, Spec, Target, hourly

DDL = """
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, amount DOUBLE, updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT, amount DOUBLE, updated_at TIMESTAMP);
"""
COLS = {"order_id": "BIGINT", "amount": "DOUBLE", "updated_at": "TIMESTAMP"}


def make(**kw: object) -> Spec:
    args: dict[str, object] = dict(
        setup=DDL,
        sources=[Source("src.orders", columns=COLS, key="order_id", event_time="updated_at", max_rows=4)],
        targets=[Target("analytics.orders", key="order_id")],
        schedule=hourly("2026-06-01", periods=2),
        concurrency="none",  # `ok` is a full refresh: two overlapping runs would both insert
    )
    args.update(kw)
    return Spec(**args)  # type: ignore[arg-type]


def ok(run: idemtest.RunContext) -> None:
    run.conn.execute("BEGIN")
    run.conn.execute("DELETE FROM analytics.orders")
    run.conn.execute("INSERT INTO analytics.orders SELECT * FROM src.orders")
    run.conn.execute("COMMIT")


def verify(spec: Spec, load: object, tmp_path: Path, **kw: object) -> idemtest.Stats:
    return idemtest.verify(spec, load, examples=5, failures_dir=tmp_path, **kw)  # type: ignore[arg-type]


def test_unknown_source_table(tmp_path: Path) -> None:
    spec = make(sources=[Source("src.order", columns=COLS, key="order_id", event_time="updated_at")])
    with pytest.raises(idemtest.SpecError, match=r"source table 'src.order' does not exist after setup; create it in Spec\(setup=...\)"):
        verify(spec, ok, tmp_path)


def test_unknown_source_column(tmp_path: Path) -> None:
    spec = make(sources=[Source("src.orders", columns={**COLS, "colour": "VARCHAR"}, key="order_id", event_time="updated_at")])
    with pytest.raises(idemtest.SpecError, match=r"declares columns \['colour'\] that the table does not have"):
        verify(spec, ok, tmp_path)


def test_unknown_target_table(tmp_path: Path) -> None:
    with pytest.raises(idemtest.SpecError, match="target table 'analytics.nope' does not exist"):
        verify(make(targets=[Target("analytics.nope", key="order_id")]), ok, tmp_path)


def test_target_key_column_missing(tmp_path: Path) -> None:
    with pytest.raises(idemtest.SpecError, match=r"key column 'id' is not among its columns \['order_id', 'amount', 'updated_at'\]; fix Target\(key=...\)"):
        verify(make(targets=[Target("analytics.orders", key="id")]), ok, tmp_path)


def test_source_key_not_a_column() -> None:
    with pytest.raises(idemtest.SpecError, match="key column 'id' is not among its columns"):
        Source("src.orders", columns=COLS, key="id", event_time="updated_at")


def test_event_time_must_be_a_time() -> None:
    with pytest.raises(idemtest.SpecError, match="must be a TIMESTAMP or DATE column"):
        Source("src.orders", columns=COLS, key="order_id", event_time="amount")


def test_setup_sql_that_fails(tmp_path: Path) -> None:
    with pytest.raises(idemtest.SetupError, match=r"(?s)setup SQL failed on duckdb: .*CREAT TABLE.*fix the DDL in Spec\(setup=...\)"):
        verify(make(setup="CREAT TABLE x(a INT)"), ok, tmp_path)


def test_setup_file_missing(tmp_path: Path) -> None:
    with pytest.raises(idemtest.SpecError, match="setup='no_such_schema.sql': no such file"):
        verify(make(setup="no_such_schema.sql"), ok, tmp_path)


def test_setup_file_relative_to_the_test_module(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text(DDL)
    spec = make(setup="schema.sql", base_dir=tmp_path)
    assert verify(spec, ok, tmp_path).scenarios >= 5


def test_wrong_load_signature(tmp_path: Path) -> None:
    def load(conn, now):  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(idemtest.SpecError, match=r"load function load\(conn, now\) has the wrong signature.*def load\(run\)"):
        verify(make(), load, tmp_path)


def test_load_that_fails_without_faults(tmp_path: Path) -> None:
    def load(run: idemtest.RunContext) -> None:
        run.conn.execute("INSERT INTO analytics.orders SELECT * FROM src.missing_table")

    with pytest.raises(idemtest.LoadError) as e:
        verify(make(), load, tmp_path)
    text = str(e.value)
    assert "fails even without faults" in text
    assert "src.missing_table" in text  # the database's own message
    assert 'run.conn.execute("INSERT INTO analytics.orders SELECT * FROM src.missing_table")' in text  # the user's line
    assert "runner.py" not in text  # idemtest's frames are hidden


def test_load_that_hangs(tmp_path: Path) -> None:
    def load(run: idemtest.RunContext) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)

    started = time.monotonic()
    with pytest.raises(idemtest.LoadError, match=r"(?s)hung did not finish within timeout=0.3s.*raise Spec\(timeout=...\)"):
        verify(make(timeout="300ms"), load, tmp_path)
    assert time.monotonic() - started < 4


def test_non_deterministic_column_is_p0_not_p1(tmp_path: Path) -> None:
    ddl = DDL.replace("CREATE TABLE analytics.orders(order_id BIGINT, amount DOUBLE, updated_at TIMESTAMP)",
                      "CREATE TABLE analytics.orders(order_id BIGINT, amount DOUBLE, updated_at TIMESTAMP, batch_id DOUBLE)")

    def load(run: idemtest.RunContext) -> None:
        run.conn.execute("DELETE FROM analytics.orders")
        run.conn.execute("INSERT INTO analytics.orders SELECT *, random() FROM src.orders")

    with pytest.raises(idemtest.NonDeterminismError) as e:
        verify(make(setup=ddl), load, tmp_path)
    assert e.value.columns == {"analytics.orders": ["batch_id"]}
    assert "ignore=['batch_id']" in str(e.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_lateness": "2 fortnights"}, "max_lateness='2 fortnights' is not a duration"),
        ({"retries": -1}, "retries=-1 must be a whole number from 0 to 10"),
        ({"oracle": "eventually"}, "oracle='eventually'"),
        ({"exercise": {"chaos"}}, r"exercise=\['chaos'\] names unknown perturbations"),
        ({"targets": []}, "a Spec needs at least one Target"),
        ({"dialect": "oracle"}, "dialect='oracle'"),
        ({"schedule": "hourly"}, "build one with idemtest.hourly"),
    ],
)
def test_spec_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(idemtest.SpecError, match=message):
        make(**kwargs)


def test_dialect_mismatch_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(idemtest.SpecError, match="declares dialect='postgres' but the sandbox is duckdb; run it with --idem-db"):
        verify(make(dialect="postgres"), ok, tmp_path)


def test_missing_replay_file(tmp_path: Path) -> None:
    with pytest.raises(idemtest.ReplayError, match="does not exist; saved failures live under .idemtest/failures/"):
        verify(make(), ok, tmp_path, replay=str(tmp_path / "nope.json"))


def test_every_error_is_an_idemtest_error() -> None:
    for exc in (idemtest.SpecError, idemtest.SetupError, idemtest.LoadError, idemtest.BackendError, idemtest.MissingExtraError,
                idemtest.ReplayError, idemtest.IdempotencyViolation, idemtest.NonDeterminismError):
        assert issubclass(exc, idemtest.IdemtestError)
