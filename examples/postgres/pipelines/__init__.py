"""PostgreSQL load functions, as a data engineer writes them: psycopg 3,
psycopg2, or a connection the caller owns, and the window to load. None of
them imports idemtest, and the drivers are imported inside the functions, so
importing this package needs neither psycopg nor psycopg2.
`examples/postgres/schema.sql` is the DDL they expect.

Correct: `orders_merge.load_orders`, `order_status.upsert_order_status`,
`hourly_revenue.rebuild_hours`, `employees_airflow.merge_employees`, and
`revenue_summary.update_revenue` as long as runs do not overlap. Everything
else reproduces a bug class from a real public thread, named in its docstring.
"""
