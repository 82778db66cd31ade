"""The source tables of the example warehouse, each declared once for both backends.

Column types are spelled the way DuckDB and PostgreSQL both accept them, so the
same `Source` feeds `duckdb/schema.sql` and `postgres/schema.sql` (both create
these tables with exactly these columns). A spec that needs a variation derives
it with `dataclasses.replace(SOURCE, ...)` instead of declaring the table again.
"""

from __future__ import annotations

from hypothesis import strategies as st

from idemtest import Source, keys

# orders: an OLTP table; updated_at moves when an order changes status
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

# payments: payment attempts whose status moves (authorised -> captured -> refunded)
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

# events: an append-only order-event log (clickstream, checkout, refund ...)
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

# customers: a CRM export whose change column is a DATE (updated_on)
CUSTOMERS = Source(
    "src.customers",
    columns={"customer_id": "BIGINT", "email": "VARCHAR", "city": "VARCHAR", "updated_on": "DATE"},
    key="customer_id",
    event_time="updated_on",
    max_rows=10,
)

# order_changes: a CDC feed of the orders table (Debezium-style), one row per change
ORDER_CHANGES = Source(
    "src.order_changes",
    columns={
        "change_id": "BIGINT",
        "order_id": "BIGINT",
        "status": "VARCHAR",
        "amount": "DECIMAL(12,2)",
        "changed_at": "TIMESTAMP",
    },
    key="change_id",
    event_time="changed_at",
    append_only=True,  # a change log: every change stays a row
    values={"order_id": st.integers(1, 3)},  # few orders, so one order changes several times
    max_rows=6,
)

# employees: the Airflow tutorial downloads employees.csv; here the upstream system
# drops one CSV file per batch into run.landing/hr.employees/ (no table in the sandbox)
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

# trips: NYC-taxi-style trip records; no trip id, and the same trip can be exported
# twice (identical rows): a keyless table, compared as a multiset
TRIPS = Source(
    "src.trips",
    columns={"vendor_id": "INTEGER", "pickup_at": "TIMESTAMP", "pu_location_id": "INTEGER", "fare_amount": "DECIMAL(10,2)"},
    key=None,
    event_time="pickup_at",
    max_rows=8,
)

# tlc.trips: the same records as the TLC publishes them, one Parquet file per month
# (run.landing/tlc/yellow_tripdata_2026-01.parquet), rewritten when late trips arrive
TRIPS_MONTHLY = Source(
    "tlc.trips",
    columns={"vendor_id": "INTEGER", "pickup_at": "TIMESTAMP", "pu_location_id": "INTEGER", "fare_amount": "DECIMAL(10,2)"},
    key=None,
    event_time="pickup_at",
    path="tlc/yellow_tripdata_{partition}.parquet",
    max_rows=8,
)

# crm.customers: a CRM's full export, re-downloaded whole every day as one CSV
# (run.landing/crm/customers.csv); no change timestamp: each export replaces the last
CUSTOMER_EXPORT = Source(
    "crm.customers",
    columns={"customer_id": "BIGINT", "email": "VARCHAR", "city": "VARCHAR"},
    key="customer_id",
    snapshot=True,
    path="crm/customers.csv",
    max_rows=6,
)

# order_lines: an OLTP table keyed on (order_id, line_no); the keys are drawn so that
# their parts collide when concatenated: (1, 11) and (11, 1) both read "111"
ORDER_LINES = Source(
    "src.order_lines",
    columns={"order_id": "BIGINT", "line_no": "BIGINT", "quantity": "INTEGER", "updated_at": "TIMESTAMP"},
    key=["order_id", "line_no"],
    event_time="updated_at",
    updates=False,  # a line, once written, does not change
    values={"order_id": keys.concat_collisions(), "line_no": keys.concat_collisions()},
    max_rows=6,
)

# fx_rates: a rates table the provider replaces whole every day (no change timestamp):
# each run sees the current snapshot; rates vanish when a currency is dropped
FX_RATES = Source(
    "src.fx_rates",
    columns={"currency": "VARCHAR", "rate": "DECIMAL(12,6)"},
    key="currency",
    snapshot=True,
    max_rows=5,
)


# Spark (examples/spark): tables of the sandbox's own database, so unqualified names.
# sales events: immutable (a sale is never rewritten), aggregated per day and store
SALES_EVENTS = Source(
    "events",
    columns={"event_id": "BIGINT", "store": "VARCHAR", "amount": "DECIMAL(12,2)", "ts": "TIMESTAMP"},
    key="event_id",
    event_time="ts",
    updates=False,
    max_rows=12,
)

# customer change log (CDC): every change of a customer is a row of its own
CUSTOMER_CHANGES = Source(
    "changes",
    columns={"change_id": "BIGINT", "customer_id": "BIGINT", "email": "VARCHAR", "tier": "VARCHAR", "changed_at": "TIMESTAMP"},
    key="change_id",
    event_time="changed_at",
    append_only=True,
    values={"customer_id": st.integers(1, 3)},  # few customers, so one changes several times
    max_rows=10,
)
