"""What the PostgreSQL examples share: the schema, the sources, the schedule."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

from idemtest import Source, hourly

SCHEMA = Path(__file__).with_name("schema.sql")  # absolute: found whatever the working directory

# three hourly windows keep every example to a handful of runs (PostgreSQL
# sandboxes cost tens of milliseconds each); tail windows follow for late data
SCHEDULE = hourly("2026-06-01", periods=3)
MAX_LATENESS = "30m"  # shorter than a window: a lookback re-reads only the end of the previous one

ORDERS = Source(
    "src.orders",
    columns={
        "order_id": "BIGINT",
        "customer_email": "VARCHAR",
        "status": "VARCHAR",
        "amount": "NUMERIC(12,2)",
        "updated_at": "TIMESTAMP",
    },
    key="order_id",
    event_time="updated_at",  # an OLTP table: a key gets newer versions over time
    max_rows=6,
)

ORDER_CHANGES = Source(
    "src.order_changes",
    columns={
        "change_id": "BIGINT",
        "order_id": "BIGINT",
        "status": "VARCHAR",
        "amount": "NUMERIC(12,2)",
        "changed_at": "TIMESTAMP",
    },
    key="change_id",
    event_time="changed_at",
    append_only=True,  # a change log: every change stays a row
    max_rows=6,
    values={"order_id": st.integers(1, 3)},  # few orders, so one order changes several times
)

ORDER_EVENTS = Source(
    "src.order_events",
    columns={
        "event_id": "BIGINT",
        "order_id": "BIGINT",
        "event_type": "VARCHAR",
        "amount": "NUMERIC(12,2)",
        "event_time": "TIMESTAMP",
    },
    key="event_id",
    event_time="event_time",
    append_only=True,
    max_rows=6,
)

# the Airflow tutorial downloads employees.csv; here the upstream system drops
# one CSV file per batch into run.landing/hr.employees/
EMPLOYEES_CSV = Source(
    "hr.employees",
    columns={
        "serial_number": "BIGINT",
        "company_name": "VARCHAR",
        "employee_markme": "VARCHAR",
        "description": "VARCHAR",
        "leave_days": "INTEGER",
        "updated_at": "TIMESTAMP",
    },
    key="serial_number",
    event_time="updated_at",
    landing="csv",
    max_rows=6,
)
