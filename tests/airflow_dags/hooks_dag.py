"""Every hook call idemtest must see: PostgresHook.run, get_pandas_df, insert_rows,
copy_expert. Correct: the interval's rows are replaced by key."""
import datetime
import tempfile

import pendulum
from airflow.decorators import dag, task
from airflow.providers.postgres.hooks.postgres import PostgresHook


@dag(schedule="@hourly", start_date=pendulum.datetime(2026, 6, 1, tz="UTC"), catchup=True, max_active_runs=1,
     default_args={"retries": 2, "retry_delay": datetime.timedelta(minutes=5)})
def hooks_dag():
    @task
    def stage(data_interval_start=None, data_interval_end=None):
        hook = PostgresHook(postgres_conn_id="wh")
        hook.run("CREATE TABLE IF NOT EXISTS staging_events (event_id BIGINT, event_type VARCHAR, event_time TIMESTAMP)")
        with tempfile.NamedTemporaryFile(suffix=".csv") as f:
            hook.copy_expert(
                "COPY (SELECT event_id, event_type, event_time FROM src.events "
                f"WHERE event_time >= '{data_interval_start.naive()}' AND event_time < '{data_interval_end.naive()}') TO STDOUT WITH CSV",
                f.name,
            )
            n = hook.get_first("SELECT count(*) FROM src.events")[0]
        return int(n)

    @task
    def load(n, data_interval_start=None, data_interval_end=None):
        hook = PostgresHook(postgres_conn_id="wh")
        rows = hook.get_pandas_df(
            "SELECT event_id, event_type, event_time::text AS event_time FROM src.events WHERE event_time >= %s AND event_time < %s",
            parameters=(data_interval_start.naive().isoformat(), data_interval_end.naive().isoformat()))
        hook.insert_rows("analytics.events", [list(r) for r in rows.itertuples(index=False)],
                         target_fields=["event_id", "event_type", "event_time"], replace=True, replace_index="event_id")

    load(stage())


dag = hooks_dag()
