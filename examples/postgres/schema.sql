-- The PostgreSQL examples' warehouse: OLTP sources copied into `src`, modelled
-- tables in `analytics`, scratch tables in `staging`, pipeline bookkeeping in `etl`.
-- Every sandbox idemtest creates starts from this script (run once, in a template).
-- The `src` tables have exactly the columns and types of examples/sources.py.
CREATE SCHEMA IF NOT EXISTS src;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS etl;

-- sources ---------------------------------------------------------------
-- orders: the OLTP table; updated_at moves whenever an order changes
CREATE TABLE src.orders (
    order_id       BIGINT,
    customer_email VARCHAR,
    status         VARCHAR,
    amount         DECIMAL(12, 2),
    updated_at     TIMESTAMP
);

-- order_changes: a CDC feed of the same table (Debezium-style): one row per change
CREATE TABLE src.order_changes (
    change_id  BIGINT,
    order_id   BIGINT,
    status     VARCHAR,
    amount     DECIMAL(12, 2),
    changed_at TIMESTAMP
);

-- events: an append-only order-event log (checkout, payment, refund ...)
CREATE TABLE src.events (
    event_id   BIGINT,
    order_id   BIGINT,
    event_type VARCHAR,
    amount     DECIMAL(12, 2),
    event_time TIMESTAMP
);

-- trips: taxi trip records without a key (identical rows occur)
CREATE TABLE src.trips (
    vendor_id      INTEGER,
    pickup_at      TIMESTAMP,
    pu_location_id INTEGER,
    fare_amount    DECIMAL(10, 2)
);

-- fx_rates: replaced whole by the provider every day (a snapshot, no timestamp)
CREATE TABLE src.fx_rates (
    currency VARCHAR,
    rate     DECIMAL(12, 6)
);

-- targets ---------------------------------------------------------------
CREATE TABLE analytics.orders (
    order_id       BIGINT PRIMARY KEY,
    customer_email VARCHAR,
    status         VARCHAR,
    amount         DECIMAL(12, 2),
    updated_at     TIMESTAMP NOT NULL
);

-- current state of each order, rebuilt from the CDC feed
CREATE TABLE analytics.order_status (
    order_id   BIGINT PRIMARY KEY,
    status     VARCHAR,
    amount     DECIMAL(12, 2),
    changed_at TIMESTAMP NOT NULL,
    change_id  BIGINT NOT NULL
);

CREATE TABLE analytics.hourly_revenue (
    hour    TIMESTAMP PRIMARY KEY,
    events  BIGINT NOT NULL,
    revenue DECIMAL(18, 2) NOT NULL
);

-- per-window revenue and a running total kept next to it (a dashboard tile)
CREATE TABLE analytics.window_revenue (
    window_start TIMESTAMP PRIMARY KEY,
    revenue      DECIMAL(18, 2) NOT NULL
);
CREATE TABLE analytics.revenue_summary (
    id            INTEGER PRIMARY KEY,
    total_revenue DECIMAL(18, 2) NOT NULL
);
INSERT INTO analytics.revenue_summary VALUES (1, 0);

-- the Airflow tutorial's employees table (docs: tutorial/pipeline), snake_cased
CREATE TABLE analytics.employees (
    serial_number   BIGINT PRIMARY KEY,
    company_name    VARCHAR,
    employee_markme VARCHAR,
    description     VARCHAR,
    leave_days      INTEGER,
    updated_at      TIMESTAMP NOT NULL
);

-- bookkeeping -------------------------------------------------------------
CREATE TABLE etl.watermarks (
    pipeline   VARCHAR PRIMARY KEY,
    high_water TIMESTAMP
);
-- one row per pipeline from the start, so `SELECT … FOR UPDATE` always has a row to lock
INSERT INTO etl.watermarks VALUES ('orders_merge', NULL);

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
-- trips without a key: the window's rows are replaced as a multiset
CREATE TABLE analytics.trips (
    vendor_id      INTEGER,
    pickup_at      TIMESTAMP,
    pu_location_id INTEGER,
    fare_amount    DECIMAL(10, 2)
);
-- analytics.fx_rates is created by its load (CREATE TABLE IF NOT EXISTS)
