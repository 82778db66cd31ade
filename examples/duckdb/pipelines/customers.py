"""Incremental copy of the CRM's `src.customers` (change column: `updated_on`,
a DATE) into `analytics.customers`, with a cursor kept in `state` (see
orders.py: anything with get/set; `run.state` under idemtest)."""

from __future__ import annotations

from datetime import date
from typing import Any

CURSOR = "customers.updated_on"
COLUMNS = "customer_id, email, city, updated_on"


def load_customers_since_cursor(conn: Any, state: Any, *, inclusive: bool = False) -> None:
    """BUG (strict `>` cursor): the bug behind airbytehq/airbyte#14732 and
    estuary/connectors#5205 — rows committed at MAX(cursor) after the sync
    read it are dropped.

    The cursor is the largest `updated_on` loaded, saved in the same
    transaction as the data (that part is right). The next run reads
    `updated_on > cursor`. But the CRM keeps writing rows dated today after
    the nightly sync has read today's first ones: their date equals the
    cursor, so they are skipped forever. `inclusive=True` is the fix (`>=`;
    the guarded upsert makes re-reading the boundary day harmless).
    """
    op = ">=" if inclusive else ">"
    conn.execute("BEGIN TRANSACTION")
    try:
        cursor = state.get(CURSOR) or date(1970, 1, 1)
        conn.execute(
            f"""
            INSERT INTO analytics.customers ({COLUMNS})
            SELECT {COLUMNS} FROM src.customers WHERE updated_on {op} ?
            ON CONFLICT (customer_id) DO UPDATE SET
                email = excluded.email, city = excluded.city, updated_on = excluded.updated_on
            WHERE excluded.updated_on > analytics.customers.updated_on
            """,
            [cursor],
        )
        (high,) = conn.execute("SELECT max(updated_on) FROM src.customers").fetchone()
        if high is not None and high > cursor:
            state.set(CURSOR, high)
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
