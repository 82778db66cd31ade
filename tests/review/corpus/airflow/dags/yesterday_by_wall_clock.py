"""A daily task that picks "yesterday" from the wall clock although Airflow gives it the day."""
import pendulum
from airflow import DAG
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

with DAG(
    "orders_daily",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2},
):
    SQLExecuteQueryOperator(
        task_id="rebuild_day",
        conn_id="warehouse",
        sql="""
            BEGIN;
            DELETE FROM analytics.orders_daily WHERE day = current_date - 1;
            INSERT INTO analytics.orders_daily
            SELECT order_date, sum(amount) FROM raw.orders
            WHERE order_date = current_date - 1  -- expect: IDM503
            GROUP BY order_date;
            COMMIT;
        """,
    )
