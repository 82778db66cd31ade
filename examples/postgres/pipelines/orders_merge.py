"""Correct: `MERGE` of the orders table, driven by an event-time watermark.

The watermark is the largest `updated_at` loaded so far — never the wall clock
(the bug behind airbytehq/airbyte#14732 and estuary/connectors#5205 is a cursor
that skips rows committed at or just before it). Every run re-reads from
`watermark - lookback`, with `lookback >= max_lateness`, so a row that lands up
to `max_lateness` after its `updated_at` is still picked up (dbt-core#10867 is
what a lookback of 0 does). The new watermark is `GREATEST(old, max loaded)`,
saved in the same transaction as the MERGE: a crash loses both or neither
(the opposite of datamill-co/target-postgres PR 120, which emitted state before
the data was flushed).

Concurrent runs serialise on `SELECT … FOR UPDATE` of the watermark row, and the
`WHEN MATCHED AND t.updated_at < s.updated_at` guard keeps a newer version.
psycopg 3 on its own connection, as an Airflow task would open it.
"""

from __future__ import annotations

from datetime import timedelta

PIPELINE = "orders_merge"

MERGE_ORDERS = """
MERGE INTO analytics.orders AS t
USING (
    SELECT order_id, customer_email, status, amount, updated_at
    FROM src.orders
    WHERE %(since)s::timestamp IS NULL OR updated_at >= %(since)s::timestamp
) AS s
ON t.order_id = s.order_id
WHEN MATCHED AND t.updated_at < s.updated_at THEN
    UPDATE SET customer_email = s.customer_email, status = s.status,
               amount = s.amount, updated_at = s.updated_at
WHEN NOT MATCHED THEN
    INSERT (order_id, customer_email, status, amount, updated_at)
    VALUES (s.order_id, s.customer_email, s.status, s.amount, s.updated_at)
"""


def load_orders(dsn: str, *, lookback: timedelta) -> int:
    """CORRECT: merge the orders changed since the watermark (minus the lookback),
    the watermark moved in the same transaction; returns the rows merged.
    The opposite of datamill-co/target-postgres PR 120 and dbt-core#10867."""
    import psycopg  # here, not at the top: importing the examples needs no driver

    with psycopg.connect(dsn) as conn, conn.transaction():
        (high_water,) = conn.execute(
            "SELECT high_water FROM etl.watermarks WHERE pipeline = %s FOR UPDATE", [PIPELINE]
        ).fetchone()
        since = None if high_water is None else high_water - lookback
        merged = conn.execute(MERGE_ORDERS, {"since": since}).rowcount
        conn.execute(
            """UPDATE etl.watermarks
               SET high_water = GREATEST(high_water, (
                   SELECT max(updated_at) FROM src.orders
                   WHERE %(since)s::timestamp IS NULL OR updated_at >= %(since)s::timestamp))
               WHERE pipeline = %(pipeline)s""",
            {"since": since, "pipeline": PIPELINE},
        )
        return merged
