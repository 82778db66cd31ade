"""The dbt adapter on PostgreSQL: examples/dbt/shop run by dbt-postgres against the
sandbox database (psycopg2 connects intercepted; trust auth, placeholder password):
dbt's statements are crash points, the correct merge model passes, a buggy one is
caught. Needs idemtest[dbt] (CI installs it in its own step, IDEMTEST_REQUIRE_DBT=1)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import idemtest
from idemtest.adapters.dbt import definition_of

pytestmark = pytest.mark.postgres

SHOP = Path(__file__).resolve().parents[2] / "examples" / "dbt" / "shop"


def plan(select: str, **kw):
    if os.environ.get("IDEMTEST_REQUIRE_DBT") != "1":
        pytest.importorskip("dbt.adapters.postgres", reason="needs idemtest[dbt]: pip install 'idemtest[dbt]'")
    definition = definition_of(idemtest.dbt.check(project_dir=SHOP, select=select, max_lateness="1h", **kw))
    assert definition is not None
    return definition.plan("postgres")


def test_dbt_postgres_statements_are_crash_points(pg_dsn, backend):
    from idemtest.engine.execute import Env
    from idemtest.engine.model import Fault, RunStep
    from idemtest.engine.systematic import systematic_dataset

    p = plan("fct_orders")
    sandbox = backend.create(p.spec)
    try:
        if sandbox.prepared_for is None:  # not cloned from a prepared template
            sandbox.prepare(p.spec)
        env = Env(p.spec, sandbox, systematic_dataset(p.spec), p.load)
        w0, w1 = p.spec.all_windows[:2]
        env.sync(w0.end)
        assert env.execute(1, RunStep(0, w0.end), 1, w0.end, None).outcome == "ok"
        env.sync(w1.end)
        ok = env.execute(2, RunStep(1, w1.end), 1, w1.end, None)
        assert ok.outcome == "ok", ok.error
        assert "***" not in ok.error and "idemtest-unused" not in " ".join(b.text for b in ok.trace)
        merge_at = next(b.index for b in ok.trace if re.search(r"\bmerge\s+into\b", b.text, re.I))
        rows = sorted(sandbox.snapshot(p.spec.targets[0])[1])
        crashed = env.execute(3, RunStep(1, w1.end), 1, w1.end, Fault(merge_at, "after"))
        assert crashed.outcome == "crash"
        assert sorted(sandbox.snapshot(p.spec.targets[0])[1]) == rows  # uncommitted MERGE lost with the process
    finally:
        sandbox.close()


def test_dbt_postgres_correct_passes_and_buggy_is_caught(pg_dsn, tmp_path):
    p = plan("fct_orders")
    stats = idemtest.verify(p.spec, p.load, db=pg_dsn, examples=3, systematic_max=3, failures_dir=tmp_path, seed=1, shrink_seconds=5)
    assert stats.crashes > 0
    bad = plan("fct_orders_append")
    with pytest.raises(idemtest.IdempotencyViolation):
        idemtest.verify(bad.spec, bad.load, db=pg_dsn, examples=3, systematic_max=3, failures_dir=tmp_path, seed=1, shrink_seconds=5)
