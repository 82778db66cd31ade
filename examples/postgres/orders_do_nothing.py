"""Buggy: `INSERT … ON CONFLICT DO NOTHING` keeps the first version of an order forever.

`DO NOTHING` makes a retry or a duplicate run harmless — that is why it gets
written — but it also drops every later version of a key: an order loaded as
'new' stays 'new' after it is paid, shipped or refunded. The clean run sees each
order's latest version and loads that one; the real schedule loaded an earlier
one first, so the outcome differs (P1, "changed" rows). The fix is
`DO UPDATE … WHERE analytics.orders.updated_at < EXCLUDED.updated_at`
(see order_status.py and orders_merge.py).

The run's own connection (`run.conn`, psycopg 3).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from idemtest import Spec, Target

from ._common import MAX_LATENESS, ORDERS, SCHEDULE, SCHEMA

INSERT_NEW_ORDERS = """
INSERT INTO analytics.orders (order_id, customer_email, status, amount, updated_at)
SELECT order_id, customer_email, status, amount, updated_at
FROM src.orders
WHERE updated_at >= %(since)s AND updated_at < %(until)s
ON CONFLICT (order_id) DO NOTHING
"""


def insert_new_orders(conn: psycopg.Connection, *, start: datetime, end: datetime, lookback: timedelta) -> None:
    with conn.transaction():
        conn.execute(INSERT_NEW_ORDERS, {"since": start - lookback, "until": end})


SPEC = Spec(
    dialect="postgres",
    setup=SCHEMA,
    sources=[ORDERS],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=SCHEDULE,
    max_lateness=MAX_LATENESS,
)


def run_do_nothing(run) -> None:  # type: ignore[no-untyped-def]
    insert_new_orders(run.conn, start=run.window.start, end=run.window.end, lookback=SPEC.max_lateness)
