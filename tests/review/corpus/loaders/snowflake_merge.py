"""Snowflake loads run through the connector."""

import snowflake.connector

# idemtest: dialect=snowflake


def load_orders(conn: snowflake.connector.SnowflakeConnection) -> None:
    cur = conn.cursor()
    cur.execute("COPY INTO raw.orders_landing FROM @orders_stage FILE_FORMAT = (TYPE = PARQUET)")
    cur.execute(
        """
        MERGE INTO analytics.orders t  -- expect: IDM205
        USING raw.orders_landing s
          ON t.order_id = s.order_id AND t.updated_at = s.updated_at
        WHEN MATCHED THEN UPDATE SET status = s.status, amount = s.amount
        WHEN NOT MATCHED THEN INSERT (order_id, status, amount, updated_at)
          VALUES (s.order_id, s.status, s.amount, s.updated_at)
        """
    )
    cur.execute("COPY INTO raw.refunds FROM @refunds_stage FORCE = TRUE")  # expect: IDM201
