"""Classes fixed against the real corpus (issue 12, second pass): each a small realistic
snippet of the shape found in public pipeline code, the risky twin and the safe twin."""

from __future__ import annotations

from pathlib import Path

import pytest

from idemtest.review import review_paths


def rules_for(tmp_path: Path, name: str, text: str) -> list[tuple[int, str]]:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    result = review_paths([p])
    assert not result.skipped, result.skipped
    return sorted((f.line, f.rule_id) for f in result.findings)


_AUDIT = """WITH jobs AS (
  SELECT job_id, user_email, start_time
  FROM `{project}.{dataset}.cloudaudit_googleapis_com_data_access`
  WHERE true
    AND timestamp >= current_timestamp - interval 30 day
)
SELECT user_email, count(*) AS jobs
FROM jobs
GROUP BY user_email
"""


@pytest.mark.parametrize(
    ("name", "sql", "want"),
    [
        # a dashboard query over the last 30 days, written by its task with WRITE_TRUNCATE:
        # every run recomputes the window whole (a rolling report), nothing is carried over
        ("audit_report.sql", _AUDIT, []),
        ("weekly.sql", "CREATE OR REPLACE TABLE rpt.weekly AS SELECT * FROM raw.events\n"
                       "WHERE event_ts >= now() - interval '7 days';\n", []),
        # the same window appended: a late or retried run duplicates or skips rows
        ("append_recent.sql", "INSERT INTO rpt.events SELECT * FROM raw.events\n"
                              "WHERE event_ts >= now() - interval '7 days';\n",
         [(1, "IDM201"), (2, "IDM401")]),
        # an incremental dbt model merges its rows into what is there: still a cursor on now()
        ("models/recent_events.sql",
         "{{ config(materialized='incremental') }}\nselect * from {{ ref('events') }}\n"
         "where event_ts >= now() - interval '1 hour'\n",
         [(1, "IDM601"), (3, "IDM401")]),
    ],
)
def test_rolling_report_is_not_a_watermark(tmp_path: Path, name: str, sql: str,
                                           want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, name, sql) == want


_SETUP = """-- load the sample database:  psql -d shop < install.sql
\\c shop
\\pset tuples_only on

CREATE SCHEMA Sales
  CREATE TABLE Customer(
    CustomerID SERIAL NOT NULL,
    Status smallint NOT NULL, -- 1 = new; 2 = active; 3 = closed
    ModifiedDate TIMESTAMP NOT NULL DEFAULT (NOW())
  )
  CREATE TABLE Store(
    BusinessEntityID INT NOT NULL,
    Name varchar(50) NOT NULL
  );

SELECT 'Copying data into Sales.Customer';
\\copy Sales.Customer FROM 'data/Customer.csv' DELIMITER E'\\t' CSV;
INSERT INTO Sales.Store (BusinessEntityID, Name) VALUES (1, 'Bike World');
"""


def test_psql_setup_script_seeds_the_tables_it_creates(tmp_path: Path) -> None:
    # psql backslash commands end at the end of their line (they used to swallow the next
    # statement), and CREATE SCHEMA's elements create their tables: seeding them is no append
    p = tmp_path / "install.sql"
    p.write_text(_SETUP, encoding="utf-8")
    res = review_paths([p])
    assert res.findings == [] and res.skipped == []


def test_psql_copy_into_a_table_kept_between_runs_appends(tmp_path: Path) -> None:
    text = "\\set ON_ERROR_STOP on\n\\copy raw.orders FROM 'orders.csv' CSV HEADER\n"
    assert rules_for(tmp_path, "load_orders.sql", text) == [(2, "IDM201")]


_DEL_INS = '''from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator
from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator


def delete_then_insert(project, dataset, table, batch_id, objects, **context):
    query = f"DELETE FROM {dataset}.{table} WHERE batch_id = '{batch_id}'"
    BigQueryInsertJobOperator(
        task_id=f"delete_{table}",
        configuration={"query": {"query": query, "useLegacySql": False}},
    ).execute(context)
    GCSToBigQueryOperator(
        task_id=f"load_{table}",
        bucket="exports",
        source_objects=objects,
        destination_project_dataset_table=f"{project}.{dataset}.{table}",
        write_disposition="WRITE_APPEND",
    ).execute(context)
'''


def test_delete_job_then_load_job_leaves_a_gap(tmp_path: Path) -> None:
    # two BigQuery jobs, each committed when it ends: between them the batch is gone
    assert rules_for(tmp_path, "del_ins.py", _DEL_INS) == [(6, "IDM301")]
    # staged and merged instead: one job changes the target, nothing to report
    merge = _DEL_INS.replace("DELETE FROM {dataset}.{table} WHERE batch_id = '{batch_id}'",
                             "MERGE INTO {dataset}.{table} t USING {dataset}.{table}_staging s "
                             "ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v")
    merge = merge.replace("{dataset}.{table}\",", "{dataset}.{table}_staging\",").replace(
        "WRITE_APPEND", "WRITE_TRUNCATE")
    assert rules_for(tmp_path, "merge.py", merge) == []


