"""Three Python tasks; `CALLS` records every execution, `FAIL_ONCE` makes `transform` fail once."""
import pendulum
from airflow import DAG
from airflow.operators.python import PythonOperator

CALLS: list[tuple[str, object]] = []
FAIL_ONCE = {"transform"}


def _extract(ds=None):
    CALLS.append(("extract", ds))
    return {"rows": 3, "ds": ds}


def _transform(ti=None):
    got = ti.xcom_pull(task_ids="extract")
    CALLS.append(("transform", got))
    if "transform" in FAIL_ONCE:
        FAIL_ONCE.discard("transform")
        raise RuntimeError("the worker died")
    return got["rows"] * 2


def _publish(ti=None, params=None):
    CALLS.append(("publish", (ti.xcom_pull(task_ids="transform"), params["target"])))


with DAG("resume", schedule="@daily", start_date=pendulum.datetime(2026, 6, 1, tz="UTC"), params={"target": "t1"},
         default_args={"retries": 1}) as dag:
    extract = PythonOperator(task_id="extract", python_callable=_extract)
    transform = PythonOperator(task_id="transform", python_callable=_transform)
    publish = PythonOperator(task_id="publish", python_callable=_publish)
    extract >> transform >> publish
