"""Pure helpers: templating, placeholder handling, SQL splitting, table matching."""

from __future__ import annotations

import pytest

from idemtest.review.model import RULES, Severity
from idemtest.review.source import is_suppressed, suppressions
from idemtest.review.sqlparse import parse_sql, same_table
from idemtest.review.templating import ident, normalise_placeholders, render_jinja


@pytest.mark.parametrize(
    ("src", "want"),
    [
        ("select * from {{ ref('orders') }}", "select * from orders"),
        ("select * from {{ ref('pkg', 'orders') }}", "select * from orders"),
        ("select * from {{ source('shop', 'orders') }}", "select * from shop.orders"),
        ("select max(x) from {{ this }}", "select max(x) from this_model"),
        ("where d = '{{ ds }}'", "where d = 'ds'"),
        ("where d > {{ var('since') }}", "where d > since"),
        ("a{% if is_incremental() %} b{% else %} c{% endif %}", "a b"),
        ("a{# note #}b", "a b"),
        ("{% macro m() %}x{% endmacro %}y", "y"),
    ],
)
def test_render_jinja(src: str, want: str) -> None:
    assert " ".join(render_jinja(src).text.split()) == " ".join(want.split())


def test_render_jinja_keeps_lines_and_reads_config() -> None:
    src = "{{\n config(materialized='incremental',\n unique_key=['a', 'b']) }}\nselect 1\n"
    r = render_jinja(src)
    assert r.text.count("\n") == src.count("\n")
    assert r.config["materialized"] == "incremental"
    assert "a" in r.config["unique_key"]
    assert r.config_line == 1


@pytest.mark.parametrize(
    ("src", "want"),
    [
        ("x = %s", "x = ?"),
        ("x = %(since)s", "x = :since"),
        ("x like 'a%%'", "x like 'a%'"),
        ("insert into {table} values (1)", "insert into table_ref values (1)"),
        ("insert into {self.target} values (1)", "insert into self_target values (1)"),
        ("from {{ ref('a') }}", "from a"),
    ],
)
def test_normalise_placeholders(src: str, want: str) -> None:
    assert normalise_placeholders(src) == want


@pytest.mark.parametrize(
    ("expr", "want"),
    [("table", "table_ref"), ("self.table_name", "self_table_name"), ("cfg['t']", "cfg_t"),
     ("1day", "x_1day"), ("", "idm_ph")],
)
def test_ident(expr: str, want: str) -> None:
    assert ident(expr) == want


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [("orders", "orders", True), ("analytics.orders", "orders", True),
     ("analytics.orders", "raw.orders", False), ("orders", "order_items", False)],
)
def test_same_table(a: str, b: str, same: bool) -> None:
    assert same_table(a, b) is same


def test_parse_sql_lines_and_errors() -> None:
    parsed = parse_sql("select 1;\n\ninsert into t\nselect 2;\nselec oops (((;", first_line=10)
    assert [s.line for s in parsed.statements] == [10, 12]
    assert [line for line, _ in parsed.errors] == [14]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "snowflake", "bigquery", "spark"])
def test_parse_each_dialect(dialect: str) -> None:
    parsed = parse_sql("INSERT INTO t SELECT a FROM s WHERE a > 1", dialect)
    assert len(parsed.statements) == 1 and not parsed.errors


@pytest.mark.parametrize(
    ("line_text", "line", "rule", "silenced"),
    [
        ("x  # idemtest: ignore[IDM201]", 1, "IDM201", True),
        ("x  -- idemtest: ignore[IDM201, IDM301]", 1, "IDM301", True),
        ("x  # idemtest: ignore[IDM201]", 1, "IDM202", False),
        ("x  # idemtest: ignore", 1, "IDM999", True),
        ("# idemtest: ignore[IDM201]\nx", 2, "IDM201", True),
        ("# idemtest: ignore[IDM201]\n\nx", 3, "IDM201", False),
    ],
)
def test_suppressions(line_text: str, line: int, rule: str, silenced: bool) -> None:
    assert is_suppressed(suppressions(line_text), line, rule) is silenced


def test_every_rule_is_documented() -> None:
    for rid, rule in RULES.items():
        assert rid.startswith("IDM") and len(rid) == 6
        assert rule.issue and rule.risk and rule.fix
        assert isinstance(rule.severity, Severity)
        if rule.scenario:
            assert rule.scenario in rule.fix_text


def test_docs_list_every_rule() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "review.md").read_text(encoding="utf-8")
    for rid in RULES:
        assert f"`{rid}`" in doc
