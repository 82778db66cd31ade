"""Loads of the CRM's full customer export: one CSV re-downloaded whole every day
(`crm/customers.csv`), without a change timestamp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

READ = "read_csv(?, header = true, columns = {'customer_id': 'BIGINT', 'email': 'VARCHAR', 'city': 'VARCHAR'})"


def replace_from_export(conn: Any, landing: Path) -> None:
    """CORRECT: the export is the whole truth, so the table is rebuilt from it
    with CREATE OR REPLACE (one statement: readers see the old table or the new).
    The load creates the table itself; it is not in the setup DDL."""
    conn.execute(f"CREATE OR REPLACE TABLE analytics.crm_customers AS SELECT * FROM {READ}", [str(landing / "crm" / "customers.csv")])


def upsert_from_export(conn: Any, landing: Path) -> None:
    """BUG (full export merged by key): rows are upserted by customer_id, so a
    customer deleted upstream (gone from the export) stays in the table forever —
    the hard-delete gap of dbt-labs/dbt-core#249."""
    conn.execute("CREATE TABLE IF NOT EXISTS analytics.crm_customers (customer_id BIGINT PRIMARY KEY, email VARCHAR, city VARCHAR)")
    conn.execute(f"INSERT OR REPLACE INTO analytics.crm_customers SELECT * FROM {READ}", [str(landing / "crm" / "customers.csv")])
