"""The source tables the example pipelines read, declared once for every spec."""

from __future__ import annotations

from hypothesis import strategies as st

from idemtest import Source

from .pipelines import SCHEMA

SETUP = SCHEMA  # examples/pipelines/schema.sql, run in every fresh sandbox

ORDERS = Source(
    "src.orders",
    columns={
        "order_id": "BIGINT",
        "customer_email": "VARCHAR",
        "status": "VARCHAR",
        "amount": "DECIMAL(12,2)",
        "updated_at": "TIMESTAMP",
    },
    key="order_id",
    event_time="updated_at",
    max_rows=10,
)

PAYMENTS = Source(
    "src.payments",
    columns={
        "payment_id": "BIGINT",
        "order_id": "BIGINT",
        "status": "VARCHAR",
        "amount": "DECIMAL(12,2)",
        "updated_at": "TIMESTAMP",
    },
    key="payment_id",
    event_time="updated_at",
    values={"status": st.sampled_from(["authorised", "captured", "refunded", "failed"])},
    max_rows=10,
)

EVENTS = Source(
    "src.events",
    columns={
        "event_id": "BIGINT",
        "order_id": "BIGINT",
        "event_type": "VARCHAR",
        "amount": "DECIMAL(12,2)",
        "event_time": "TIMESTAMP",
    },
    key="event_id",
    event_time="event_time",
    append_only=True,
    values={
        "order_id": st.integers(1, 20),
        "event_type": st.sampled_from(["add_to_cart", "checkout", "purchase", "refund"]),
    },
    max_rows=10,
)

CUSTOMERS = Source(
    "src.customers",
    columns={"customer_id": "BIGINT", "email": "VARCHAR", "city": "VARCHAR", "updated_on": "DATE"},
    key="customer_id",
    event_time="updated_on",
    max_rows=10,
)
