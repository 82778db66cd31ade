-- An e-commerce warehouse in miniature: OLTP sources copied into `src`,
-- modelled tables in `analytics`, a scratch `staging` schema.
-- The `src` tables have exactly the columns and types of examples/sources.py.
CREATE SCHEMA IF NOT EXISTS src;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS analytics;

-- sources ---------------------------------------------------------------
-- orders: an OLTP table; updated_at moves when an order changes status
CREATE TABLE src.orders (
    order_id       BIGINT,
    customer_email VARCHAR,
    status         VARCHAR,
    amount         DECIMAL(12, 2),
    updated_at     TIMESTAMP
);
-- payments: an OLTP table of payment attempts (authorised -> captured -> refunded)
CREATE TABLE src.payments (
    payment_id BIGINT,
    order_id   BIGINT,
    status     VARCHAR,
    amount     DECIMAL(12, 2),
    updated_at TIMESTAMP
);
-- events: an append-only clickstream / order-event log
CREATE TABLE src.events (
    event_id   BIGINT,
    order_id   BIGINT,
    event_type VARCHAR,
    amount     DECIMAL(12, 2),
    event_time TIMESTAMP
);

-- targets ---------------------------------------------------------------
CREATE TABLE analytics.orders (
    order_id       BIGINT PRIMARY KEY,
    customer_email VARCHAR,
    status         VARCHAR,
    amount         DECIMAL(12, 2),
    updated_at     TIMESTAMP
);

CREATE TABLE analytics.payments (
    payment_id BIGINT PRIMARY KEY,
    order_id   BIGINT,
    status     VARCHAR,
    amount     DECIMAL(12, 2),
    updated_at TIMESTAMP
);

-- the order-event fact table, with its primary key (what a careful team does)
CREATE TABLE analytics.fct_order_events (
    event_id   BIGINT PRIMARY KEY,
    order_id   BIGINT,
    event_type VARCHAR,
    amount     DECIMAL(12, 2),
    event_time TIMESTAMP
);

-- the same events as an append-only landing table without a key (what a
-- `write_disposition="append"` or a pandas `to_sql` target usually looks like)
CREATE TABLE analytics.order_events (
    event_id   BIGINT,
    order_id   BIGINT,
    event_type VARCHAR,
    amount     DECIMAL(12, 2),
    event_time TIMESTAMP
);

CREATE TABLE staging.order_events (
    event_id   BIGINT,
    order_id   BIGINT,
    event_type VARCHAR,
    amount     DECIMAL(12, 2),
    event_time TIMESTAMP
);

CREATE TABLE analytics.event_counts (
    event_type VARCHAR PRIMARY KEY,
    events     BIGINT,
    revenue    DECIMAL(18, 2)
);

CREATE TABLE analytics.hourly_revenue (
    hour    TIMESTAMP PRIMARY KEY,
    events  BIGINT,
    revenue DECIMAL(18, 2)
);

CREATE TABLE analytics.revenue_summary (
    id            INTEGER PRIMARY KEY,
    total_revenue DECIMAL(18, 2),
    hours_loaded  BIGINT
);
INSERT INTO analytics.revenue_summary VALUES (1, 0, 0);

CREATE TABLE analytics.daily_revenue (
    day     DATE,
    events  BIGINT,
    revenue DECIMAL(18, 2)
);

CREATE TABLE analytics.daily_totals (
    day     DATE,
    events  BIGINT,
    revenue DECIMAL(18, 2)
);

-- customers: a CRM export whose change column is a DATE (updated_on)
CREATE TABLE src.customers (
    customer_id BIGINT,
    email       VARCHAR,
    city        VARCHAR,
    updated_on  DATE
);

CREATE TABLE analytics.customers (
    customer_id BIGINT PRIMARY KEY,
    email       VARCHAR,
    city        VARCHAR,
    updated_on  DATE
);

-- events loaded by a pool of worker threads (pipelines/pooled.py), dlt-style:
-- every row carries the id of the load that wrote it, every load is recorded
CREATE TABLE analytics.loaded_events (
    event_id   BIGINT,
    order_id   BIGINT,
    event_type VARCHAR,
    amount     DECIMAL(12, 2),
    event_time TIMESTAMP,
    load_id    VARCHAR
);

CREATE TABLE analytics.event_loads (
    load_id      VARCHAR PRIMARY KEY,
    window_start TIMESTAMP,
    package      VARCHAR,
    rows         BIGINT
);
-- trips: taxi trip records without a key (identical rows occur)
CREATE TABLE src.trips (
    vendor_id      INTEGER,
    pickup_at      TIMESTAMP,
    pu_location_id INTEGER,
    fare_amount    DECIMAL(10, 2)
);
CREATE TABLE analytics.trips (
    vendor_id      INTEGER,
    pickup_at      TIMESTAMP,
    pu_location_id INTEGER,
    fare_amount    DECIMAL(10, 2)
);
-- order_lines: keyed on (order_id, line_no)
CREATE TABLE src.order_lines (
    order_id   BIGINT,
    line_no    BIGINT,
    quantity   INTEGER,
    updated_at TIMESTAMP
);
CREATE TABLE analytics.order_lines (
    _sdc_primary_key VARCHAR,
    order_id         BIGINT,
    line_no          BIGINT,
    quantity         INTEGER,
    updated_at       TIMESTAMP
);
-- analytics.monthly_trips and analytics.crm_customers are created by their loads (CREATE TABLE IF NOT EXISTS / CREATE OR REPLACE)
-- the load log: one row per loaded batch, read to skip a batch already loaded
CREATE SCHEMA IF NOT EXISTS etl;
CREATE TABLE etl.load_log (
    batch_start TIMESTAMP PRIMARY KEY,
    batch_end   TIMESTAMP
);

-- orders in a lakehouse-style table: no primary key is enforced (Delta, Iceberg,
-- a plain Parquet folder), so the MERGE's ON clause is all that keeps one row per order
CREATE TABLE analytics.orders_lake (
    order_id       BIGINT,
    customer_email VARCHAR,
    status         VARCHAR,
    amount         DECIMAL(12, 2),
    updated_at     TIMESTAMP
);
