import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("bash_dag", schedule="@daily", start_date=pendulum.datetime(2026, 6, 1, tz="UTC")) as dag:
    BashOperator(task_id="say", bash_command="echo hi")
