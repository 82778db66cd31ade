"""Correct: upsert with a version guard; the watermark moves with the load, from the data."""

from datetime import timedelta

import psycopg
from prefect import flow, task

LOOKBACK = timedelta(hours=2)

UPSERT = """
INSERT INTO analytics.orders (order_id, status, amount, updated_at)
VALUES (%(order_id)s, %(status)s, %(amount)s, %(updated_at)s)
ON CONFLICT (order_id) DO UPDATE
SET status = EXCLUDED.status,
    amount = EXCLUDED.amount,
    updated_at = EXCLUDED.updated_at
WHERE analytics.orders.updated_at < EXCLUDED.updated_at
"""


@task(retries=3, retry_delay_seconds=60)
def sync_orders(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        wm = conn.execute(
            "SELECT last_value FROM etl_state WHERE job = 'orders'"
        ).fetchone()[0]
        rows = conn.execute(
            """
            SELECT order_id, status, amount, updated_at
            FROM shop.orders
            WHERE updated_at >= %(since)s
            """,
            {"since": wm - LOOKBACK},
        ).fetchall()
        with conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(UPSERT, [dict(zip(("order_id", "status", "amount", "updated_at"), r)) for r in rows])
            if rows:
                conn.execute(
                    "UPDATE etl_state SET last_value = %(wm)s WHERE job = 'orders'",
                    {"wm": max(r[3] for r in rows)},
                )
    return len(rows)


@flow
def orders(dsn: str = "postgresql://etl@warehouse/analytics") -> None:
    sync_orders(dsn)


if __name__ == "__main__":
    orders.deploy(name="orders", work_pool_name="etl", cron="*/15 * * * *", concurrency_limit=1)
