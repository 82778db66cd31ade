"""Correct: one task replaces the run's data interval in one transaction."""

from datetime import timedelta

import pendulum
from airflow import DAG
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

default_args = {
    "owner": "analytics",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
}

with DAG(
    dag_id="orders_by_interval",
    default_args=default_args,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    schedule="@hourly",
    catchup=False,
    max_active_runs=1,
) as dag:
    replace_interval = SQLExecuteQueryOperator(
        task_id="replace_interval",
        conn_id="warehouse",
        sql=[
            """
            DELETE FROM analytics.orders_hourly
            WHERE order_ts >= '{{ data_interval_start }}'
              AND order_ts < '{{ data_interval_end }}'
            """,
            """
            INSERT INTO analytics.orders_hourly (order_id, customer_id, amount, order_ts)
            SELECT order_id, customer_id, amount, order_ts
            FROM raw.orders
            WHERE order_ts >= '{{ data_interval_start }}'
              AND order_ts < '{{ data_interval_end }}'
            """,
        ],
    )
