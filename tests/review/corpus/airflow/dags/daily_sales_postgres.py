"""Daily sales rollup: each step is its own PostgresOperator task."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.postgres.operators.postgres import PostgresOperator

default_args = {
    "owner": "analytics",
    "depends_on_past": True,  # expect: IDM104
    "start_date": datetime.now() - timedelta(days=1),  # expect: IDM105
    "retries": 3,  # Airflow waits retry_delay (300 s by default) between tries
    "email_on_failure": True,
}

with DAG(  # expect: IDM101, IDM102
    "daily_sales",
    default_args=default_args,
    schedule_interval="@daily",
) as dag:
    clear_day = PostgresOperator(
        task_id="clear_day",
        postgres_conn_id="warehouse",
        sql="DELETE FROM analytics.sales_daily WHERE sale_date = '{{ ds }}'",  # expect: IDM301
    )

    load_day = PostgresOperator(
        task_id="load_day",
        postgres_conn_id="warehouse",
        sql="""
            INSERT INTO analytics.sales_daily (sale_date, store_id, revenue)
            SELECT o.order_date, o.store_id, SUM(o.amount)
            FROM raw.orders o
            WHERE o.order_date = '{{ ds }}'
            GROUP BY 1, 2
        """,
    )

    load_events = PostgresOperator(
        task_id="load_recent_events",
        postgres_conn_id="warehouse",
        sql="""
            INSERT INTO analytics.web_events (event_id, user_id, event_ts, url)  -- expect: IDM201
            SELECT e.event_id, e.user_id, e.event_ts, e.url
            FROM raw.web_events e
            WHERE e.event_ts > now() - interval '1 hour'  -- expect: IDM401
        """,
    )

    clear_day >> load_day >> load_events
