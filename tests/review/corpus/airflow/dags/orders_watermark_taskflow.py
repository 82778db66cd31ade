"""Incremental orders sync keeping its cursor in an Airflow Variable."""

from datetime import datetime, timedelta

from airflow.decorators import dag, task
from airflow.models import Variable
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.utils.dates import days_ago


@dag(
    schedule="@hourly",
    start_date=days_ago(2),  # expect: IDM105
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
)
def orders_sync():
    @task
    def sync_orders():
        src = PostgresHook(postgres_conn_id="shop").get_conn()
        dst = PostgresHook(postgres_conn_id="warehouse").get_conn()
        last = Variable.get("orders_watermark", default_var="1970-01-01")
        with src.cursor() as cur:
            cur.execute(
                """
                SELECT order_id, status, amount, updated_at
                FROM public.orders
                WHERE updated_at > %s  -- expect: IDM402, IDM403
                """,
                (last,),
            )
            rows = cur.fetchall()
        Variable.set("orders_watermark", datetime.utcnow().isoformat())  # expect: IDM401, IDM404
        with dst.cursor() as cur:
            cur.executemany(
                "INSERT INTO raw.orders_changes (order_id, status, amount, updated_at) VALUES (%s, %s, %s, %s)",  # expect: IDM201
                rows,
            )
        dst.commit()

    sync_orders()


orders_sync()
