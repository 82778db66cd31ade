"""A hook whose conn_id is computed: the DAG file spells no `conn_id="..."` literal for it."""
import pendulum
from airflow.decorators import dag, task
from airflow.providers.postgres.hooks.postgres import PostgresHook

CONN = "_".join(["reporting", "db"])


@dag(schedule="@daily", start_date=pendulum.datetime(2026, 6, 1, tz="UTC"))
def dynamic_conn():
    @task
    def count():
        return PostgresHook(postgres_conn_id=CONN).get_first("SELECT 1")[0]

    count()


dag = dynamic_conn()
