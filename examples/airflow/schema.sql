-- The warehouse the example DAGs write to. The tutorial DAGs create their own
-- `employees` and `employees_temp` tables (CREATE TABLE IF NOT EXISTS tasks).
CREATE SCHEMA IF NOT EXISTS src;
CREATE SCHEMA IF NOT EXISTS analytics;

-- events: an append-only event table (examples/sources.py EVENTS)
CREATE TABLE src.events (
    event_id   BIGINT,
    order_id   BIGINT,
    event_type VARCHAR,
    amount     DECIMAL(12, 2),
    event_time TIMESTAMP
);

CREATE TABLE analytics.loaded_events (
    event_id   BIGINT PRIMARY KEY,
    order_id   BIGINT,
    event_type VARCHAR,
    amount     DECIMAL(12, 2),
    event_time TIMESTAMP
);
