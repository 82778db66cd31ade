"""Copy changed customers from the OLTP database, Airbyte-style cursor on updated_at
(airbytehq/airbyte#14732: rows committed at MAX(updated_at) after the read were dropped)."""

import psycopg

SOURCE_DSN = "postgresql://replica@shop/shop"
TARGET_DSN = "postgresql://etl@warehouse/analytics"


def sync_customers() -> int:
    with psycopg.connect(TARGET_DSN) as dst, psycopg.connect(SOURCE_DSN) as src:
        cursor_value = dst.execute(
            "SELECT max(updated_at) FROM analytics.customers"
        ).fetchone()[0]
        rows = src.execute(
            """
            SELECT customer_id, email, country, updated_at
            FROM public.customers
            WHERE updated_at > %s  -- expect: IDM402, IDM403
            ORDER BY updated_at
            """,
            (cursor_value,),
        ).fetchall()
        with dst.cursor() as cur:
            cur.executemany(
                """
                INSERT INTO analytics.customers (customer_id, email, country, updated_at)  -- expect: IDM204
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (customer_id) DO NOTHING
                """,
                rows,
            )
        dst.commit()
    return len(rows)
