"""`idemtest review --emit-checks DIR`: one check module per Airflow DAG the review understood
(static: runs without Airflow; tests/test_airflow.py runs an emitted module for real)."""

from __future__ import annotations

from pathlib import Path

from idemtest.review import main
from idemtest.review.emit import EMITTERS, schema_tables

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "airflow"


def test_one_module_per_dag(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "checks"
    assert main([str(EXAMPLES), "--emit-checks", str(out), "--fail-on", "none", "--format", "json"]) == 0
    assert "wrote 4 check module(s)" in capsys.readouterr().err
    modules = {p.name: p.read_text() for p in out.iterdir()}
    assert sorted(modules) == [
        "test_events_interval_idempotency.py", "test_events_watermark_idempotency.py",
        "test_process_employees_fixed_idempotency.py", "test_process_employees_idempotency.py",
    ]
    for name, text in modules.items():
        compile(text, name, "exec")  # valid Python as written
        assert "idemtest.airflow.check(" in text
    wm = modules["test_events_watermark_idempotency.py"]
    # the source typed from schema.sql's CREATE TABLE; the target keyed by its primary key
    assert "Source('src.events', columns={'event_id': 'BIGINT'" in wm and "event_time='event_time'" in wm
    assert "Target('analytics.loaded_events', key='event_id', created_by_load=False)" in wm
    assert "dag_id='events_watermark'" in wm and "events_watermark.py" in wm
    # the tutorial's tables are created by the DAG: targets it writes last, created by the load
    tut = modules["test_process_employees_idempotency.py"]
    assert "Target('employees', key=None, created_by_load=True)" in tut


def test_schema_tables_read_keys_and_types() -> None:
    tables = schema_tables([EXAMPLES])
    assert tables["analytics.loaded_events"].key == ["event_id"]
    assert tables["src.events"].columns["amount"] == "DECIMAL(12, 2)"


def test_the_registry_has_an_airflow_emitter() -> None:
    assert "airflow" in EMITTERS  # a Dagster emitter goes beside it


def test_one_module_per_dagster_definitions_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # the review's Dagster inventory -> idemtest.dagster.check per asset that writes a table
    dagster = EXAMPLES.parent / "dagster" / "pipelines"
    out = tmp_path / "checks"
    assert main([str(dagster), "--emit-checks", str(out), "--fail-on", "none", "--format", "json"]) == 0
    modules = {p.name: p.read_text() for p in out.iterdir()}
    assert "test_orders_assets_idempotency.py" in modules, sorted(modules)
    text = modules["test_orders_assets_idempotency.py"]
    compile(text, "emitted", "exec")
    assert "idemtest.dagster.check(assets=" in text and "orders.py" in text
    assert "select=['daily_orders']" in text and "select=['daily_orders_autocommit']" in text
    assert set(EMITTERS) >= {"airflow", "dagster"}
