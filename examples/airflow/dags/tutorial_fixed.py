"""The Airflow tutorial's employees pipeline, fixed.

The same DAG as tutorial_original.py, with three changes:
- `merge_data` lets errors fail the task (no `except`), so Airflow retries it
  and a failure is seen;
- `get_data` empties `employees_temp` in the transaction that loads it, so a
  retried `get_data` never loads the files twice;
- the merge keeps the newest version of each employee (`DISTINCT ON ... ORDER BY
  updated_at DESC`) and never replaces a newer row with an older one;
- `max_active_runs=1`: two DAG runs at once would share `employees_temp`;
  retries=2 with a 5-minute delay.
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
    dag_id="process_employees_fixed",
    schedule="0 0 * * *",
    start_date=pendulum.datetime(2026, 6, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=datetime.timedelta(minutes=60),
    default_args={"retries": 2, "retry_delay": datetime.timedelta(minutes=5)},
)
def ProcessEmployeesFixed():
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
            CREATE TABLE IF NOT EXISTS employees_temp (
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
        data_dir = Path(Variable.get("employees_dir", default_var="/opt/airflow/dags/files"))
        postgres_hook = PostgresHook(postgres_conn_id="tutorial_pg_conn")
        conn = postgres_hook.get_conn()
        with conn, conn.cursor() as cur:  # one transaction: emptied and loaded together
            cur.execute("TRUNCATE employees_temp")
            for path in sorted(data_dir.glob("*.csv")):
                with open(path) as file:
                    cur.copy_expert(f"COPY employees_temp ({COLUMNS}) FROM STDIN WITH CSV HEADER", file)
        conn.close()

    @task
    def merge_data():
        PostgresHook(postgres_conn_id="tutorial_pg_conn").run(
            f"""
            INSERT INTO employees AS e ({COLUMNS})
            SELECT DISTINCT ON (serial_number) {COLUMNS}
            FROM employees_temp
            ORDER BY serial_number, updated_at DESC
            ON CONFLICT (serial_number) DO UPDATE
            SET
              company_name = excluded.company_name,
              employee_markme = excluded.employee_markme,
              description = excluded.description,
              leave_days = excluded.leave_days,
              updated_at = excluded.updated_at
            WHERE e.updated_at < excluded.updated_at;
            """
        )

    [create_employees_table, create_employees_temp_table] >> get_data() >> merge_data()


dag = ProcessEmployeesFixed()
