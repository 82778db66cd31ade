"""A TaskFlow DAG that loads new events past a watermark kept in an Airflow Variable.

`extract` reads the watermark, pulls the events after it from the source database
(`PostgresHook.get_records`), and saves the new watermark; `load` upserts the rows
it got through XCom (`PostgresHook.insert_rows(..., replace=True)`).

BUG (watermark saved before the load): `extract` moves the Variable forward
before anything is loaded. When the worker dies after `Variable.set` (a crash, an
OOM kill, a timeout) Airflow retries `extract`, which now starts from the new
watermark: the window's events are never loaded.
"""

from __future__ import annotations

import datetime

import pendulum
from airflow.decorators import dag, task
from airflow.models import Variable
from airflow.providers.postgres.hooks.postgres import PostgresHook

FIELDS = ["event_id", "order_id", "event_type", "amount", "event_time"]


@dag(
    dag_id="events_watermark",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 6, 1, tz="UTC"),
    catchup=True,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": datetime.timedelta(minutes=5)},
)
def events_watermark():
    @task
    def extract(data_interval_end=None):
        hook = PostgresHook(postgres_conn_id="warehouse")
        since = Variable.get("events_watermark", default_var="1970-01-01T00:00:00")
        rows = hook.get_records(
            "SELECT event_id, order_id, event_type, amount::text, event_time::text FROM src.events "
            "WHERE event_time > %s AND event_time < %s ORDER BY event_time",
            parameters=(since, data_interval_end.naive().isoformat()),
        )
        if rows:
            Variable.set("events_watermark", max(r[4] for r in rows))  # BUG: before the load
        return [list(r) for r in rows]

    @task
    def load(rows):
        if rows:
            PostgresHook(postgres_conn_id="warehouse").insert_rows(
                "analytics.loaded_events", rows, target_fields=FIELDS, replace=True, replace_index="event_id"
            )

    load(extract())


dag = events_watermark()
