"""The dlt adapter (`idemtest[dlt]`) on DuckDB: real dlt pipelines (extract, normalize,
load through dlt's duckdb destination) of examples/dlt/shop.py run into the sandbox.
A dlt run costs ~0.3-1 s. CI installs `.[dlt]` in its own step (.ci/run,
IDEMTEST_REQUIRE_DLT=1: fail, never skip); without dlt these skip, except the
declaration errors, which need no dlt. The checks of every example resource (correct
passes, buggy caught) run as examples/dlt/test_shop.py."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest

import idemtest
from idemtest import MissingExtraError, SpecError
from idemtest.adapters.dlt import DltError, definition_of, source_rows

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.dlt.test_shop import EVENTS, FETCH_EVENTS, FETCH_ORDERS, ORDERS  # noqa: E402


def needs_dlt() -> None:
    if os.environ.get("IDEMTEST_REQUIRE_DLT") == "1":
        return  # CI's dlt step: a missing dlt fails, never skips
    pytest.importorskip("dlt", reason="needs idemtest[dlt]: pip install 'idemtest[dlt]'")


def declare(resource: str, **kw):
    defaults = {"sources": [ORDERS], "readers": FETCH_ORDERS, "dataset_name": "shop", "max_lateness": "1h"}
    return idemtest.dlt.check(source=f"examples.dlt.shop:{resource}", **{**defaults, **kw})


def plan(resource: str, dialect: str = "duckdb", **kw):
    needs_dlt()
    definition = definition_of(declare(resource, **kw))
    assert definition is not None
    return definition.plan(dialect)


def append_plan(**kw):
    return plan("events_append", sources=[EVENTS], readers=FETCH_EVENTS, tables={"events": "event_id"}, max_lateness=0, **kw)


# --- declaration errors: clear, before any dlt runs ---------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"worker": "nearby"}, "worker='nearby'"),
        ({"readers": {"examples.dlt.api.fetch_orders": "src.nope"}}, "names no declared source"),
        ({"sources": "src.orders"}, "declare the source tables"),
        ({"exercise": ["crash", "concurrent"]}, "one dlt pipeline at a time"),
        ({"dataset_name": "my-data"}, "plain identifier"),
    ],
)
def test_bad_declarations_name_the_fix(kw, message):
    with pytest.raises(SpecError, match=message):
        declare("orders_full", **kw)


def test_missing_extra_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlt", None)  # as if dlt were not installed
    definition = definition_of(declare("orders_full"))
    assert definition is not None
    with pytest.raises(MissingExtraError, match=r"pip install 'idemtest\[dlt\]'"):
        definition.plan("duckdb")


def test_destination_not_supported_names_the_supported_ones():
    with pytest.raises(DltError, match="run on DuckDB .* and PostgreSQL"):
        plan("orders_full", dialect="spark")


def test_resource_not_found_names_it():
    with pytest.raises(DltError, match="has no 'orders_nowhere'"):
        plan("orders_nowhere")
    with pytest.raises(DltError, match="cannot be imported"):
        needs_dlt()
        definition = definition_of(idemtest.dlt.check(source="examples.dlt.nowhere:orders", sources=[ORDERS]))
        assert definition is not None
        definition.plan("duckdb")


def test_a_table_the_source_does_not_load_is_named():
    with pytest.raises(DltError, match=r"tables= names 'customers', which the source does not load"):
        plan("orders_full", tables={"customers": "customer_id"})


def test_not_a_dlt_source_is_refused():
    needs_dlt()
    definition = definition_of(idemtest.dlt.check(source=42, sources=[ORDERS]))
    assert definition is not None
    with pytest.raises(DltError, match="is not a dlt source"):
        definition.plan("duckdb")


def test_source_rows_outside_a_run_says_where_it_works():
    with pytest.raises(DltError, match="outside an idemtest dlt run"):
        source_rows("src.orders")


def test_targets_come_from_the_resource_hints():
    p = plan("orders_full")
    (target,) = p.spec.targets
    assert target.table == "shop.orders" and target.keys == ("order_id",)
    assert {"_dlt_load_id", "_dlt_id"} <= set(target.ignore)
    assert p.spec.concurrency == "none" and "concurrent" not in p.spec.exercise


# --- real dlt runs ---------------------------------------------------------------------------


def _play(p, steps):
    """One scenario on a fresh DuckDB sandbox; returns its Outcome."""
    from idemtest.engine.execute import run_scenario
    from idemtest.engine.model import Scenario
    from idemtest.engine.systematic import systematic_dataset
    from idemtest.sandbox import get_backend

    sandbox = get_backend("duckdb").create(p.spec)
    try:
        sandbox.prepare(p.spec)
        return run_scenario(p.spec, sandbox, p.load, Scenario(systematic_dataset(p.spec), list(steps)))
    finally:
        sandbox.close()


def _loads_row(p) -> int:
    """The boundary of window 0's nominal run that inserts its `_dlt_loads` row."""
    from idemtest.engine.model import RunStep

    w0 = p.spec.all_windows[0]
    out = _play(p, [RunStep(0, p.spec.run_time(w0))])
    (attempt,) = out.attempts
    hits = [b.index for b in attempt.trace if '"_dlt_loads"' in b.text and b.text.lstrip().upper().startswith("INSERT")]
    assert hits, [b.describe() for b in attempt.trace]
    # dlt's own statements are crash points: its CREATEs, its INSERTs, its COMMITs
    kinds = " ".join(b.text for b in attempt.trace)
    assert 'COMMIT of INSERT INTO "shop"."events"' in kinds
    return hits[0]


