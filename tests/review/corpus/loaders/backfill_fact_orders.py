"""Re-run fact_orders for a date range, one day at a time."""

import argparse
from datetime import date, timedelta

import psycopg


def backfill(conn: psycopg.Connection, start: date, end: date) -> None:
    day = start
    while day <= end:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM fact_orders WHERE order_date = %s", (day,))  # expect: IDM502
            conn.commit()
            cur.execute(
                """
                INSERT INTO fact_orders (order_id, customer_id, order_date, amount)
                SELECT order_id, customer_id, order_date, amount
                FROM staging.orders
                WHERE order_date = %s
                """,
                (day,),
            )
            conn.commit()
        day += timedelta(days=1)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--start", type=date.fromisoformat, required=True)
    p.add_argument("--end", type=date.fromisoformat, required=True)
    a = p.parse_args()
    with psycopg.connect("postgresql://etl@warehouse/analytics") as c:
        backfill(c, a.start, a.end)
