"""Correct loaders: each is safe to retry, re-run and backfill."""

from datetime import date

import psycopg


def replace_day(conn: psycopg.Connection, day: date) -> None:
    # Delete and insert in one transaction: readers see the old day or the new one.
    with conn.transaction():
        conn.execute("DELETE FROM fact_sales WHERE sale_date = %s", (day,))
        conn.execute(
            """
            INSERT INTO fact_sales (sale_id, store_id, sale_date, amount)
            SELECT sale_id, store_id, sale_date, amount
            FROM raw.sales
            WHERE sale_date = %s
            """,
            (day,),
        )


def merge_customers(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(
            """
            MERGE INTO analytics.customers t
            USING (
                SELECT customer_id, email, country, updated_at
                FROM raw.customers
                WHERE updated_at >= (SELECT max(updated_at) - interval '3 hours' FROM analytics.customers)
            ) s
            ON t.customer_id = s.customer_id
            WHEN MATCHED AND s.updated_at > t.updated_at THEN
              UPDATE SET email = s.email, country = s.country, updated_at = s.updated_at
            WHEN NOT MATCHED THEN
              INSERT (customer_id, email, country, updated_at)
              VALUES (s.customer_id, s.email, s.country, s.updated_at)
            """
        )


def upsert_products(conn: psycopg.Connection, rows: list[tuple]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO analytics.products (product_id, name, price, updated_at)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (product_id) DO UPDATE
            SET name = EXCLUDED.name, price = EXCLUDED.price, updated_at = EXCLUDED.updated_at
            WHERE analytics.products.updated_at < EXCLUDED.updated_at
            """,
            rows,
        )
    conn.commit()


def swap_dim_store(conn: psycopg.Connection) -> None:
    # Build the replacement next to the live table, then swap names atomically.
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS dim_store_new")
        conn.execute("CREATE TABLE dim_store_new AS SELECT store_id, name, region FROM raw.stores")
        conn.execute("ALTER TABLE dim_store RENAME TO dim_store_old")
        conn.execute("ALTER TABLE dim_store_new RENAME TO dim_store")
        conn.execute("DROP TABLE dim_store_old")


def record_events(conn: psycopg.Connection, batch_id: str) -> None:
    # Immutable events: a duplicate key is the same event, so DO NOTHING is right.
    conn.execute(
        """
        INSERT INTO analytics.page_views (view_id, user_id, url, viewed_at)
        SELECT view_id, user_id, url, viewed_at FROM raw.page_views WHERE batch = %s
        ON CONFLICT (view_id) DO NOTHING
        """,
        (batch_id,),
    )
    conn.commit()