def test_crash_before_the_loads_row_on_a_fresh_worker_duplicates_an_append(tmp_path):
    """dlt-hub/dlt#4052: the events are committed, the run dies before `_dlt_loads` records
    the load; a fresh worker restores the old cursor from the destination and appends again.
    On the same worker the pending package is finished instead: no duplicates."""
    from idemtest.engine.model import Fault, RunStep

    p = append_plan(worker="both")
    k = _loads_row(p)
    w0 = p.spec.all_windows[0]
    # a crash after statement k-1 runs the retry on a fresh worker ...
    fresh = _play(p, [RunStep(0, p.spec.run_time(w0), (Fault(k - 1, "after"),))])
    assert p.stats.fresh == 1
    assert fresh.finding is not None and fresh.finding.prop == "P2", fresh.finding
    assert "events" in fresh.finding.headline
    # ... and a crash before statement k (the same database state) on the same worker
    same = _play(p, [RunStep(0, p.spec.run_time(w0), (Fault(k, "before"),))])
    assert p.stats.same == 1
    assert same.finding is None


def test_buggy_append_is_caught_minimal_and_replays(tmp_path):
    p = append_plan()
    with pytest.raises(idemtest.IdempotencyViolation) as caught:
        idemtest.verify(p.spec, p.load, examples=2, systematic_max=20, failures_dir=tmp_path, test_id="append", shrink_seconds=5)
    report = str(caught.value)
    assert "P2" in report or "P1" in report
    assert "crash" in report.lower()
    saved = list(tmp_path.glob("*.json"))
    assert len(saved) == 1
    import json

    steps = json.loads(saved[0].read_text())["scenario"]["steps"]
    assert sum(len(s.get("faults", [])) for s in steps) == 1, steps  # one fault: minimal
    with pytest.raises(idemtest.IdempotencyViolation):
        idemtest.replay(saved[0], p.spec, p.load)


def test_correct_incremental_with_lag_passes(tmp_path):
    # crash points first (the examples run every family at the defaults)
    p = plan("orders_incremental", exercise=["crash"])
    stats = idemtest.verify(p.spec, p.load, examples=1, systematic_max=6, failures_dir=tmp_path, max_seconds=60)
    assert stats.crashes > 0
    assert p.stats.runs > 10
    assert not list(tmp_path.glob("*.json"))


def test_pipelines_dirs_are_removed_with_their_sandboxes():
    from idemtest.adapters import dlt as adapter

    p = plan("orders_full")
    from idemtest.engine.model import RunStep

    root = adapter._scratch_root()
    before = set(root.iterdir())
    out = _play(p, [RunStep(0, p.spec.run_time(p.spec.all_windows[0]))])
    assert out.attempts[0].outcome == "ok"
    gc.collect()
    assert root.is_dir() and set(root.iterdir()) <= before  # the sandbox's pipelines_dir went with it


def test_a_factory_of_the_run_with_source_rows():
    """`source=` a function of the run, whose resource reads `idemtest.dlt.source_rows`."""
    needs_dlt()
    import dlt

    from idemtest.engine.model import RunStep

    seen = []

    @dlt.resource(name="orders", primary_key="order_id", write_disposition="merge")
    def orders():
        rows = idemtest.dlt.source_rows("src.orders")
        seen.append(len(rows))
        yield rows

    def factory(run):
        assert run.path is not None  # the sandbox, for resources that connect themselves
        return orders()

    with pytest.raises(SpecError, match="name the tables it loads"):
        definition_of(idemtest.dlt.check(source=factory, sources=[ORDERS], dataset_name="shop")).plan("duckdb")
    definition = definition_of(idemtest.dlt.check(source=factory, sources=[ORDERS], tables={"orders": "order_id"}, dataset_name="shop"))
    p = definition.plan("duckdb")
    out = _play(p, [RunStep(w.index, p.spec.run_time(w)) for w in p.spec.all_windows[:2]])
    assert [a.outcome for a in out.attempts] == ["ok", "ok"]
    assert seen[0] < seen[1]  # rows arrive over time: the second run sees more
    _, rows = out.final["shop.orders"]
    assert len(rows) == seen[1]
