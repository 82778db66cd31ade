"""The Airflow tutorial's employees pipeline ("Building a Running Pipeline"), as published.

Tasks as in the tutorial: create `employees` and `employees_temp` (DROP + CREATE),
`get_data` fetches the employees CSV and COPYs it into `employees_temp` through
`PostgresHook.copy_expert`, `merge_data` upserts it into `employees` with
`INSERT ... SELECT DISTINCT * ... ON CONFLICT DO UPDATE`. Two changes, so it runs
without a network: the CSV comes from a folder named by the `employees_dir`
Variable instead of an HTTP download, and the columns are snake_cased (with an
`updated_at`). The DAG's settings are the tutorial's: no retries, catchup=False,
max_active_runs at Airflow's default.

BUG: `merge_data` wraps everything in `try: ... except Exception: return 1`
(apache/airflow PR 29158: a SQL error in that query left `employees` empty while
every task showed success). `SELECT DISTINCT *` removes only identical rows: once
an employee has a second version in the files, PostgreSQL raises "ON CONFLICT DO
UPDATE command cannot affect row a second time", the `except` turns it into a
successful task, and `employees` silently stops changing.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pendulum
from airflow.decorators import dag, task
from airflow.models import Variable
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.postgres.hooks.postgres import PostgresHook

COLUMNS = "serial_number, company_name, employee_markme, description, leave_days, updated_at"


@dag(
    dag_id="process_employees",
    schedule="0 0 * * *",
    start_date=pendulum.datetime(2026, 6, 1, tz="UTC"),
    catchup=False,
    dagrun_timeout=datetime.timedelta(minutes=60),
)
def ProcessEmployees():
    create_employees_table = SQLExecuteQueryOperator(
        task_id="create_employees_table",
        conn_id="tutorial_pg_conn",
        sql="""
            CREATE TABLE IF NOT EXISTS employees (
                serial_number BIGINT PRIMARY KEY,
                company_name TEXT,
                employee_markme TEXT,
                description TEXT,
                leave_days INTEGER,
                updated_at TIMESTAMP
            );""",
    )

    create_employees_temp_table = SQLExecuteQueryOperator(
        task_id="create_employees_temp_table",
        conn_id="tutorial_pg_conn",
        sql="""
            DROP TABLE IF EXISTS employees_temp;
            CREATE TABLE employees_temp (
                serial_number BIGINT,
                company_name TEXT,
                employee_markme TEXT,
                description TEXT,
                leave_days INTEGER,
                updated_at TIMESTAMP
            );""",
    )

    @task
    def get_data():
        # the tutorial downloads one CSV; here the exports land as files in a folder
        data_dir = Path(Variable.get("employees_dir", default_var="/opt/airflow/dags/files"))
        postgres_hook = PostgresHook(postgres_conn_id="tutorial_pg_conn")
        conn = postgres_hook.get_conn()
        cur = conn.cursor()
        for path in sorted(data_dir.glob("*.csv")):
            with open(path) as file:
                cur.copy_expert(f"COPY employees_temp ({COLUMNS}) FROM STDIN WITH CSV HEADER DELIMITER AS ',' QUOTE '\"'", file)
        conn.commit()

    @task
    def merge_data():
        query = f"""
            INSERT INTO employees ({COLUMNS})
            SELECT *
            FROM (
                SELECT DISTINCT *
                FROM employees_temp
            ) t
            ON CONFLICT (serial_number) DO UPDATE
            SET
              company_name = excluded.company_name,
              employee_markme = excluded.employee_markme,
              description = excluded.description,
              leave_days = excluded.leave_days,
              updated_at = excluded.updated_at;
        """
        try:
            postgres_hook = PostgresHook(postgres_conn_id="tutorial_pg_conn")
            conn = postgres_hook.get_conn()
            cur = conn.cursor()
            cur.execute(query)
            conn.commit()
            return 0
        except Exception:
            return 1

    [create_employees_table, create_employees_temp_table] >> get_data() >> merge_data()


dag = ProcessEmployees()