@pytest.mark.parametrize(
    ("sql", "want"),
    [
        # PeopleSoft's effective-dated lookup: the row in effect now is current state, the
        # clock only filters inside the subquery (not a window computed from the run's date)
        ("SELECT p.position_nbr, p.descr FROM ps_position_data p\n"
         "WHERE p.effdt = (\n    SELECT MAX(p2.effdt) FROM ps_position_data p2\n"
         "    WHERE p2.position_nbr = p.position_nbr AND p2.effdt <= SYSDATE\n);\n", []),
        # yesterday's rows: a window from the current date
        ("SELECT * FROM ps_pay_check c\nWHERE c.pay_end_dt = (SELECT TRUNC(SYSDATE) - 1 FROM dual);\n",
         [(2, "IDM501")]),
    ],
)
def test_effective_dated_current_row(tmp_path: Path, sql: str,
                                     want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "compile_src_data.sql", sql) == want


_INSERT = ('INSERT INTO EM_PAYCODE_D("PAYCODE_SID", "PAY_CD", "PAY_DESCR")\n'
           'VALUES (ORCHESTRATE."PAYCODE_SID", ORCHESTRATE."PAY_CD", ORCHESTRATE."PAY_DESCR");\n')
_UPDATE = ('UPDATE EM_PAYCODE_D SET\n    "PAY_CD" = ORCHESTRATE."PAY_CD",\n'
           '    "PAY_DESCR" = ORCHESTRATE."PAY_DESCR"\n'
           'WHERE "PAYCODE_SID" = ORCHESTRATE."PAYCODE_SID";\n')


def test_insert_update_statement_pair_is_an_upsert(tmp_path: Path) -> None:
    # an ETL tool's (DataStage) per-row statements: new keys inserted, changed keys updated
    job = tmp_path / "em_paycode_d"
    assert rules_for(job, "insert_into_target.sql", _INSERT) == [(1, "IDM201")]
    (job / "update_target.sql").write_text(_UPDATE, encoding="utf-8")
    assert rules_for(job, "insert_into_target.sql", _INSERT) == []
    # an UPDATE of another table does not make the insert keyed
    (job / "update_target.sql").write_text(_UPDATE.replace("EM_PAYCODE_D", "EM_PAYCODE_HIST"),
                                           encoding="utf-8")
    assert rules_for(job, "insert_into_target.sql", _INSERT) == [(1, "IDM201")]


_DAG_BY_NAME = """from datetime import datetime

from airflow.models import DAG
from airflow.operators.dummy_operator import DummyOperator

default_args = {'start_date': datetime(2019, 1, 1)}

dag = DAG(dag_id='example_serial', default_args=default_args)

with dag:
    first_task = DummyOperator(task_id='first_task')
    second_task = DummyOperator(task_id='second_task')
    second_task.set_upstream(first_task)
"""


def test_dag_bound_to_a_name_is_judged_by_its_tasks(tmp_path: Path) -> None:
    # `dag = DAG(...)` then `with dag:`: the tasks write nothing, so no scheduling hygiene
    assert rules_for(tmp_path, "serial.py", _DAG_BY_NAME) == []
    # the same DAG loading a table is scheduled daily with catch-up and overlapping runs
    loading = _DAG_BY_NAME.replace(
        "from airflow.operators.dummy_operator import DummyOperator",
        "from airflow.operators.dummy_operator import DummyOperator\n"
        "from airflow.operators.postgres_operator import PostgresOperator").replace(
        "    second_task = DummyOperator(task_id='second_task')",
        "    second_task = PostgresOperator(task_id='load', sql='DELETE FROM t; "
        "INSERT INTO t SELECT * FROM s')")
    assert rules_for(tmp_path, "loading.py", loading) == [(9, "IDM101"), (9, "IDM102"), (9, "IDM103")]
    # tasks made by a factory handed the DAG (`build_load_task(dag, ...)`) may write
    factory = _DAG_BY_NAME.replace(
        "with dag:\n", "load = build_load_task(dag, 'orders')\n\nwith dag:\n")
    assert rules_for(tmp_path, "factory.py", factory) == [(8, "IDM101"), (8, "IDM102"), (8, "IDM103")]


@pytest.mark.parametrize(
    ("code", "want"),
    [
        # pandas-gbq appends a month into the table: a re-run appends it again
        ("def load(df, color):\n    df.to_gbq(destination_table=f'trips.{color}_taxi',\n"
         "              project_id='p', if_exists='append')\n", [(2, "IDM202")]),
        ("def load(df):\n    df.to_gbq('trips.yellow_taxi', project_id='p', if_exists='replace')\n",
         []),
        # an empty frame replaced (`df[:0]`, `df.head(0)`) creates the table; the COPY that
        # follows fills it, nothing is appended to rows kept from an earlier run
        ("def handle_output(obj, con, table):\n"
         "    obj[:0].to_sql(con=con, name=table, index=True, if_exists='replace')\n"
         "    with con.connection.cursor() as c:\n"
         "        c.copy_expert(f'COPY {table} FROM STDIN WITH (FORMAT csv)', buf)\n", []),
        ("def ingest(chunks, engine):\n    first = True\n    for chunk in chunks:\n"
         "        if first:\n            chunk.head(0).to_sql('trips', engine, if_exists='replace')\n"
         "            first = False\n        chunk.to_sql('trips', engine, if_exists='append')\n", []),
    ],
)
def test_pandas_writes(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "load.py", code) == want
