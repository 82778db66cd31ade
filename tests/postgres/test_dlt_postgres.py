"""The dlt adapter on PostgreSQL: examples/dlt/shop.py loaded by dlt's postgres
destination into the sandbox database (credentials built by idemtest from the sandbox's
DSN, no password asked of the user; psycopg2's connect intercepted): dlt's statements
are crash points, the fresh-worker retry of dlt-hub/dlt#4052 duplicates an append, a
correct upsert passes, the buggy append is caught. Needs idemtest[dlt] (CI installs it
in its own step, IDEMTEST_REQUIRE_DLT=1)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import idemtest
from idemtest.adapters.dlt import PLACEHOLDER_PASSWORD, definition_of

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.dlt.test_shop import EVENTS, FETCH_EVENTS, FETCH_ORDERS, ORDERS  # noqa: E402


def plan(resource: str, **kw):
    if os.environ.get("IDEMTEST_REQUIRE_DLT") != "1":
        pytest.importorskip("dlt", reason="needs idemtest[dlt]: pip install 'idemtest[dlt]'")
    defaults = {"sources": [ORDERS], "readers": FETCH_ORDERS, "dataset_name": "shop", "max_lateness": "1h"}
    definition = definition_of(idemtest.dlt.check(source=f"examples.dlt.shop:{resource}", **{**defaults, **kw}))
    assert definition is not None
    return definition.plan("postgres")


def append_plan(**kw):
    return plan("events_append", sources=[EVENTS], readers=FETCH_EVENTS, tables={"events": "event_id"}, max_lateness=0, **kw)


def test_dlt_postgres_statements_are_crash_points_and_fresh_worker_duplicates(backend):
    from idemtest.engine.execute import run_scenario
    from idemtest.engine.model import Fault, RunStep, Scenario
    from idemtest.engine.systematic import systematic_dataset

    p = append_plan()
    data = systematic_dataset(p.spec)
    w0 = p.spec.all_windows[0]

    def play(steps):
        sandbox = backend.create(p.spec)
        try:
            if sandbox.prepared_for is None:
                sandbox.prepare(p.spec)
            return run_scenario(p.spec, sandbox, p.load, Scenario(data, steps))
        finally:
            sandbox.close()

    nominal = play([RunStep(0, p.spec.run_time(w0))])
    (attempt,) = nominal.attempts
    assert attempt.outcome == "ok", attempt.error
    text = " ".join(b.text for b in attempt.trace)
    assert 'INSERT INTO "SHOP"."EVENTS"' in text.upper() and "COMMIT" in text.upper()
    assert PLACEHOLDER_PASSWORD not in text
    k = next(b.index for b in attempt.trace if '"_dlt_loads"' in b.text and b.text.lstrip().upper().startswith("INSERT"))
    out = play([RunStep(0, p.spec.run_time(w0), (Fault(k - 1, "after"),))])
    assert p.stats.fresh == 1
    assert out.finding is not None and out.finding.prop == "P2", out.finding


def test_dlt_postgres_correct_passes_and_buggy_is_caught(pg_dsn, tmp_path):
    p = plan("orders_full", exercise=["crash"])  # crash points first
    stats = idemtest.verify(p.spec, p.load, db=pg_dsn, examples=1, systematic_max=6, failures_dir=tmp_path, seed=1, shrink_seconds=5, max_seconds=60)
    assert stats.crashes > 0
    bad = append_plan(exercise=["crash"])  # crash points first
    with pytest.raises(idemtest.IdempotencyViolation):
        idemtest.verify(bad.spec, bad.load, db=pg_dsn, examples=2, systematic_max=20, failures_dir=tmp_path, seed=1, shrink_seconds=5)
