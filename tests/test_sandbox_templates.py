"""DuckDB sandboxes after the first are copied from a template of the setup script
(`COPY FROM DATABASE`): what a load sees must be exactly what re-running the setup gives,
and a setup a copy cannot reproduce must run every time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from idemtest import Source, Spec, Target, hourly
from idemtest.sandbox.duckdb import DuckDBBackend

SEEDED = """
CREATE SCHEMA dim;
CREATE SEQUENCE dim.ids START 100;
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TABLE dim.channel (id BIGINT PRIMARY KEY DEFAULT nextval('dim.ids'), name VARCHAR NOT NULL, m mood);
INSERT INTO dim.channel (name, m) VALUES ('web', 'calm'), ('shop', 'busy');
CREATE VIEW dim.names AS SELECT name FROM dim.channel;
CREATE MACRO dim.twice(x) AS 2 * x;
CREATE TABLE dim.facts (id BIGINT PRIMARY KEY, channel_id BIGINT);
CREATE TABLE dim.feed (id BIGINT, channel_id BIGINT);
"""


@pytest.fixture
def backend() -> Iterator[DuckDBBackend]:
    b = DuckDBBackend()
    yield b
    b.close()


def spec(setup: str) -> Spec:
    return Spec(
        name="tpl",
        setup=setup,
        dialect="duckdb",
        sources=[Source("dim.feed", columns={"id": "BIGINT", "channel_id": "BIGINT"}, key="id", snapshot=True)],
        targets=[Target("dim.facts", key="id")],
        schedule=hourly("2026-06-01", periods=1),
    )


def test_second_sandbox_is_a_copy_with_rows_sequences_views_types_and_macros(backend: DuckDBBackend) -> None:
    first = backend.create()
    first.prepare(spec(SEEDED))
    assert backend.template(SEEDED) is not None
    first.execute("INSERT INTO dim.channel (name) VALUES ('a load wrote this')")  # after the template: not copied
    second = backend.create()
    second.prepare(spec(SEEDED), validate=False)
    assert second.query("SELECT id, name, m FROM dim.channel ORDER BY id")[1] == [(100, "web", "calm"), (101, "shop", "busy")]
    assert second.query("SELECT count(*) FROM dim.names")[1] == [(2,)]
    assert second.query("SELECT dim.twice(21), 'busy'::mood")[1] == [(42, "busy")]
    second.execute("INSERT INTO dim.channel (name) VALUES ('next')")
    assert second.query("SELECT max(id) FROM dim.channel")[1] == [(102,)]  # the sequence goes on as after the setup
    with pytest.raises(Exception, match="(?i)constraint|duplicate"):
        second.execute("INSERT INTO dim.channel (id, name) VALUES (100, 'dup')")  # the primary key came along
    assert second.query("SELECT count(*) FROM _idemtest.state")[1] == [(0,)]  # the state store too


def test_schema_only_setup_is_copied_without_rows(backend: DuckDBBackend) -> None:
    ddl = "CREATE SCHEMA dim; CREATE TABLE dim.facts (id BIGINT PRIMARY KEY, channel_id BIGINT); CREATE TABLE dim.feed (id BIGINT, channel_id BIGINT);"
    a = backend.create()
    a.prepare(spec(ddl))
    found = backend.template(ddl)
    assert found is not None and found[1] is False  # no seed rows: copied as schema only
    b = backend.create()
    b.prepare(spec(ddl))
    assert b.table_columns("dim.facts") == ["id", "channel_id"]


@pytest.mark.parametrize(
    "setup",
    [
        "SET default_null_order = 'nulls_first'; CREATE SCHEMA dim; CREATE TABLE dim.facts (id BIGINT, channel_id BIGINT); CREATE TABLE dim.feed (id BIGINT, channel_id BIGINT);",
        "CREATE SCHEMA dim; CREATE TABLE dim.facts (id BIGINT, channel_id BIGINT); CREATE TABLE dim.feed (id BIGINT, channel_id BIGINT); CREATE TEMP TABLE scratch (x INT);",
    ],
    ids=["SET", "temp table"],
)
def test_a_setup_a_copy_cannot_reproduce_runs_every_time(backend: DuckDBBackend, setup: str) -> None:
    backend.create().prepare(spec(setup))
    assert backend.template(setup) is None


def test_templates_are_bounded(backend: DuckDBBackend) -> None:
    from idemtest.sandbox import duckdb as mod

    for i in range(mod.MAX_TEMPLATES + 3):
        backend.create().prepare(spec(f"CREATE SCHEMA dim; CREATE TABLE dim.facts (id BIGINT, channel_id BIGINT, v{i} INT); CREATE TABLE dim.feed (id BIGINT, channel_id BIGINT);"))
    assert len(backend._templates) == mod.MAX_TEMPLATES
    attached = backend.instance.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name LIKE 'idemtest_t%'").fetchone()
    assert attached == (mod.MAX_TEMPLATES,)


def test_source_rows_load_in_one_statement_with_types_cast_by_the_table(backend: DuckDBBackend) -> None:
    from datetime import datetime
    from decimal import Decimal

    sb = backend.create()
    sb.execute("CREATE SCHEMA src")
    sb.execute("CREATE TABLE src.orders (id BIGINT, amount DECIMAL(12, 2), ts TIMESTAMP, note VARCHAR)")
    src = Source("src.orders", columns={"id": "BIGINT", "amount": "DECIMAL(12,2)", "ts": "TIMESTAMP", "note": "VARCHAR"}, key="id", event_time="ts")
    rows = [{"id": i, "amount": i * 1.5, "ts": datetime(2026, 6, 1, i % 24), "note": None if i % 2 else f"n{i}"} for i in range(2500)]
    sb.load_source(src, rows)
    assert sb.query("SELECT count(*), sum(amount), count(note) FROM src.orders")[1] == [(2500, Decimal("4685625.00"), 1250)]
    sb.load_source(src, rows[:3])  # replaces, not appends
    assert sb.query("SELECT id, amount, note FROM src.orders ORDER BY id")[1] == [(0, Decimal("0.00"), "n0"), (1, Decimal("1.50"), None), (2, Decimal("3.00"), "n2")]
