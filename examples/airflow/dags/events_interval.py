"""CORRECT: each DAG run replaces its data interval in one transaction.

`SQLExecuteQueryOperator` runs the DELETE and the INSERT of the run's
`[data_interval_start, data_interval_end)` on one connection and commits once
(autocommit off): a crash anywhere rolls both back, a retry or a re-run
(clear, backfill) rewrites the same interval, and nothing depends on earlier runs.
"""

from __future__ import annotations

import datetime

import pendulum
from airflow import DAG
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

with DAG(
    dag_id="events_interval",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 6, 1, tz="UTC"),
    catchup=True,
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": datetime.timedelta(minutes=5)},
) as dag:
    SQLExecuteQueryOperator(
        task_id="load_interval",
        conn_id="warehouse",
        sql=[
            "DELETE FROM analytics.loaded_events "
            "WHERE event_time >= '{{ data_interval_start.naive() }}' AND event_time < '{{ data_interval_end.naive() }}'",
            "INSERT INTO analytics.loaded_events (event_id, order_id, event_type, amount, event_time) "
            "SELECT event_id, order_id, event_type, amount, event_time FROM src.events "
            "WHERE event_time >= '{{ data_interval_start.naive() }}' AND event_time < '{{ data_interval_end.naive() }}'",
        ],
    )
