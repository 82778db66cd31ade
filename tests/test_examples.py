"""The examples/ project: every test is a spec'd check, buggy ones are strict
xfails, the pipelines run on a plain DuckDB database without idemtest, and
`pytest examples` without --idempotency skips them with the reason."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import idemtest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import examples.test_buggy as buggy  # noqa: E402
import examples.test_correct as correct  # noqa: E402
from examples.pipelines import SCHEMA, customers, events, orders, payments, revenue  # noqa: E402

BUGGY = sorted(n for n in vars(buggy) if n.startswith("test_"))
CORRECT = sorted(n for n in vars(correct) if n.startswith("test_"))


def test_every_example_is_an_idemtest_check():
    assert len(CORRECT) == 4 and len(BUGGY) >= 13
    for mod, names in ((correct, CORRECT), (buggy, BUGGY)):
        for name in names:
            fn = getattr(mod, name)
            assert isinstance(fn.idemtest.spec, idemtest.Spec), name


@pytest.mark.parametrize("name", BUGGY)
def test_buggy_examples_are_strict_xfails_on_a_violation(name):
    marks = [m for m in getattr(getattr(buggy, name), "pytestmark", []) if m.name == "xfail"]
    assert len(marks) == 1, name
    mark = marks[0]
    assert mark.kwargs["strict"] is True
    assert mark.kwargs["raises"] is idemtest.IdempotencyViolation
    assert mark.kwargs["reason"][0].isdigit(), "the reason starts with the bug class number"


def test_pipelines_docstrings_name_a_real_thread():
    for mod in (customers, events, orders, payments, revenue):
        for name, fn in vars(mod).items():
            if callable(fn) and getattr(fn, "__module__", None) == mod.__name__ and not name.startswith("_"):
                doc = fn.__doc__ or ""
                assert doc.startswith(("CORRECT", "BUG")), f"{mod.__name__}.{name}"
                if doc.startswith("BUG"):
                    assert "#" in doc or " PR " in doc, f"{mod.__name__}.{name} names no thread"


def test_pipelines_run_without_idemtest(tmp_path):
    """Plain production-style use: a DuckDB file, a dict as the state store."""
    path = str(tmp_path / "wh.duckdb")
    con = duckdb.connect(path)
    con.execute(SCHEMA.read_text())
    t0 = datetime(2026, 6, 1)
    con.execute("INSERT INTO src.orders VALUES (1, 'a@example.com', 'new', 10.00, ?), (2, 'b@example.com', 'paid', 5.00, ?)", [t0, t0 + timedelta(minutes=30)])
    con.execute("INSERT INTO src.events VALUES (1, 1, 'purchase', 10.00, ?), (2, 2, 'purchase', 5.00, ?)", [t0, t0 + timedelta(minutes=30)])

    class DictState(dict):
        def set(self, k, v):
            self[k] = v

    state = DictState()
    assert orders.merge_orders(con, state) == 2
    assert orders.merge_orders(con, state) == 2
    assert state[orders.CURSOR] == t0 + timedelta(minutes=30)
    events.replace_event_partition(con, t0, t0 + timedelta(hours=1))
    events.replace_event_partition(con, t0, t0 + timedelta(hours=1))
    assert con.execute("SELECT count(*) FROM analytics.fct_order_events").fetchone() == (2,)
    con.close()
    revenue.rebuild_daily_revenue(path)
    con = duckdb.connect(path)
    assert con.execute("SELECT day, events, revenue FROM analytics.daily_revenue").fetchall() == [(t0.date(), 2, 15)]
    con.close()


def test_examples_are_skipped_without_the_flag():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "examples", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # every check is skipped (the PostgreSQL examples too), none runs
    import re

    m = re.search(r"(\d+) skipped in", proc.stdout)
    assert m and int(m.group(1)) >= len(BUGGY) + len(CORRECT), proc.stdout
    assert "passed" not in proc.stdout and "failed" not in proc.stdout
    assert "--idempotency" in proc.stdout


def test_examples_run_under_the_plugin(tmp_path):
    """One correct and one buggy example end to end through pytest --idempotency."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--idempotency", "examples", "-q", "-p", "no:cacheprovider", "-rxX",
         "-k", "test_guarded_upsert_payments or test_on_conflict_do_nothing"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout and "1 xfailed" in proc.stdout, proc.stdout
    assert "6 ON CONFLICT DO NOTHING" in proc.stdout
