"""Buggy: `INSERT … ON CONFLICT DO NOTHING` keeps the first version of an order forever.

`DO NOTHING` makes a retry or a duplicate run harmless — that is why it gets
written — but it also drops every later version of a key: an order loaded as
'new' stays 'new' after it is paid, shipped or refunded. The clean run sees each
order's latest version and loads that one; the real schedule loaded an earlier
one first, so the outcome differs (P1, "changed" rows). The fix is
`DO UPDATE … WHERE analytics.orders.updated_at < EXCLUDED.updated_at`
(see order_status.py and orders_merge.py).

A psycopg 3 connection the caller owns (`run.conn` under idemtest).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

INSERT_NEW_ORDERS = """
INSERT INTO analytics.orders (order_id, customer_email, status, amount, updated_at)
SELECT order_id, customer_email, status, amount, updated_at
FROM src.orders
WHERE updated_at >= %(since)s AND updated_at < %(until)s
ON CONFLICT (order_id) DO NOTHING
"""


def insert_new_orders(conn: psycopg.Connection, *, start: datetime, end: datetime, lookback: timedelta) -> None:
    """BUG (ON CONFLICT DO NOTHING loses updates): the keyed cousin of
    dlt-hub/dlt#971 — the first version of an order loaded is kept forever."""
    with conn.transaction():
        conn.execute(INSERT_NEW_ORDERS, {"since": start - lookback, "until": end})
