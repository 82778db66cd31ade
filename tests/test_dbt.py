"""The dbt adapter (`idemtest[dbt]`) on DuckDB: real dbt-core + dbt-duckdb runs of
examples/dbt/shop against the sandbox. The project is parsed once per process
(~10 s), then each dbt run costs ~0.5-1 s. CI installs `.[dbt]` in its own step
(.ci/run); without dbt these skip, except the declaration errors, which need no dbt.
The checks of every example model (correct passes, buggy caught) run as
examples/dbt/test_shop.py."""

from __future__ import annotations

import os
import re
import shutil
import sys
from datetime import datetime
from pathlib import Path

import pytest

import idemtest
from idemtest import DbtProjectError, MissingExtraError, SpecError
from idemtest.adapters.dbt import definition_of

ROOT = Path(__file__).resolve().parents[1]
SHOP = ROOT / "examples" / "dbt" / "shop"


def needs_dbt() -> None:
    if os.environ.get("IDEMTEST_REQUIRE_DBT") == "1":
        return  # CI's dbt step: a missing dbt fails, never skips
    pytest.importorskip("dbt.cli.main", reason="needs idemtest[dbt]: pip install 'idemtest[dbt]'")
    pytest.importorskip("dbt.adapters.duckdb", reason="needs idemtest[dbt]: pip install 'idemtest[dbt]'")


def plan(select: str, **kw):
    needs_dbt()
    test = idemtest.dbt.check(project_dir=SHOP, select=select, max_lateness="1h", **kw)
    definition = definition_of(test)
    assert definition is not None
    return definition.plan("duckdb")


# --- declaration errors: clear, before any dbt runs ------------------------------------


def test_wrong_project_dir_names_the_folder(tmp_path):
    with pytest.raises(DbtProjectError, match=r"no dbt_project.yml in .*nowhere"):
        idemtest.dbt.check(project_dir=tmp_path / "nowhere", select="fct_orders")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"select": "+fct_orders"}, "must name one model"),
        ({"select": ""}, "must name one model"),
        ({"select": "fct_orders", "oracle": "yesterday"}, "oracle='yesterday'"),
        ({"select": "fct_orders", "exercise": ["crash", "concurrent"]}, "cannot interleave"),
        ({"select": "fct_orders", "schedule": "hourly"}, "schedule='hourly'"),
    ],
)
def test_bad_declarations_name_the_fix(kw, message):
    with pytest.raises(SpecError, match=message):
        idemtest.dbt.check(project_dir=SHOP, **kw)


def test_missing_dbt_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "dbt.cli.main", None)  # as if dbt-core were not installed
    definition = definition_of(idemtest.dbt.check(project_dir=SHOP, select="fct_orders"))
    assert definition is not None
    with pytest.raises(MissingExtraError, match=r"pip install 'idemtest\[dbt\]'"):
        definition.plan("duckdb")


