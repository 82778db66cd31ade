"""catchup placed in default_args, where Airflow ignores it; the load swallows its errors."""
import logging

import pendulum
from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.providers.postgres.hooks.postgres import PostgresHook

default_args = {
    "retries": 2,
    "retry_delay": pendulum.duration(minutes=5),
    "catchup": False,  # expect: IDM108
}


def load_events(ds: str) -> None:
    hook = PostgresHook("warehouse")
    try:
        hook.run(
            "INSERT INTO analytics.events SELECT * FROM raw.events WHERE day = %(ds)s "
            "ON CONFLICT (event_id) DO UPDATE SET payload = EXCLUDED.payload",
            parameters={"ds": ds})
    except Exception:  # expect: IDM206
        logging.exception("load failed for %s", ds)


with DAG(  # expect: IDM101
    "events_hourly",
    schedule="@hourly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    default_args=default_args,
    max_active_runs=1,
):
    PythonOperator(task_id="load_events", python_callable=load_events,
                   op_kwargs={"ds": "{{ ds }}"})
