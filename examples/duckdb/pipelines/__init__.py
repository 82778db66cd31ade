"""Realistic load functions for an e-commerce warehouse (orders, payments, events).

Each function takes a DuckDB connection (or a database path / SQLAlchemy
engine) and the window it loads, as an Airflow task would receive its data
interval; none of them imports idemtest. `examples/duckdb/schema.sql` is the
DDL they expect.

Correct: `orders.merge_orders`, `events.replace_event_partition`,
`payments.upsert_payments`, `revenue.rebuild_daily_revenue`.
Everything else reproduces a bug class from a real public thread, named in
its docstring.
"""