def test_examples_skip_with_the_pip_hint_without_dbt(pytester, monkeypatch):
    """examples/dbt under the base package: skipped with the pip command, never an error."""
    pytester.makepyfile(
        test_shop=f"""
        import sys
        sys.modules["dbt.cli.main"] = None
        import idemtest
        test_model = idemtest.dbt.check(project_dir={str(SHOP)!r}, select="fct_orders")
        """
    )
    result = pytester.runpytest("--idempotency", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    assert "SKIPPED" in result.stdout.str() and "pip install 'idemtest[dbt]'" in result.stdout.str()


# --- errors found in the project (one parse, shared) ------------------------------------


def test_unknown_model_suggests_close_names():
    with pytest.raises(DbtProjectError, match=r"no model of that name; did you mean 'fct_orders'"):
        plan("fct_order")


def test_a_model_that_is_not_incremental_is_refused():
    with pytest.raises(DbtProjectError, match=r"'stg_orders' is materialized as 'view', not 'incremental'"):
        plan("stg_orders")


def test_sources_override_and_unknown_source():
    p = plan("fct_orders", sources={"shop.orders": {"max_rows": 4, "key": "order_id"}})
    (source,) = p.spec.sources
    assert (source.table, source.max_rows, source.keys, source.event_time) == ("shop.orders", 4, ("order_id",), "updated_at")
    assert source.columns["amount"] == "decimal(12,2)"  # from the YAML's data_type
    (target,) = p.spec.targets
    assert (target.table, target.keys, target.created_by_load) == ("main.fct_orders", ("order_id",), True)
    assert p.selection == "+fct_orders" and p.strategy == "merge"
    with pytest.raises(SpecError, match=r"names 'shop.customers', which model 'fct_orders' does not read; it reads \['shop.orders'\]"):
        plan("fct_orders", sources={"shop.customers": {}})


def _copy_shop(tmp_path: Path) -> Path:
    project = tmp_path / "shop_copy"
    shutil.copytree(SHOP, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    return project


def test_dbt_compile_error_shows_dbts_message(tmp_path):
    needs_dbt()
    project = _copy_shop(tmp_path)
    (project / "models" / "broken.sql").write_text("select {{ this_macro_does_not_exist( }} as x\n")
    definition = definition_of(idemtest.dbt.check(project_dir=project, select="fct_orders"))
    assert definition is not None
    with pytest.raises(DbtProjectError) as info:
        definition.plan("duckdb")
    text = str(info.value)
    assert "dbt cannot parse the project" in text and "broken" in text and "Traceback" not in text


def test_a_source_without_data_types_asks_for_columns(tmp_path):
    needs_dbt()
    project = _copy_shop(tmp_path)
    yml = project / "models" / "sources.yml"
    yml.write_text("\n".join(line for line in yml.read_text().splitlines() if "data_type" not in line) + "\n")
    definition = definition_of(idemtest.dbt.check(project_dir=project, select="fct_orders"))
    assert definition is not None
    with pytest.raises(SpecError, match=r"dbt source 'shop.orders' declares no column with a data_type"):
        definition.plan("duckdb")
    # declared in the check instead, the same model runs
    columns = {"order_id": "BIGINT", "customer_id": "BIGINT", "status": "VARCHAR", "amount": "DECIMAL(12,2)", "updated_at": "TIMESTAMP"}
    definition = definition_of(idemtest.dbt.check(project_dir=project, select="fct_orders", sources={"shop.orders": {"columns": columns}}))
    assert definition is not None
    assert dict(definition.plan("duckdb").spec.sources[0].columns) == columns


# --- runs: dbt's statements are traced and crashable --------------------------------------


def is_merge(sql: str) -> bool:
    return re.search(r"\bmerge\s+into\b", sql, re.I) is not None


def _env(p):
    from idemtest.engine.execute import Env
    from idemtest.engine.systematic import systematic_dataset
    from idemtest.sandbox import get_backend

    backend = get_backend("duckdb")
    sandbox = backend.create(p.spec)
    sandbox.prepare(p.spec)
    env = Env(p.spec, sandbox, systematic_dataset(p.spec), p.load)
    return backend, sandbox, env


def test_dbt_statements_are_boundaries_and_a_crash_inside_dbt_rolls_back():
    from idemtest.engine.model import Fault, RunStep

    p = plan("fct_orders")
    backend, sandbox, env = _env(p)
    try:
        w0, w1 = p.spec.all_windows[:2]
        env.sync(w0.end)
        first = env.execute(1, RunStep(0, w0.end), 1, w0.end, None)
        assert first.outcome == "ok", first.error
        texts = [b.text for b in first.trace]
        assert any(re.search(r"create\s+table", t, re.I) for t in texts), texts
        before = sandbox.snapshot(p.spec.targets[0])
        assert before[1], "the first dbt run built the model from the arrived rows"

        env.sync(w1.end)
        clean = env.execute(2, RunStep(1, w1.end), 1, w1.end, None)
        assert clean.outcome == "ok", clean.error
        merge_at = next(b.index for b in clean.trace if is_merge(b.text))
        after_clean = sandbox.snapshot(p.spec.targets[0])

        # the same incremental run again, crashed right after dbt's MERGE (before its COMMIT)
        crashed = env.execute(3, RunStep(1, w1.end), 1, w1.end, Fault(merge_at, "after"))
        assert crashed.outcome == "crash" and crashed.at is not None and is_merge(crashed.at.text)
        assert sorted(sandbox.snapshot(p.spec.targets[0])[1]) == sorted(after_clean[1])  # the transaction died with the process
        retry = env.execute(3, RunStep(1, w1.end), 2, w1.end, None)
        assert retry.outcome == "ok", retry.error
    finally:
        sandbox.close()
        backend.close()


def test_the_reference_run_is_a_full_refresh():
    """oracle='full-refresh': the clean run rebuilds the model (dbt drops and recreates it,
    so no MERGE is sent), while the scheduled runs merge."""
    from idemtest.engine.model import RunStep

    p = plan("fct_orders")
    backend, sandbox, env = _env(p)
    try:
        env.sync(None)
        for i, w in enumerate(p.spec.all_windows[:2]):
            env.clean = True
            rec = env.execute(i + 1, RunStep(w.index, w.end), 1, w.end, None)
            assert rec.outcome == "ok", rec.error
            assert not any(is_merge(b.text) for b in rec.trace)
        env.clean = False
        w = p.spec.all_windows[1]
        rec = env.execute(3, RunStep(w.index, w.end), 1, w.end, None)
        assert rec.outcome == "ok" and any(is_merge(b.text) for b in rec.trace)
    finally:
        sandbox.close()
        backend.close()


def test_a_correct_model_passes_with_crashes_injected_and_a_buggy_one_is_caught(tmp_path):
    p = plan("fct_orders")
    stats = idemtest.verify(p.spec, p.load, examples=4, systematic_max=4, failures_dir=tmp_path, seed=1, shrink_seconds=5)
    assert stats.crashes > 0 and stats.retries > 0
    bad = plan("fct_orders_no_lookback")
    with pytest.raises(idemtest.IdempotencyViolation) as info:
        idemtest.verify(bad.spec, bad.load, examples=4, systematic_max=4, failures_dir=tmp_path, seed=1, shrink_seconds=5)
    assert info.value.prop == "P1" and "missing" in info.value.report
    # the saved failure replays exactly
    assert info.value.saved is not None
    with pytest.raises(idemtest.IdempotencyViolation):
        idemtest.replay(info.value.saved, bad.spec, bad.load)


def test_window_vars_reach_the_model():
    from idemtest.adapters.dbt import _window_vars
    from idemtest.spec import Window

    w = Window(0, datetime(2026, 6, 1), datetime(2026, 6, 1, 1))
    assert _window_vars(w, None) == {"window_start": "2026-06-01 00:00:00", "window_end": "2026-06-01 01:00:00"}
    assert _window_vars(w, lambda win: {"day": win.start.date().isoformat()})["day"] == "2026-06-01"
