from __future__ import annotations

import textwrap

# Native extensions cannot be imported twice in one process; pytester's
# in-process runs drop modules first imported inside them, so import them here.
import duckdb  # noqa: F401
import pytest
import time_machine  # noqa: F401

import idemtest
import idemtest.sandbox.duckdb

# The same goes for idemtest's own lazily imported modules: a class imported
# first inside one pytester run would be a different class in the next one.
for _name in idemtest.__all__:
    getattr(idemtest, _name)

PIPELINE = textwrap.dedent(
    '''
    import idemtest
    from idemtest import Spec, Source, Target, hourly

    SETUP = """
    CREATE SCHEMA src; CREATE SCHEMA analytics;
    CREATE TABLE src.orders(order_id BIGINT, status VARCHAR, amount DECIMAL(12,2), updated_at TIMESTAMP);
    CREATE TABLE analytics.orders(order_id BIGINT, status VARCHAR, amount DECIMAL(12,2), updated_at TIMESTAMP);
    """
    spec = Spec(
        setup=SETUP,
        sources=[Source("src.orders", columns={"order_id": "BIGINT", "status": "VARCHAR",
                        "amount": "DECIMAL(12,2)", "updated_at": "TIMESTAMP"},
                        key="order_id", event_time="updated_at", max_rows=6)],
        targets=[Target("analytics.orders", key="order_id")],
        schedule=hourly("2026-06-01", periods=3),
        max_lateness="1h",
        concurrency="none",  # the delete-then-insert below writes every key: not safe for overlapping runs
    )

    def upsert(run):
        # correct: delete the keys we are about to write and insert them, in one transaction
        run.conn.execute("BEGIN")
        run.conn.execute("DELETE FROM analytics.orders WHERE order_id IN (SELECT order_id FROM src.orders)")
        run.conn.execute("INSERT INTO analytics.orders SELECT * FROM src.orders")
        run.conn.execute("COMMIT")

    def append(run):
        # buggy: a bare INSERT of the window; a retry or a duplicate run appends again
        run.conn.execute(
            "INSERT INTO analytics.orders SELECT * FROM src.orders WHERE updated_at >= ? AND updated_at < ?",
            [run.window.start, run.window.end],
        )
    '''
)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytest project with one correct and one buggy pipeline module."""
    pytester.makepyfile(pipelines=PIPELINE)
    pytester.syspathinsert()
    return pytester
