"""The shape of marcosmarxm/airflow-testing-ci-workflow's dags/dag_sales_pipeline.py
(commit c54cbfeafa2388ceac0e013b437d9940849c1c9f), a DAG nobody here wrote: unscheduled
(its own CI runs `airflow dags backfill -s <date>`), SQL files looked up in the container's
/opt/airflow/sql/sales/, purchases of the day copied into a staging table that nothing ever
clears, then appended to the mart. Buggy: a second run of any date appends them again.
(SQLExecuteQueryOperator where the original has PostgresOperator, which providers-postgres 6
removed.)"""
from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.utils.dates import days_ago


def transfer_oltp_olap(**kwargs):
    oltp_hook = PostgresHook(postgres_conn_id="oltp")
    olap_hook = PostgresHook(postgres_conn_id="olap")
    rows = oltp_hook.get_records(sql=kwargs["sql"], parameters=kwargs.get("params"))
    olap_hook.insert_rows(kwargs["dest_table"], rows, commit_every=1000)


with DAG(dag_id="products_sales_pipeline", schedule_interval=None, start_date=days_ago(2),
         template_searchpath="/opt/airflow/sql/sales/") as dag:
    load_purchases = PythonOperator(
        task_id="load_incremental_purchases",
        python_callable=transfer_oltp_olap,
        op_kwargs={"dest_table": "stg_purchases",
                   "sql": 'select * from purchases where "purchase_date" = %s',
                   "params": ["{{ ds }}"]},
    )
    delete_day = SQLExecuteQueryOperator(task_id="delete_products_sales_exec_date", conn_id="olap",
                                         sql="delete_products_sales_exec_date.sql")
    union = SQLExecuteQueryOperator(task_id="union_staging_to_products_sales", conn_id="olap",
                                    sql="union_staging_to_products_sales.sql")
    [load_purchases, delete_day] >> union
