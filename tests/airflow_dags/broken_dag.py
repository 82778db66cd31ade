import pendulum
from airflow import DAG

with DAG("broken", schedule="@daily", start_date=pendulum.datetime(2026, 6, 1, tz="UTC")) as dag:
    raise RuntimeError("the DAG author's bug")
