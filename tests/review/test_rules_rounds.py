"""Classes fixed after the first-contact measurements of rounds 5 to 11 of the real corpus
(issue 12): each a small realistic snippet of the shape found in public pipeline code, the
risky twin and the safe twin."""

from __future__ import annotations

from pathlib import Path

from idemtest.review import review_paths


def findings(tmp_path: Path, name: str, text: str) -> list[tuple[int, str]]:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    result = review_paths([p])
    assert not result.skipped, result.skipped
    assert not result.internal_errors, result.internal_errors
    return sorted((f.line, f.rule_id) for f in result.findings)


_NO_START = """from airflow import DAG
from airflow.providers.postgres.operators.postgres import PostgresOperator

with DAG(dag_id="dag_runs_log"{extra}) as dag:
    delete = PostgresOperator(task_id="delete", postgres_conn_id="pg",
                              sql="delete from dag_runs where dt = '{{{{ ds }}}}'")
    insert = PostgresOperator(task_id="insert", postgres_conn_id="pg",
                              sql="insert into dag_runs (dt) values ('{{{{ ds }}}}')")
    delete >> insert
"""


def test_dag_without_start_date_or_schedule_is_not_scheduled(tmp_path: Path) -> None:
    # no schedule and no start_date: Airflow < 2.8 refuses it, later versions never start it
    # on their own: catch-up and overlap cannot arise (the delete/insert gap still can)
    assert findings(tmp_path, "manual.py", _NO_START.format(extra="")) == [(6, "IDM301")]
    # a start_date (on the DAG or in default_args) makes Airflow 2's default daily schedule run
    dated = _NO_START.format(extra=", start_date=datetime(2024, 5, 1)")
    assert findings(tmp_path, "dated.py", "from datetime import datetime\n" + dated) == [
        (5, "IDM101"), (5, "IDM102"), (5, "IDM103"), (7, "IDM301")]
    in_defaults = _NO_START.format(extra=", default_args=ARGS")
    in_defaults = in_defaults.replace(
        "with DAG", "ARGS = {'start_date': datetime(2024, 5, 1), 'retries': 2}\n\nwith DAG")
    assert findings(tmp_path, "defaults.py", "from datetime import datetime\n" + in_defaults) == [
        (7, "IDM101"), (7, "IDM102"), (9, "IDM301")]
    # default_args we cannot read may carry the start_date: judged as scheduled
    unknown = _NO_START.format(extra=", default_args=load_args()")
    assert (4, "IDM101") in findings(tmp_path, "unknown.py", unknown)


_SLEEPS = """import datetime
import pendulum
import time

from airflow.decorators import dag, task

@dag(dag_id="dag_sla", schedule="*/2 * * * *", start_date=pendulum.datetime(2024, 5, 1, tz="UTC"))
def dag_sla():
    @task(task_id="first_sleep", sla=datetime.timedelta(seconds=10))
    def first_sleep():
        time.sleep(20)

    @task
    def second_sleep():
        {second}

    first_sleep() >> second_sleep()

dag_sla()
"""


def test_taskflow_decorator_arguments_are_not_the_task_body(tmp_path: Path) -> None:
    # tasks that only sleep change no data: no DAG hygiene, though the decorator calls timedelta
    assert findings(tmp_path, "sleeps.py", _SLEEPS.format(second="time.sleep(10)")) == []
    # a task that writes makes the DAG's scheduling matter
    writes = _SLEEPS.format(second="PostgresHook('pg').run('insert into beats select now()')")
    got = findings(tmp_path, "writes.py", writes)
    assert (7, "IDM101") in got and (7, "IDM102") in got


_ANALYSIS = """{{ config(materialized='incremental', incremental_strategy='append') }}
select id, date_day from {{ ref('incremental_seed') }}
{% if is_incremental() %}
  where date_day >= (select max(date_day) from {{ this }})
{% endif %}
"""


def test_dbt_analyses_are_compiled_not_run(tmp_path: Path) -> None:
    # an analysis is compiled into target/ and never materialised: nothing to review
    for folder in ("analysis", "analyses"):
        p = tmp_path / folder / "inc_append.sql"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(_ANALYSIS, encoding="utf-8")
        res = review_paths([p])
        assert not res.findings and [s.reason for s in res.skipped] == [
            "dbt analysis (dbt compiles it, never runs it)"]
    # the same SQL as a model appends on every run
    assert findings(tmp_path, "models/inc_append.sql", _ANALYSIS) == [(1, "IDM601"), (4, "IDM402")]
    # dbt_project.yml names the analysis folder: a model folder called `analysis` is a model
    proj = tmp_path / "proj"
    (proj / "analysis").mkdir(parents=True)
    (proj / "dbt_project.yml").write_text("name: shop\nmodel-paths: ['analysis']\n"
                                          "analysis-paths: ['adhoc']\n", encoding="utf-8")
    (proj / "analysis" / "inc_append.sql").write_text(_ANALYSIS, encoding="utf-8")
    assert [f.rule_id for f in review_paths([proj]).findings] == ["IDM601", "IDM402"]
    # a plain SQL script in a folder called analysis (no dbt templating) is still reviewed
    assert findings(tmp_path, "analysis/load.sql", "INSERT INTO t SELECT * FROM s;\n") == [
        (1, "IDM201")]


_REPORT = """import sys
import traceback


def parse_report(s3_client, data, name):
    try:
        write_csv_s3(client=s3_client, dictionary=data, filename=name)
    except Exception as e:
        print(f"ERROR - CSV NOT WRITTEN - {{name}}: {{e}}")
        traceback.print_exc()
        {end}
"""


def test_exit_with_status_zero_swallows_the_failure(tmp_path: Path) -> None:
    # exit() / sys.exit() / sys.exit(0) end the script with status 0: its scheduler sees success
    for end in ("exit()", "sys.exit()", "sys.exit(0)"):
        assert findings(tmp_path, "parse.py", _REPORT.format(end=end)) == [(8, "IDM206")]
    # a non-zero status (or a message, which exits 1) fails the run
    for end in ("sys.exit(1)", "sys.exit(f'failed: {e}')", "raise"):
        assert findings(tmp_path, "parse.py", _REPORT.format(end=end)) == []


def test_uploads_and_write_helpers_are_loads(tmp_path: Path) -> None:
    upload = ("def upload(blob, path):\n    try:\n        blob.upload_from_filename(path)\n"
              "    except Exception as e:\n        print(f'upload failed: {e}')\n")
    assert findings(tmp_path, "upload.py", upload) == [(4, "IDM206")]
    # reading a config is no load: nothing to report however its errors are handled
    read = ("def settings(path):\n    try:\n        return load_config(path)\n"
            "    except Exception:\n        return {}\n")
    assert findings(tmp_path, "settings.py", read) == []


_CHUNKS = """import pandas as pd


def convert(path, out):
{prep}    for chunk in pd.read_json(path, lines=True, chunksize=10000):
        chunk.to_csv(out, mode="a", index=False)
"""


def test_appending_to_an_output_file(tmp_path: Path) -> None:
    # every run (and retry) appends the rows to what the file already holds
    assert findings(tmp_path, "to_csv.py", _CHUNKS.format(prep="")) == [(6, "IDM201")]
    # the run starts the file afresh, then appends its chunks: one output per run
    for prep in ("    if os.path.exists(out):\n        os.remove(out)\n",
                 "    pd.DataFrame(columns=COLS).to_csv(out, index=False)\n",
                 "    open(out, 'w').close()\n"):
        assert findings(tmp_path, "to_csv.py", _CHUNKS.format(prep=prep)) == []



def test_delete_file_whose_reload_is_another_files_task(tmp_path: Path) -> None:
    # each .sql file is one operator task: the day's delete commits before the insert task runs
    d = tmp_path / "sql"
    d.mkdir()
    (d / "insert_sales.sql").write_text("insert into sales select * from stg_sales;\n")
    delete = "delete from sales where sale_date = '{{ ds }}';\n"
    assert findings(tmp_path, "sql/delete_sales_day.sql", delete) == [(1, "IDM301")]
    # no sibling reloads the table (a purge, or a staging cleanup): nothing to say
    assert findings(tmp_path, "sql/delete_orders_day.sql",
                    delete.replace("sales", "orders")) == []
    assert findings(tmp_path, "sql/clean_staging.sql", "delete from stg_sales;\n") == []


_MAKES = """import requests
from dagster import asset


@asset
def model_names(context, makes):
    frames = []
    for make_id in makes:
        try:
            response = requests.get(f"https://example.org/models/{{make_id}}", timeout=30)
            response.raise_for_status()
        except requests.exceptions.HTTPError as e:
            context.log.warning(f"HTTP error for {{make_id}}: {{e}}")
            {handler}
        frames.append(response.json())
    return frames
"""


def test_dagster_asset_skipping_failed_fetches(tmp_path: Path) -> None:
    # the IO manager replaces the asset with what was collected: a skipped page is lost rows
    assert findings(tmp_path, "assets.py", _MAKES.format(handler="continue")) == [
        (12, "IDM206")]
    assert findings(tmp_path, "assets.py", _MAKES.format(handler="raise")) == []
    gathered = ("import asyncio\nimport dagster\n\n\nasync def pages(fetches):\n"
                "    out = []\n    for r in await asyncio.gather(*fetches, return_exceptions=True):\n"
                "        if isinstance(r, Exception):\n            continue\n"
                "        out.append(r)\n    return out\n")
    assert findings(tmp_path, "pages.py", gathered) == [(8, "IDM206")]
    # outside Dagster the skipped item may be fetched again by the next run: not judged
    plain = _MAKES.format(handler="continue").replace("from dagster import asset\n", "")
    assert findings(tmp_path, "fetch.py", plain.replace("@asset\n", "")) == []


_SUBDAG = """from airflow.models import DAG
from airflow.contrib.operators.bigquery_operator import BigQueryOperator


def load_warehouse(parent, child, args, tables, day):
    dag = DAG(dag_id=f"{{parent}}.{{child}}", default_args=args, schedule_interval=None)
    for t in tables:
        load = BigQueryOperator(
            task_id=f"{{t}}_to_dwh",
            destination_dataset_table="dwh.{{}}".format(t),
            write_disposition="{mode}",
            sql="sql/load_{{}}.sql".format(t),
            dag=dag)
        delete = BigQueryOperator(
            task_id=f"delete_{{t}}",
            sql="DELETE FROM `dwh.{{}}` WHERE business_date = '{{}}'".format(t, day),
            dag=dag)
        {edge}
    return dag
"""


def test_tasks_are_ordered_by_their_dependencies(tmp_path: Path) -> None:
    # the DELETE task is written after the load but runs before it (`delete >> load`)
    risky = _SUBDAG.format(mode="WRITE_APPEND", edge="delete >> load")
    assert findings(tmp_path, "subdag.py", risky) == [(16, "IDM301")]
    assert findings(tmp_path, "subdag.py", risky.replace("delete >> load", "load << delete")) \
        == [(16, "IDM301")]
    # the other way round the delete clears what the load wrote: not a gap before a reload
    assert findings(tmp_path, "subdag.py", _SUBDAG.format(mode="WRITE_APPEND",
                                                          edge="load >> delete")) == []


def test_dag_named_like_a_test_is_reviewed(tmp_path: Path) -> None:
    # a trial DAG named `*_test.py` is deployed and runs; a pytest module is not reviewed
    risky = _SUBDAG.format(mode="WRITE_APPEND", edge="delete >> load")
    risky = risky.replace("def load_warehouse", "dag = DAG('wh', schedule_interval=None)\n\n\n"
                                               "def load_warehouse")
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "subdag_wh_test.py").write_text(risky)
    (tmp_path / "dags" / "dag_test.py").write_text("import pytest\n\n" + risky)
    result = review_paths([tmp_path])
    assert {(f.file.rsplit("/", 1)[-1], f.rule_id) for f in result.findings} == {
        ("subdag_wh_test.py", "IDM301")}


_PARSE_TIME = """from datetime import datetime, timedelta

from airflow import DAG
from airflow.models import Variable
from airflow.providers.postgres.operators.postgres import PostgresOperator

BUSINESS_DATE = Variable.get("business_date", default_var=None)
if BUSINESS_DATE is None:
    yesterday = datetime.now() - timedelta(days=1)
    BUSINESS_DATE = yesterday.strftime("%Y%m%d")

with DAG("sales_day", schedule_interval="@daily", start_date=datetime(2024, 1, 1),
         catchup=False, max_active_runs=1, default_args={{"retries": 2}}) as dag:
    PostgresOperator(task_id="refresh", postgres_conn_id="dwh",
                     sql="call refresh_sales(%(day)s)", parameters={{"day": {day}}})
"""


def test_date_read_at_parse_time_handed_to_a_task(tmp_path: Path) -> None:
    # the scheduler parses the file daily: every retry or backfill gets that day
    assert findings(tmp_path, "sales.py", _PARSE_TIME.format(day="BUSINESS_DATE")) == [
        (9, "IDM501")]
    assert findings(tmp_path, "sales.py", _PARSE_TIME.format(day="'{{ ds_nodash }}'")) == []


_BATCHES = """import logging


def insert_data(conn, table, rows, batch_size=1000):
    try:
        with conn.cursor() as cur:
            for start in range(0, len(rows), batch_size):
                cur.executemany(f"INSERT INTO {{table}} VALUES (%s, %s) ON CONFLICT (id) "
                                "DO UPDATE SET v = EXCLUDED.v", rows[start:start + batch_size])
                conn.commit()
    except Exception as ex:
        logging.error("load of %s failed: %s", table, ex)
        {end}
"""


def test_swallowed_error_of_committed_batches(tmp_path: Path) -> None:
    # a committed batch is a write: a failure logged and returned as False reports success
    assert findings(tmp_path, "wrapper.py", _BATCHES.format(end="return False")) == [
        (11, "IDM206")]
    assert findings(tmp_path, "wrapper.py", _BATCHES.format(end="raise")) == []


_RUNNER = """class Runner:
    def __init__(self, source, dest):
        self.source, self.dest = source, dest

    def truncate_reload(self, schema, table_name, query):
{body}
"""


def test_truncate_helper_then_load_helper(tmp_path: Path) -> None:
    # each helper runs and commits its own statements: a failed load leaves the table empty
    risky = ("        self.dest.truncate_table(schema, table_name)\n"
             "        rows = self.source.query(query)\n"
             "        self.dest.insert_data(schema, table_name, rows)")
    assert findings(tmp_path, "runner.py", _RUNNER.format(body=risky)) == [(6, "IDM301")]
    # in one transaction block the reload replaces the rows atomically
    safe = "        with self.dest.transaction():\n" + "\n".join(
        "    " + ln for ln in risky.splitlines())
    assert findings(tmp_path, "runner.py", _RUNNER.format(body=safe)) == []
    # another table (a staging one cleared after use) is no gap
    other = risky.replace("truncate_table(schema, table_name)", "truncate_table(schema, stg_table)")
    assert findings(tmp_path, "runner.py", _RUNNER.format(body=other)) == []


_NORTHWIND = """from utilities.etl_runner import ETLRunner

runner = ETLRunner(SqlServer, Postgres)
runner.insert_latest(schema="nw", table_name="Orders", source_query="SELECT * FROM Orders",
                     max_field="OrderID")
runner.insert_latest(schema="nw", table_name="Order_Details",
                     source_query="SELECT * FROM Order_Details"{cursor})
"""


def test_incremental_helper_called_without_its_cursor(tmp_path: Path) -> None:
    # the other call shows the helper appends what is past max_field: without it, everything
    assert findings(tmp_path, "nw.py", _NORTHWIND.format(cursor="")) == [(6, "IDM201")]
    assert findings(tmp_path, "nw.py", _NORTHWIND.format(cursor=', max_field="OrderID"')) == []
    # one call alone says nothing about what the helper does without the keyword
    single = "\n".join(_NORTHWIND.format(cursor="").splitlines()[:3] + [
        'runner.insert_latest(schema="nw", table_name="Order_Details", source_query="q")'])
    assert findings(tmp_path, "nw.py", single) == []


_DB_HELPER = """import mysql.connector


class DataBase:
    def __init__(self):
        self.con = mysql.connector.connect(user="etl", database="shop", autocommit=True)
        self.cur = self.con.cursor()

    def insert_to(self, table, rows):
        query = {
            "dim_users": "INSERT INTO dim_users (name, email) VALUES (%s, %s)",
            "dim_product": "INSERT INTO dim_product (product_name) VALUES (%s)",
        }
        self.cur.executemany(query[table], rows)
"""
_FAKE_USERS = """import random
import string

import Database

db = Database.DataBase()


def insert_users():
    names = ["".join(random.choice(string.ascii_letters) for _ in range(12)) for _ in range(100)]
    db.insert_to("dim_users", [(n, n + "@example.com") for n in names])
"""


def test_database_helper_of_data_generators(tmp_path: Path) -> None:
    # its only importer makes its rows up with `random` and reads nothing: demo data
    d = tmp_path / "dumpdata"
    d.mkdir()
    (d / "Database.py").write_text(_DB_HELPER)
    (d / "fake.py").write_text(_FAKE_USERS)
    result = review_paths([d])
    assert result.findings == []
    assert {s.file.rsplit("/", 1)[-1] for s in result.skipped} == {"Database.py", "fake.py"}
    # an importer that reads a source file is a load: the helper's appends are reviewed
    (d / "fake.py").write_text(_FAKE_USERS.replace(
        "    names = [", "    names = open('users.txt').read().split()\n    _ = ["))
    assert [(f.line, f.rule_id) for f in review_paths([d]).findings] == [
        (11, "IDM201"), (12, "IDM201")]


_EVENTS = """from data_pipeline.bq import load_file_into_bq
from data_pipeline.state import read_state


def events_etl(**kwargs):
    since = read_state(bucket=kwargs["state_bucket"], object_key="events/state.json")
    path, latest = download_events(since)
    load_file_into_bq(filename=path, dataset_name="raw", table_name="events"{mode})
    kwargs["ti"].xcom_push(key="latest_event_date", value=latest)


def save_state(**kwargs):
    latest = kwargs["ti"].xcom_pull(key="latest_event_date", task_ids="events_etl")
    write_state(bucket=kwargs["state_bucket"], object_key="events/state.json", data=latest)
"""


def test_window_appended_while_a_later_task_saves_the_cursor(tmp_path: Path) -> None:
    # the load job's default is WRITE_APPEND: a failed save or a retry appends the window again
    assert findings(tmp_path, "events.py", _EVENTS.format(mode="")) == [(8, "IDM201")]
    assert findings(tmp_path, "events.py",
                    _EVENTS.format(mode=', write_mode="WRITE_TRUNCATE"')) == []


_SNOW = """import snowflake.connector


def load_customers(cfg):
    conn = snowflake.connector.connect(**cfg{autocommit})
    cur = conn.cursor()
    cur.execute("TRUNCATE TABLE analytics.customers")
    cur.execute("INSERT INTO analytics.customers SELECT * FROM raw.customers")
    conn.commit()
"""


def test_snowflake_connector_autocommits_each_statement(tmp_path: Path) -> None:
    # AUTOCOMMIT is on by default: the TRUNCATE is committed before the INSERT runs
    assert findings(tmp_path, "snow.py", _SNOW.format(autocommit="")) == [(7, "IDM301")]
    assert findings(tmp_path, "snow.py", _SNOW.format(autocommit=", autocommit=False")) == []


def test_schema_script_dropping_and_creating_empty_tables(tmp_path: Path) -> None:
    # a setup script: DROP then CREATE with columns only leaves an empty table by design
    ddl = ("DROP TABLE IF EXISTS results.race;\n"
           "CREATE TABLE results.race (\n    event_cd INT,\n    driver_id VARCHAR(50)\n);\n")
    assert findings(tmp_path, "create_race.sql", ddl) == []
    # DROP then CREATE ... AS SELECT brings the rows back in another statement: the gap is real
    ctas = ("DROP TABLE IF EXISTS results.race;\n"
            "CREATE TABLE results.race AS SELECT * FROM raw.race;\n")
    assert findings(tmp_path, "rebuild_race.sql", ctas) == [(1, "IDM301")]


def test_file_that_creates_a_table_only_to_empty_it(tmp_path: Path) -> None:
    # the operator task "create if missing, then truncate": the load is another task, after
    # this one has committed, so a failed load leaves the table empty
    sql = ("CREATE TABLE IF NOT EXISTS src_offer (\n    id NUMERIC(3),\n    label VARCHAR(15)\n"
           ");\n\nTRUNCATE TABLE src_offer;\n")
    assert findings(tmp_path, "sql/src_offer_schema.sql", sql) == [(6, "IDM301")]
    # creating the table only (the load task replaces or upserts its rows) is no risk
    assert findings(tmp_path, "sql/src_offer_only.sql", sql.split("\n\n")[0] + "\n") == []


_DBT_INC = """{{{{ config(
    materialized='incremental'{key}
) }}}}

SELECT *
FROM {{{{ {upstream} }}}} bronze
{{% if is_incremental() %}}
WHERE bronze.{col} > (SELECT max({col}) FROM {{{{ this }}}})
{{% endif %}}
"""


def test_dbt_incremental_finding_on_the_materialized_line(tmp_path: Path) -> None:
    # the line a user fixes: materialized='incremental' (a unique_key beside it)
    assert findings(tmp_path, "models/fact_events.sql", _DBT_INC.format(
        key="", upstream="ref('fact_events_bronze')", col="loaded_at")) == [(2, "IDM601")]
    assert findings(tmp_path, "models/fact_events.sql", _DBT_INC.format(
        key=",\n    unique_key='event_id'", upstream="ref('fact_events_bronze')",
        col="loaded_at")) == []


def test_strict_cursor_on_the_load_stamp_of_an_upstream_model(tmp_path: Path) -> None:
    key = ",\n    unique_key='event_id'"
    # an upstream dbt model is built whole before this one: no row with its last stamp
    # commits later, `>` takes exactly the new batches
    assert findings(tmp_path, "models/a.sql", _DBT_INC.format(
        key=key, upstream="ref('events_bronze')", col="loaded_at")) == []
    # a source loaded by another tool may still commit rows with the last stamp
    assert findings(tmp_path, "models/b.sql", _DBT_INC.format(
        key=key, upstream="source('raw', 'events')", col="loaded_at")) == [(9, "IDM403")]
    # an event-time cursor still wants a lookback and `>=`, whatever it reads
    assert findings(tmp_path, "models/c.sql", _DBT_INC.format(
        key=key, upstream="ref('events_bronze')", col="updated_at")) == [
        (9, "IDM402"), (9, "IDM403")]


def test_seed_script_of_literal_rows(tmp_path: Path) -> None:
    # reference rows typed into the script: a re-run puts the same fixed rows back
    seed = ("TRUNCATE TABLE src_product;\n\n"
            "INSERT INTO src_product (id, label) VALUES (1, 'Voice');\n"
            "INSERT INTO src_product (id, label) VALUES (2, 'SMS'), (0, 'Unknown');\n")
    assert findings(tmp_path, "data/src_product_data.sql", seed) == []
    assert findings(tmp_path, "data/src_product_rows.sql", seed.split("\n\n")[1]) == []
    # rows selected from another table are a load: appended again by each run
    load = "INSERT INTO product_dim (id, label) SELECT id, label FROM src_product;\n"
    assert findings(tmp_path, "load_product.sql", load) == [(1, "IDM201")]


_IO_MANAGER = """import pandas as pd
from dagster import ConfigurableIOManager, OutputContext
from sqlalchemy import create_engine, text


class SQLIOManager(ConfigurableIOManager):
    url: str

    def handle_output(self, context: OutputContext, obj: pd.DataFrame):
        schema, table, mode = context.asset_key.path
        if mode == "cleanup":
            with create_engine(self.url).connect() as con:
                try:
                    context.log.info("running " + self._cleanup_sql(table, schema))
                    con.execute(text(self._cleanup_sql(table, schema)))
                {handler}
        with create_engine(self.url).connect() as con:
            obj.to_sql(table, con=con, schema=schema, if_exists="append", index=False)

    def _cleanup_sql(self, table: str, schema: str):
        return f"{verb} {{schema}}.{{table}}"
"""

_IO_MANAGER_ONE_TXN = """import pandas as pd
from dagster import ConfigurableIOManager, OutputContext
from sqlalchemy import create_engine, text


class SQLIOManager(ConfigurableIOManager):
    url: str

    def handle_output(self, context: OutputContext, obj: pd.DataFrame):
        schema, table, mode = context.asset_key.path
        with create_engine(self.url).begin() as con:
            if mode == "cleanup":
                try:
                    con.execute(text(self._cleanup_sql(table, schema)))
                except Exception:
                    context.log.error("cleanup failed")
                    raise
            obj.to_sql(table, con=con, schema=schema, if_exists="append", index=False)

    def _cleanup_sql(self, table: str, schema: str):
        return f"delete from {schema}.{table}"
"""


def test_io_manager_clearing_through_a_sql_returning_helper(tmp_path: Path) -> None:
    # the helper's TRUNCATE runs where execute() is given it (not where it is logged), on
    # one connection, the append on another: a failed append leaves the table empty; a bare
    # except that only logs lets the append go on top of the old rows
    risky = _IO_MANAGER.format(handler="except:\n                    context.log.info('no table')",
                               verb="truncate")
    assert findings(tmp_path, "io.py", risky) == [(15, "IDM301"), (16, "IDM206")]
    # the clear and the append in one transaction, the error re-raised: nothing to say
    assert findings(tmp_path, "io.py", _IO_MANAGER_ONE_TXN) == []


_PARTITIONS = """from datetime import datetime, timedelta
from dagster import DailyPartitionsDefinition

{start}
daily_partitions = DailyPartitionsDefinition(start_date={arg})
"""


def test_partitions_starting_from_the_wall_clock(tmp_path: Path) -> None:
    # the partition set slides with each code load: old days drop out, no backfill reaches them
    assert findings(tmp_path, "partitions.py", _PARTITIONS.format(
        start="today = datetime.today()", arg="today - timedelta(days=15)")) == [(5, "IDM105")]
    assert findings(tmp_path, "partitions.py", _PARTITIONS.format(
        start="", arg="'2023-01-01'")) == []


_PSYCOPG = """import psycopg2


def load_census(dsn, path, logger):
    try:
        conn = psycopg2.connect(dsn){session}
        cursor = conn.cursor()
        cursor.execute("TRUNCATE census_dimension;")
        with open(path) as f:
            cursor.copy_from(f, "census_dimension", sep="\\t")
        conn.commit()
        return True
    except {error} as e:
        logger.error("Error: %s" % e)
        {after}
"""


def test_psycopg_truncate_then_copy_and_swallowed_database_errors(tmp_path: Path) -> None:
    # autocommit: the TRUNCATE is committed before copy_from runs; the library's base error
    # catches every failed write, and returning False reports success
    risky = _PSYCOPG.format(session="\n        conn.set_session(autocommit=True)",
                            error="psycopg2.Error", after="return False")
    assert findings(tmp_path, "load.py", risky) == [(9, "IDM301"), (14, "IDM206")]
    # one transaction (the default), and the error re-raised: nothing to say
    safe = _PSYCOPG.format(session="", error="psycopg2.Error", after="raise")
    assert findings(tmp_path, "load.py", safe) == []


_CLEANUP_ASSET = """import pandas as pd
from dagster import asset


@asset(required_resource_keys={{"mysql"}})
def forecast_cleanup(context, forecast_data: pd.DataFrame):
    days = tuple(set(forecast_data.day.astype(str)))
    query = f"DELETE FROM weather.forecast WHERE day IN {{days}}"
    with context.resources.mysql.get_connection() as conn:
        conn.cursor().execute(query)
        conn.commit()
    return forecast_data


@asset(io_manager_key="sql_io_manager", key_prefix=["weather", "{table}"])
def forecast_to_sql(context, forecast_cleanup: pd.DataFrame):
    return forecast_cleanup
"""


def test_asset_deleting_rows_its_downstream_io_manager_writes(tmp_path: Path) -> None:
    # two steps: the delete is committed before the IO manager writes the frame
    assert findings(tmp_path, "forecast.py", _CLEANUP_ASSET.format(table="forecast")) == [
        (8, "IDM301")]
    # the downstream asset's key names another table: the delete is no half of its write
    assert findings(tmp_path, "forecast.py", _CLEANUP_ASSET.format(table="forecast_v2")) == []


_APPENDING_IO = """import pandas as pd
from dagster import ConfigurableIOManager
from sqlalchemy import create_engine, text


class SQLIOManager(ConfigurableIOManager):
    url: str

    def handle_output(self, context, obj: pd.DataFrame):
        schema, table, mode = context.asset_key.path
        with create_engine(self.url).begin() as con:
            if mode == "cleanup":
                con.execute(text(f"delete from {schema}.{table}"))
            obj.to_sql(table, con=con, schema=schema, if_exists="{if_exists}", index=False)

    def load_input(self, context):
        return pd.read_sql(f"select * from {context.asset_key.path[1]}", self.url)
"""

_DEFINITIONS = """from dagster import Definitions
from resources.sql_io_manager import SQLIOManager
from assets import race_results_to_sql, race_laps_to_sql

defs = Definitions(assets=[race_results_to_sql, race_laps_to_sql],
                   resources={"sql_io_manager": SQLIOManager(url="mysql://db/f1")})
"""

_SESSION_ASSETS = """import pandas as pd
from dagster import DailyPartitionsDefinition, asset

days = DailyPartitionsDefinition(start_date="2024-01-01")


@asset(io_manager_key="sql_io_manager", key_prefix=["SESSION", "RACE_RESULTS", "append"])
def race_results_to_sql(context, race_results: pd.DataFrame):
    return race_results


@asset(io_manager_key="sql_io_manager", key_prefix=["SESSION", "RACE_LAPS", "append"],
       partitions_def=days)
def race_laps_to_sql(context, race_laps: pd.DataFrame):
    return race_laps


@asset(io_manager_key="sql_io_manager", key_prefix=["REFERENCE", "DIM_DRIVER", "cleanup"])
def driver_to_sql(context, drivers: pd.DataFrame):
    return drivers
"""


def test_assets_written_by_the_projects_appending_io_manager(tmp_path: Path) -> None:
    # the IO manager (another module) appends the returned frame unless the asset's key
    # carries its guard word: an unpartitioned asset re-run appends again (IDM202), a
    # re-materialised partition too (IDM107); the "cleanup" asset is truncated first
    def review(if_exists: str) -> list[tuple[str, int, str]]:
        proj = tmp_path / if_exists
        (proj / "resources").mkdir(parents=True)
        (proj / "resources" / "sql_io_manager.py").write_text(
            _APPENDING_IO.replace("{if_exists}", if_exists))
        (proj / "definitions.py").write_text(_DEFINITIONS)
        (proj / "assets.py").write_text(_SESSION_ASSETS)
        res = review_paths([proj])
        return sorted((f.file.rsplit("/", 1)[-1], f.line, f.rule_id) for f in res.findings)

    assert review("append") == [("assets.py", 7, "IDM202"), ("assets.py", 12, "IDM107")]
    # an IO manager that replaces the table appends nothing
    assert review("replace") == []


_STG_DAG = """from airflow import DAG
from airflow.providers.postgres.operators.postgres import PostgresOperator
from airflow.operators.python import PythonOperator
import pandas as pd


def load_offers():
    df = pd.read_csv("/data/offers.csv", sep=";")
    df.to_sql("stg_offer", "postgresql://dwh", if_exists="append", index=False)


with DAG("stg_offer", schedule="@daily", start_date=None, catchup=False,
         max_active_runs=1, default_args={"retries": 2}) as dag:
    create = PostgresOperator(task_id="create", postgres_conn_id="pg",
                              sql="sql/stg_offer_schema.sql")
    load = PythonOperator(task_id="load", python_callable=load_offers)
    create >> load
"""


def test_staging_table_that_nothing_reads_is_the_target(tmp_path: Path) -> None:
    # stg_offer is emptied by the DAG's create task and filled by its load task, and no file
    # of the project reads it: it is where the rows end up, not a staging step
    sql = ("CREATE TABLE IF NOT EXISTS stg_offer (\n    id NUMERIC(3)\n);\n\n"
           "TRUNCATE TABLE stg_offer;\n")

    def review(name: str, extra: str = "", dag: str = _STG_DAG) -> list[tuple[str, int, str]]:
        proj = tmp_path / name
        (proj / "sql").mkdir(parents=True)
        (proj / "dag.py").write_text(dag)
        (proj / "sql" / "stg_offer_schema.sql").write_text(sql)
        if extra:
            (proj / "sql" / "merge_offer.sql").write_text(extra)
        res = review_paths([proj])
        return sorted((f.file.rsplit("/", 1)[-1], f.line, f.rule_id) for f in res.findings
                      if f.rule_id == "IDM301")

    assert review("unread") == [("stg_offer_schema.sql", 5, "IDM301")]
    # a later step reads it: a staging table, emptied for the next load of the run
    assert review("read", "INSERT INTO offer SELECT * FROM stg_offer\n"
                          "ON CONFLICT (id) DO NOTHING;\n") == []
    # a script no task runs (no file of the project names it) is no step of the pipeline
    assert review("unused", dag=_STG_DAG.replace("stg_offer_schema.sql", "offer_schema.sql")) == []


_OP_THEN_TASK = """import pandas as pd
from airflow.decorators import dag, task
from airflow.providers.postgres.operators.postgres import PostgresOperator
from pendulum import datetime

TARGET_TABLE = "direction"


@dag(schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False, max_active_runs=1,
     default_args={{"retries": 2}})
def direction_dag():
    @task
    def load(path):
        df = pd.read_csv(path, sep=";")
        df.to_sql({table}, "postgresql://dwh", if_exists="replace", index=False)

    clear = PostgresOperator(task_id="clear", postgres_conn_id="pg",
                             sql=f"DELETE FROM {{TARGET_TABLE}};")
    clear >> load("/data/direction.csv")


direction_dag()
"""


def test_operator_task_clearing_what_a_python_task_loads(tmp_path: Path) -> None:
    # the DELETE task commits, the load is another task: a failed load leaves it empty
    assert findings(tmp_path, "dag.py", _OP_THEN_TASK.format(table="TARGET_TABLE")) == [
        (18, "IDM301")]
    # the Python task loads another table: the DELETE is a purge, no half of a reload
    assert findings(tmp_path, "dag.py", _OP_THEN_TASK.format(table="'direction_log'")) == []


_RATES_SOURCE = """from datetime import datetime

import pandas as pd
import requests


class ExchangeRates:
    def __init__(self, currency="USD",
                 start_date: str = datetime.today().strftime("%Y-%m-%d"),
                 end_date: str = datetime.today().strftime("%Y-%m-%d")):
        self.params = {"base": currency, "start_date": start_date, "end_date": end_date}

    def to_df(self):
        return pd.DataFrame(requests.get("https://rates.example", params=self.params).json())
"""

_RATES_FLOW = """from prefect import flow, task
from sources import ExchangeRates


@task
def extract_rates(engine{param}):
    return ExchangeRates({args}).to_df()


@flow
def rates_flow(engine):
    extract_rates(engine)
"""


def test_window_defaulting_to_the_clock_at_import(tmp_path: Path) -> None:
    # the default dates were computed when the worker imported the module: a late or
    # retried run loads that day, a missed day can never be reloaded
    def review(param: str, args: str) -> list[tuple[str, int, str]]:
        proj = tmp_path / (args or "none").replace("=", "_")
        proj.mkdir()
        (proj / "sources.py").write_text(_RATES_SOURCE)
        (proj / "flow.py").write_text(_RATES_FLOW.format(param=param, args=args))
        res = review_paths([proj])
        return sorted((f.file.rsplit("/", 1)[-1], f.line, f.rule_id) for f in res.findings)

    assert review("", "") == [("flow.py", 7, "IDM501")]
    # the run's day handed in: nothing to say
    assert review(", day", "start_date=day, end_date=day") == []


# Round 9 (review6).

def _project(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, int, str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    res = review_paths([tmp_path])
    return sorted((f.file.rsplit("/", 1)[-1], f.line, f.rule_id) for f in res.findings)


_HISTORY_FLOW = """from datetime import date

from prefect import flow, task


@task
def ingest_orders(start_date, end_date):
    print(start_date, end_date)


@flow
def raw_orders(
    start_date: date = {start},
    end_date: date = date.today(),
):
    ingest_orders(start_date, end_date)


if __name__ == "__main__":
    raw_orders()
"""


def test_clock_default_with_a_fixed_start_is_the_whole_history(tmp_path: Path) -> None:
    # start moving with the clock: the run's window is the day it was imported
    assert _project(tmp_path / "moving", {
        "flow.py": _HISTORY_FLOW.format(start="date.today()"), "other.py": "x = 1\n"}) == [
        ("flow.py", 20, "IDM501")]
    # a fixed start up to today: every run reloads the whole history, no day is cut off
    assert _project(tmp_path / "fixed", {
        "flow.py": _HISTORY_FLOW.format(start="date(2020, 2, 1)"), "other.py": "x = 1\n"}) == []


_MART_DAG = """from airflow import DAG
from airflow.providers.postgres.operators.postgres import PostgresOperator
from pendulum import datetime

with DAG("marts", schedule="@hourly", start_date=datetime(2024, 1, 1), catchup=False,
         max_active_runs=1, default_args={"retries": 2, "retry_delay": 60}) as dag:
    users = PostgresOperator(task_id="users", postgres_conn_id="pg", sql="sql/dm_users.sql")
    orders = PostgresOperator(task_id="orders", postgres_conn_id="pg", sql="sql/dm_orders.sql")
    users >> orders
"""
_DDL = """create table dds.dm_users (id serial primary key, user_id varchar);
create table dds.dm_orders (id serial primary key,
    user_id integer references dds.dm_users, order_key varchar);
"""
_USERS = """truncate table dds.dm_users{cascade};
insert into dds.dm_users (user_id) select object_id from stg.users;
"""
_ORDERS = """truncate table dds.dm_orders;
insert into dds.dm_orders (user_id, order_key) select u.id, o.object_id
from stg.orders o join dds.dm_users u on u.user_id = o.user_id;
"""


def test_operator_task_file_is_one_transaction_but_cascade_reaches_further(
        tmp_path: Path) -> None:
    files = {"dag.py": _MART_DAG, "ddl.sql": _DDL, "sql/dm_orders.sql": _ORDERS}
    # the PostgreSQL hook runs the file in one call and commits once: truncate and reload
    # are one transaction
    assert _project(tmp_path / "plain", {**files, "sql/dm_users.sql": _USERS.format(
        cascade="")}) == []
    # CASCADE also empties dm_orders (its foreign key), reloaded only by the next task
    assert _project(tmp_path / "cascade", {**files, "sql/dm_users.sql": _USERS.format(
        cascade=" cascade")}) == [("dm_users.sql", 1, "IDM301")]
    # BEGIN ... COMMIT in the file: the same
    assert _project(tmp_path / "txn", {**files, "sql/dm_users.sql": "begin;\n" + _USERS.format(
        cascade=" cascade") + "commit;\n"}) == [("dm_users.sql", 2, "IDM301")]
    # run by psql (no operator names it): each statement autocommits
    assert ("dm_users.sql", 1, "IDM301") in _project(tmp_path / "psql", {
        "load.sh": "psql -f dm_users.sql\n", "dm_users.sql": _USERS.format(cascade="")})


_ID_CURSOR = """import psycopg


def load_batch(src, dst, last):
    with src.cursor() as cur:
        cur.execute("SELECT id, name FROM ranks WHERE {col} > %(threshold)s ORDER BY 1 LIMIT 100",
                    {{"threshold": last}})
        rows = cur.fetchall()
    with dst.transaction():
        dst.executemany("INSERT INTO stg.ranks VALUES (%s, %s) ON CONFLICT (id) DO UPDATE "
                        "SET name = excluded.name", rows)
"""


def test_cursor_on_a_surrogate_key(tmp_path: Path) -> None:
    # an event-time cursor: late rows and ties are skipped
    assert findings(tmp_path, "a.py", _ID_CURSOR.format(col="updated_at")) == [
        (6, "IDM402"), (6, "IDM403")]
    # a unique sequential id: no ties, and the order is the key's
    assert findings(tmp_path, "b.py", _ID_CURSOR.format(col="id")) == []


_DAY_MODEL = """{{{{ config(materialized='incremental'{key}) }}}}

select * from {{{{ source('ads', 'raw_ad_spend') }}}}
{{% if is_incremental() %}}
  where {col} >= (select max({col}) from {{{{ this }}}})
{{% endif %}}
"""


def test_dbt_day_cursor_reread_and_merged(tmp_path: Path) -> None:
    # `date_day >=` re-reads the last whole day and merges it on the key: a day of lookback
    assert findings(tmp_path, "m1/stg_ad_spend.sql", _DAY_MODEL.format(
        key=", unique_key='date_day'", col="date_day")) == []
    # a timestamp cursor misses rows late within the day, key or not
    assert findings(tmp_path, "m2/stg_ad_spend.sql", _DAY_MODEL.format(
        key=", unique_key='id'", col="updated_at")) == [(5, "IDM402")]


def test_extract_stamp_of_an_upstream_model(tmp_path: Path) -> None:
    text = ("{{ config(materialized='incremental', unique_key=['vendor_id', 'pickup']) }}\n"
            "select * from {{ ref('stg_trips') }}\n{% if is_incremental() %}\n"
            "where extract_at > (select max(extract_at) from {{ this }})\n{% endif %}\n")
    assert findings(tmp_path, "marts.sql", text) == []
    assert findings(tmp_path, "marts_ev.sql", text.replace("extract_at", "pickup")) == [
        (4, "IDM402"), (4, "IDM403")]


_HELLO_DAG = """import logging

import pendulum
from airflow.decorators import dag, task

log = logging.getLogger(__name__)


def say_hello(log):
    {body}


@dag(schedule="0/15 * * * *", start_date=pendulum.datetime(2022, 5, 5, tz="UTC"),
     catchup=False, default_args={{"retries": 1, "retry_delay": 60}})
def hello_world_dag():
    @task()
    def hello_task():
        say_hello(log)

    hello_task()


hello_world_dag()
"""


def test_task_calling_a_helper_that_only_logs(tmp_path: Path) -> None:
    assert findings(tmp_path, "hello.py", _HELLO_DAG.format(body='log.info("Hello!")')) == []
    # the helper writes: overlapping runs can write at once
    assert findings(tmp_path, "load.py", _HELLO_DAG.format(
        body='log.info("x")\n    write_rows("stg.hello", [1])')) == [(14, "IDM102")]


_MONGO = """from pymongo import MongoClient


def read_restaurants(db, load_threshold, limit):
    flt = {{'{col}': {{'$gt': load_threshold}}}}
    return list(db.get_collection("restaurants").find(filter=flt, sort=[('{col}', 1)],
                                                      limit=limit))
"""


def test_mongo_checkpoint_cursor(tmp_path: Path) -> None:
    assert findings(tmp_path, "a.py", _MONGO.format(col="update_ts")) == [
        (5, "IDM402"), (5, "IDM403")]
    # ObjectId order: unique, no ties
    assert findings(tmp_path, "b.py", _MONGO.format(col="_id")) == []


_TAXI_FLOW = """import pandas as pd
from prefect import flow, task


@task
def load_to_postgres(df, tbl, if_exists):
    df.to_sql(tbl, "postgresql://dwh", if_exists=if_exists, index=False)


@flow
def ingest_taxi(table: str = "yellow_tripdata", file: str = "2022-01.parquet",
                if_exists: str = "{mode}") -> None:
    load_to_postgres(pd.read_parquet(file), table, if_exists)
"""


def test_prefect_flow_appending_by_default(tmp_path: Path) -> None:
    # a deployment's scheduled or retried run takes the flow's default: the month again
    assert findings(tmp_path, "a.py", _TAXI_FLOW.format(mode="append")) == [(12, "IDM202")]
    assert findings(tmp_path, "b.py", _TAXI_FLOW.format(mode="replace")) == []


_READ_OR_EMPTY = """import pandas as pd


def symbols(engine):
    try:
        df = pd.read_sql_query("SELECT id, symbol FROM stocks", engine)
    except Exception as e:
        print(f"Database error: {{e}}")
        {handler}
    return df
"""


def test_failed_read_turned_into_an_empty_frame(tmp_path: Path) -> None:
    assert findings(tmp_path, "a.py", _READ_OR_EMPTY.format(handler="df = pd.DataFrame()")) == [
        (7, "IDM206")]
    assert findings(tmp_path, "b.py", _READ_OR_EMPTY.format(handler="raise")) == []


_UPLOAD = """from google.cloud import storage
from google.cloud.exceptions import GoogleCloudError


def upload(bucket_name, path):
    try:
        storage.Client().bucket(bucket_name).blob(path).upload_from_filename(path)
    except GoogleCloudError as excep:
        print(f"Error saving file to bucket: {{excep}}")
        {tail}
"""


def test_cloud_client_base_error_around_an_upload(tmp_path: Path) -> None:
    # the storage client's base error: every failed upload raises one
    assert findings(tmp_path, "a.py", _UPLOAD.format(tail="")) == [(8, "IDM206")]
    assert findings(tmp_path, "b.py", _UPLOAD.format(tail="raise")) == []


_GLUED_INSERT = """from airflow.decorators import task
from airflow.providers.postgres.hooks.postgres import PostgresHook


@task(task_id="load")
def load(**kwargs) -> None:
    message = kwargs["task_instance"].xcom_pull(task_ids="transformation")
    hook = PostgresHook(postgres_conn_id="Postgres")
    request = ("insert into public.data (name, age) values ('" + message["name"] + "',"
               + str(message["age"]) + "){tail}")
    hook.run(request)
"""


def test_sql_glued_with_plus(tmp_path: Path) -> None:
    # the statement is the whole concatenation (its first fragment alone does not tokenize)
    assert findings(tmp_path, "a.py", _GLUED_INSERT.format(tail="")) == [(9, "IDM201")]
    assert findings(tmp_path, "b.py", _GLUED_INSERT.format(
        tail=" on conflict (name) do update set age = excluded.age")) == []


_DROP_THEN_FILE = """from datetime import datetime

from airflow import DAG
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

with DAG(dag_id="customers", start_date=datetime(2025, 2, 1), schedule=None) as dag:
    drop_table = SQLExecuteQueryOperator(task_id="drop_table", conn_id="pg",
                                         sql="DROP TABLE IF EXISTS customer")
    create_table = SQLExecuteQueryOperator(task_id="create_table", conn_id="pg",
                                           sql="sql/create.sql")
    load_table = SQLExecuteQueryOperator(task_id="load_table", conn_id="pg",
                                         sql="sql/load.sql")
    drop_table >> create_table >> load_table
"""
_CREATE = "CREATE TABLE IF NOT EXISTS customer (customer_id SERIAL PRIMARY KEY, name VARCHAR);\n"


def test_operator_drop_then_another_task_file_loads(tmp_path: Path) -> None:
    # the DROP commits in its task; the table is reloaded two tasks later
    assert _project(tmp_path / "a", {
        "dag.py": _DROP_THEN_FILE, "sql/create.sql": _CREATE,
        "sql/load.sql": "INSERT INTO customer (name) VALUES ('Max');\n"}) == [
        ("dag.py", 8, "IDM301")]
    # the task file loads another table: the DROP is no half of a reload
    assert _project(tmp_path / "b", {
        "dag.py": _DROP_THEN_FILE, "sql/create.sql": _CREATE,
        "sql/load.sql": "INSERT INTO customer_log (name) VALUES ('Max');\n"}) == []


# ---- round 10 (review7) ------------------------------------------------------------------

_SPARK_JDBC = """from pyspark.sql import SparkSession


def write_counts(spark: SparkSession, url: str) -> None:
    df = spark.read.parquet("s3a://bucket/mortality/")
    df.write \\
        .format("jdbc") \\
        .mode("{mode}") \\
        .option("url", url) \\
        .option("dbtable", "mortality") \\
        .save()
"""


def test_spark_append_reported_on_its_mode_line(tmp_path: Path) -> None:
    # the line a user edits is the .mode("append"), not the chain's first line
    assert findings(tmp_path, "a.py", _SPARK_JDBC.format(mode="append")) == [(8, "IDM702")]
    assert findings(tmp_path, "b.py", _SPARK_JDBC.format(mode="overwrite")) == []


_DAG_WITH_HELPERS = """from datetime import datetime

from airflow.decorators import dag
from airflow.operators.empty import EmptyOperator
{imports}


@dag(dag_id="etl", schedule="*/20 * * * *", start_date=datetime(2023, 2, 2), retries=2)
def etl():
    start = EmptyOperator(task_id="start")
    start >> {call} >> EmptyOperator(task_id="end")


etl()
"""


def test_dag_whose_tasks_come_from_a_project_module(tmp_path: Path) -> None:
    # the task group built by a project module may write: hygiene is judged
    assert findings(tmp_path, "a.py", _DAG_WITH_HELPERS.format(
        imports="from method_1.utils import *", call="etl_task_group('marts')")) == [
        (8, "IDM101"), (8, "IDM102")]
    assert findings(tmp_path, "b.py", _DAG_WITH_HELPERS.format(
        imports="from etl.groups import etl_task_group", call="etl_task_group('marts')")) == [
        (8, "IDM101"), (8, "IDM102")]
    # only empty operators and library calls: the DAG writes nothing
    assert findings(tmp_path, "c.py", _DAG_WITH_HELPERS.format(
        imports="from datetime import timedelta", call="EmptyOperator(task_id='mid')")) == []


_TASK_TRUNCATE = """import pandas as pd
from airflow.decorators import task


@task
def truncate(engine, schema, table):
    engine.execute(f"TRUNCATE TABLE {schema}.{table}")
    return True
"""
_TASK_LOAD = """import pandas as pd
from airflow.decorators import task


@task
def load(data, engine, schema, table):
    df = pd.read_json(data, orient="table")
    df.to_sql(table, engine, index=False, if_exists="append", schema=schema)
"""
_TASK_ONE_TXN = """import pandas as pd
from airflow.decorators import task


@task
def reload(data, engine, schema, table):
    df = pd.read_json(data, orient="table")
    with engine.begin() as conn:
        conn.execute(f"DELETE FROM {schema}.{table}")
        df.to_sql(table, conn, index=False, if_exists="append", schema=schema)
"""


def test_truncate_task_then_append_task(tmp_path: Path) -> None:
    # the clear commits in its task; the append is the reload's other half, in the same file
    # or in another module (project facts)
    same = _TASK_TRUNCATE + "\n\n" + _TASK_LOAD.split("\n\n\n", 1)[1]
    assert findings(tmp_path, "a.py", same) == [(7, "IDM301")]
    assert _project(tmp_path / "b", {"truncate.py": _TASK_TRUNCATE, "load.py": _TASK_LOAD}) == [
        ("truncate.py", 7, "IDM301")]
    # one task, one transaction: nothing is lost or doubled
    assert findings(tmp_path, "c.py", _TASK_ONE_TXN) == []
    # an append nobody empties first is IDM202
    assert findings(tmp_path, "d.py", _TASK_LOAD) == [(8, "IDM202")]


_TRUNCATE_OR_CREATE = """from airflow.decorators import task


@task
def prepare(engine, data):
    try:
        engine.execute("TRUNCATE TABLE marts.sales")
    except Exception:
        {handler}
    return data
"""


def test_truncate_or_create_swallows_nothing(tmp_path: Path) -> None:
    # the fallback CREATE raises if it fails too
    assert findings(tmp_path, "a.py", _TRUNCATE_OR_CREATE.format(
        handler='engine.execute("CREATE TABLE marts.sales (id int, amount numeric)")')) == [
        (7, "IDM301")]
    assert findings(tmp_path, "b.py", _TRUNCATE_OR_CREATE.format(
        handler='print("truncate failed")')) == [(7, "IDM301"), (8, "IDM206")]


_FINALIZE = """from airflow.decorators import task
from airflow.utils.trigger_rule import TriggerRule

from helper import complete_job


@task(trigger_rule=TriggerRule.{rule})
def finalize_job(job: dict):
    complete_job(job_inst_id=job["job_inst_id"], success=True)
"""


def test_all_done_task_marking_success(tmp_path: Path) -> None:
    # runs after a failed load too, records success and turns the run green
    assert findings(tmp_path, "a.py", _FINALIZE.format(rule="ALL_DONE")) == [(7, "IDM206")]
    assert findings(tmp_path, "b.py", _FINALIZE.format(rule="ALL_SUCCESS")) == []


_BULK = """from sqlalchemy import text


def load_small_file(engine, target_table, path, log):
    sql = f"BULK INSERT {{target_table}} FROM '{{path}}' WITH (FIRSTROW = 2)"
    with engine.connect() as conn:
        try:
            conn.execution_options(autocommit=True).execute(text(sql))
        except Exception as e:
            log.error(f"failed: {{e}}")
            {tail}
"""


def test_write_statement_held_in_a_variable(tmp_path: Path) -> None:
    assert findings(tmp_path, "a.py", _BULK.format(tail="")) == [(9, "IDM206")]
    assert findings(tmp_path, "b.py", _BULK.format(tail="raise")) == []


_HELPER_TRUNCATE = """from sqlalchemy import create_engine

engine = create_engine("mssql+pyodbc://dsn")


def truncate_table(table):
    with engine.connect() as conn:
        trans = conn.begin()
        conn.execute(f"TRUNCATE TABLE {{table}}")
        trans.commit()


def insert_rows(rows, table):
    with engine.begin() as conn:
        for r in rows:
            conn.execute(f"INSERT INTO {{table}} VALUES (:a, :b)", r)


def load_all(rows, table, full):
    if full:
        {first}
    insert_rows(rows, table)
"""


def test_helper_committing_a_truncate_before_the_load(tmp_path: Path) -> None:
    # the TRUNCATE commits in its helper before the load starts
    # (the row insert is IDM201 either way: a partial load is not cleared on a retry)
    assert findings(tmp_path, "a.py", _HELPER_TRUNCATE.format(first="truncate_table(table)")) == [
        (9, "IDM301"), (16, "IDM201")]
    # the helper is never called before the load: no clear-then-load gap
    assert findings(tmp_path, "b.py", _HELPER_TRUNCATE.format(first="print(table)")) == [
        (16, "IDM201")]


# round 11

_HIGH_WATER_MODEL = """{{{{ config(materialized='incremental') }}}}

select id, type, actor, {col}
from {{{{ source('raw', 'events') }}}}
{{% if is_incremental() %}}
where {col} {op} (select max({col}) from {{{{ this }}}})
{{% endif %}}
"""


def test_keyless_incremental_with_strict_creation_time_high_water(tmp_path: Path) -> None:
    # `created_at > max(created_at) of this`: a re-run appends nothing already there (what it
    # can miss is late rows: IDM402/IDM403 on the filter), so no IDM601
    assert findings(tmp_path, "models/a.sql", _HIGH_WATER_MODEL.format(
        col="created_at", op=">")) == [(6, "IDM402"), (6, "IDM403")]
    # `>=` re-appends the last batch; an updated_at brings a changed row back: both duplicate
    assert (1, "IDM601") in findings(tmp_path, "models/b.sql", _HIGH_WATER_MODEL.format(
        col="created_at", op=">="))
    assert (1, "IDM601") in findings(tmp_path, "models/c.sql", _HIGH_WATER_MODEL.format(
        col="updated_at", op=">"))


_DOWNSTREAM_MODEL = """{{ config(materialized='incremental') }}

select id, type, actor, created_at
from {{ ref('stg_events') }}
where actor not like '%bot%'
{% if is_incremental() %}
  and created_at > (select max(created_at) from {{ this }})
{% endif %}
"""


def test_strict_cursor_over_a_model_that_only_gains_newer_rows(tmp_path: Path) -> None:
    # the upstream model appends only rows newer than its own max: the downstream `>` on the
    # same column misses nothing (the late rows are lost upstream, reported there)
    grown = _HIGH_WATER_MODEL.format(col="created_at", op=">")
    assert _project(tmp_path / "a", {"staging/stg_events.sql": grown,
                                     "core/fct.sql": _DOWNSTREAM_MODEL}) == [
        ("stg_events.sql", 6, "IDM402"), ("stg_events.sql", 6, "IDM403")]
    # an upstream rebuilt whole (a table) can bring back rows at or below the max
    rebuilt = "{{ config(materialized='table') }}\nselect * from {{ source('raw', 'events') }}\n"
    assert ("fct.sql", 7, "IDM402") in _project(
        tmp_path / "b", {"staging/stg_events.sql": rebuilt, "core/fct.sql": _DOWNSTREAM_MODEL})


_REBUILD_SQL = """-- rebuild the daily fact table
DROP TABLE IF EXISTS commit_fact;
CREATE TABLE commit_fact AS
SELECT DISTINCT user_id, commit_ts, repo_url FROM git_commit;
"""

_REBUILD_PY = '''import psycopg2

SQL = """
DROP TABLE IF EXISTS commit_fact;
CREATE TABLE commit_fact AS
SELECT DISTINCT user_id, commit_ts, repo_url FROM git_commit;
"""


def main():
    conn = psycopg2.connect("dbname=dw")
    with conn.cursor() as cur:
        cur.execute(SQL)
    conn.commit()
'''


def test_sql_file_copied_from_a_python_module_running_it_in_one_transaction(
        tmp_path: Path) -> None:
    # run alone (psql autocommits each statement) the DROP leaves no table until the CTAS ends
    assert findings(tmp_path, "a/rebuild.sql", _REBUILD_SQL) == [(2, "IDM301")]
    # the same statements are a string a module runs through psycopg2: one transaction
    assert _project(tmp_path / "b", {"sql/rebuild.sql": _REBUILD_SQL,
                                     "src/rebuild.py": _REBUILD_PY}) == []
    # a module that holds other SQL leaves the file to be judged as a script
    other = _REBUILD_PY.replace("SELECT DISTINCT", "SELECT")
    assert _project(tmp_path / "c", {"sql/rebuild.sql": _REBUILD_SQL,
                                     "src/rebuild.py": other}) == [("rebuild.sql", 2, "IDM301")]


_ROW_INSERT = """import psycopg2


def insert_to_table(conn, df, table_name):
    cols = ",".join(df.columns)
    for _, row in df.iterrows():
        with conn.cursor() as cur:
            sql = "INSERT INTO {} (" + cols + ") VALUES (" + "%s," * (len(row) - 1) + "%s){tail}"
            cur.execute(sql.format(table_name), tuple(row))
            conn.commit()
"""


def test_insert_with_placeholders_built_by_repetition(tmp_path: Path) -> None:
    # `"%s," * (n - 1)` glued into the statement: still a bare INSERT (it parsed as garbage)
    assert findings(tmp_path, "a.py", _ROW_INSERT.replace("{tail}", "")) == [(8, "IDM201")]
    assert findings(tmp_path, "b.py", _ROW_INSERT.replace(
        "{tail}", " ON CONFLICT (commit_sha) DO NOTHING")) == []


_FETCH = """import pandas as pd
import requests


def commits_of_day(url):
    response = requests.get(url)
    if response.status_code != 200:
        print("bad response", response.status_code)
        {fail}
    return pd.DataFrame(response.json())
"""


def test_http_error_returned_as_an_empty_dataframe(tmp_path: Path) -> None:
    # a rate limit becomes "no commits that day": the caller loads nothing and succeeds
    assert findings(tmp_path, "a.py", _FETCH.format(fail="return pd.DataFrame()")) == [
        (7, "IDM206")]
    assert findings(tmp_path, "b.py", _FETCH.format(fail="response.raise_for_status()")) == []
    assert findings(tmp_path, "c.py", _FETCH.format(fail="return None")) == []


_SPARK_SCRIPT = """import os

from pyspark.sql import SparkSession
from pyspark.sql.functions import current_date

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
for name in os.listdir("/data/in"):
    df = spark.read.option("header", "true").csv("file:///data/in/" + name)
    df.withColumn("load_date", current_date()).write.format("orc").mode("{mode}").insertInto("raw.flights")
"""


def test_spark_script_writing_at_top_level(tmp_path: Path) -> None:
    # a spark-submit script writes outside any function: its appends and static overwrites count
    assert findings(tmp_path, "a.py", _SPARK_SCRIPT.format(mode="append")) == [(9, "IDM702")]
    # mode("overwrite").insertInto under the static partitionOverwriteMode: every partition goes
    assert findings(tmp_path, "b.py", _SPARK_SCRIPT.format(mode="overwrite")) == [(9, "IDM701")]
    dynamic = _SPARK_SCRIPT.format(mode="overwrite").replace(
        "for name", 'spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")\nfor name')
    assert findings(tmp_path, "c.py", dynamic) == []


_SPARK_ERROR_LOG = """from pyspark.sql import SparkSession
from pyspark.sql.types import StringType

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
try:
    spark.table("raw.flights").write.mode("overwrite").saveAsTable("dw.flights")
except Exception as e:
    spark.createDataFrame([repr(e)], StringType()).write.mode("append").insertInto("ops.error_log")
    raise
"""


def test_spark_append_in_an_except_handler_is_an_error_log(tmp_path: Path) -> None:
    # a row about the failure, one per attempt: not the load
    assert findings(tmp_path, "a.py", _SPARK_ERROR_LOG) == []


_AUTO_COMMIT = """import json

import confluent_kafka
import psycopg2

pg = psycopg2.connect("dbname=events")
pg.autocommit = True
consumer = confluent_kafka.Consumer({{"bootstrap.servers": "kafka:9092", "group.id": "logs"{extra}}})
consumer.subscribe(["logs"])


def insert(rows):
    pg.cursor().executemany("INSERT INTO events (ts, user_id) VALUES (%s, %s)", rows)


def main():
    while True:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        event = json.loads(msg.value())
        insert([(event["ts"], event["user_id"])])
"""


def test_kafka_consumer_left_with_auto_commit(tmp_path: Path) -> None:
    # offsets committed on a timer whatever became of the polled messages: a crash loses them
    assert (8, "IDM405") in findings(tmp_path, "a.py", _AUTO_COMMIT.format(extra=""))
    safe = _AUTO_COMMIT.format(extra=', "enable.auto.commit": False')
    assert (8, "IDM405") not in findings(tmp_path, "b.py", safe)


_DROP_HELPER = """import psycopg2


def {name}(conn, table_name):
    try:
        with conn.cursor() as cursor:
            cursor.execute({sql})
            conn.commit()
    except Exception as e:
        print("failed: {{}}".format(e))
        return None
"""


def test_swallowed_failure_of_a_drop_only_helper(tmp_path: Path) -> None:
    # a failed DROP loses no rows: the CREATE that follows fails loudly on the table still there
    assert findings(tmp_path, "a.py", _DROP_HELPER.format(
        name="drop_table", sql='"DROP TABLE IF EXISTS {}".format(table_name)')) == []
    assert findings(tmp_path, "b.py", _DROP_HELPER.format(
        name="load_table", sql='"INSERT INTO {} SELECT * FROM stage".format(table_name)')) == [
        (7, "IDM201"), (9, "IDM206")]


_PARQUET_LAKE = """import pandas as pd


def write_to_lake(df: pd.DataFrame, path: str) -> None:
    df.to_parquet(path, engine="pyarrow", partition_cols=["year", "month", "day"]{extra})
"""


def test_partitioned_parquet_write_adds_files(tmp_path: Path) -> None:
    # pyarrow names each written file uniquely: a re-run adds the same rows beside the old ones
    assert findings(tmp_path, "a.py", _PARQUET_LAKE.format(extra="")) == [(5, "IDM201")]
    assert findings(tmp_path, "b.py", _PARQUET_LAKE.format(
        extra=', existing_data_behavior="delete_matching"')) == []


_GLUED_CURSOR = """import logging

import petl as etl
import psycopg2

logger = logging.getLogger(__name__)


def extract_orders(dsn, last_loaded=None):
    query = \"\"\"
    SELECT order_id, customer_id, amount, fecha_creacion, fecha_modificacion
    FROM public.orders
    \"\"\"
    if last_loaded:
        query += f\"\"\"
        WHERE (
            fecha_creacion > {value}
            OR fecha_modificacion > {value}
        )
        \"\"\"
    else:
        query += " WHERE fecha_creacion IS NOT NULL"
    with psycopg2.connect(dsn) as conn:
        return etl.fromdb(conn, query).cache()
"""


def test_cursor_filter_glued_onto_a_query(tmp_path: Path) -> None:
    # `query += "WHERE ... > '{last_loaded}'"`: the filter is judged with the query it is glued
    # to, the quoted variable read as the cursor, and the OR over creation and update stamps is
    # one risk, reported on the update stamp (the column a max(updated_at) cursor follows)
    assert findings(tmp_path, "a.py", _GLUED_CURSOR.format(value="'{last_loaded}'")) == [
        (18, "IDM402"), (18, "IDM403")]
    # a lookback on the cursor re-reads the late rows (the load merges on keys)
    assert findings(tmp_path, "b.py", _GLUED_CURSOR.format(
        value="TIMESTAMP '{last_loaded}' - INTERVAL '2 hours'")) == []


_ANTI_JOIN = """import pandas as pd
from sqlalchemy import create_engine


def load_stations(df: pd.DataFrame, url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        existing = pd.read_sql("SELECT station_no FROM {read}", conn)
    new_rows = df[~df["station_no"].isin(existing["station_no"])]
    if not new_rows.empty:
        new_rows.to_sql("station_info", con=engine, if_exists="append", index=False)
"""


def test_append_of_rows_the_target_lacks(tmp_path: Path) -> None:
    # the frame is anti-joined in pandas against the keys read from the target itself: a re-run
    # appends nothing twice
    assert findings(tmp_path, "a.py", _ANTI_JOIN.format(read="station_info")) == []
    # filtered against another table, the append still repeats on a re-run
    assert findings(tmp_path, "b.py", _ANTI_JOIN.format(read="station_blocklist")) == [
        (11, "IDM202")]


_KEY_GUARDED_BATCH = """import logging

import pandas as pd
from sqlalchemy.exc import IntegrityError

logger = logging.getLogger(__name__)


def load_status(df: pd.DataFrame, engine) -> None:
    try:
        {write}
    except IntegrityError as ie:
        logger.info("rows already exist, skipping duplicates: %s", ie)
"""


def test_key_violation_swallowed_around_a_batch(tmp_path: Path) -> None:
    # one duplicate rolls back the whole frame: the new rows in it are logged away as duplicates
    # (the unique key keeps the append from duplicating: no IDM202)
    assert findings(tmp_path, "a.py", _KEY_GUARDED_BATCH.format(
        write='df.to_sql("station_status", con=engine, if_exists="append", index=False)')) == [
        (12, "IDM206")]
    # one row per statement: insert-or-ignore, nothing else lost with the duplicate
    single = findings(tmp_path, "b.py", _KEY_GUARDED_BATCH.format(
        write='engine.execute("INSERT INTO station_status (no, t) VALUES (%s, %s)", (1, 2))'))
    assert not [f for f in single if f[1] == "IDM206"]


_LOOP_END_FETCH = """import requests
from dagster import AssetExecutionContext, Output, asset


@asset(partitions_def=weekly)
def game_data(context: AssetExecutionContext):
    games = {{}}
    for game_id in context.partition_keys:
        try:
            games[game_id] = requests.get(f"https://api.example.com/games/{{game_id}}").json()
        except:
            context.log.info(f"error getting game {{game_id}}")
            {after}
    yield Output(games)
"""


def test_failed_fetch_ending_a_loop_falls_through(tmp_path: Path) -> None:
    # the try is the loop's last statement: a handler that only logs skips the game, and the IO
    # manager writes the partition without it
    assert findings(tmp_path, "a.py", _LOOP_END_FETCH.format(after="pass")) == [(11, "IDM206")]
    assert findings(tmp_path, "b.py", _LOOP_END_FETCH.format(after="raise")) == []


_FINALLY_REPLACE = """import pandas as pd


def load(src: pd.DataFrame, tbl: str, engine) -> None:
    try:
        target = pd.read_sql_query(f"SELECT * FROM {{tbl}}", engine)
        changes = src[~src.apply(tuple, 1).isin(target.apply(tuple, 1))]
        changes.to_sql(tbl, engine, if_exists="append", index=False)
    except Exception as e:
        print("Data load error: ", str(e))
    finally:
        src.to_sql(tbl, engine, if_exists="{mode}", index=False)
"""


def test_finally_replacing_the_table(tmp_path: Path) -> None:
    # the finally replaces the table with the whole source whatever the try did, and its own
    # failure propagates: the swallowed append failure loses nothing; the diff append is keyed
    # on the rows read back from the table
    assert findings(tmp_path, "a.py", _FINALLY_REPLACE.format(mode="replace")) == []
    assert findings(tmp_path, "b.py", _FINALLY_REPLACE.format(mode="append")) == [
        (9, "IDM206"), (12, "IDM202")]


_STATUS_SKIP = """import requests
from dagster import Output, asset


{decorator}
def future_games(context):
    for date in context.partition_keys:
        response = requests.get(f"https://api.example.com/schedule/{{date}}")
        if response.status_code != 200:
            continue
        yield Output(response.json())
"""


def test_failed_http_answer_skipped_in_an_asset(tmp_path: Path) -> None:
    # a 5xx or a rate limit taken for "no games": the partition materialises without that day
    assert findings(tmp_path, "a.py", _STATUS_SKIP.format(decorator="@asset(partitions_def=weekly)")
                    ) == [(9, "IDM206")]
    # outside an asset/op (a partition mapping, a helper) nothing is materialised from it
    assert findings(tmp_path, "b.py", _STATUS_SKIP.format(decorator="")) == []


# ---- round 13 (review10) ----------------------------------------------------------------

_APPEND_OR_REPLACE = """import pandas as pd
from sqlalchemy import create_engine

engine = create_engine("postgresql://etl@db/crm")
deals = pd.read_csv("exports/deals.csv")
try:
    deals.to_sql("deals", engine, if_exists="append", index=False)
except Exception:
    {handler}
"""


def test_handler_that_loads_itself_swallows_nothing(tmp_path: Path) -> None:
    # the fallback write fails loudly if it fails: nothing is swallowed (the append is still
    # reported on its own line)
    assert findings(tmp_path, "a.py", _APPEND_OR_REPLACE.format(
        handler='deals.to_sql("deals", engine, if_exists="replace", index=False)')) == [
        (7, "IDM202")]
    assert findings(tmp_path, "b.py", _APPEND_OR_REPLACE.format(
        handler='print("could not load deals")')) == [(7, "IDM202"), (8, "IDM206")]


_COUNTING_DAG = """from datetime import datetime

import requests
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import BranchPythonOperator, PythonOperator


def count_permits():
    rows = requests.get("https://data.example.org/permits.json").json()
    {extra}
    return len(rows)


def choose(ti):
    return "enough" if ti.xcom_pull(task_ids="count_permits") > 100 else "too_few"


with DAG("permit_count", start_date=datetime(2024, 1, 1), schedule="@hourly",
         catchup=False) as dag:
    count = PythonOperator(task_id="count_permits", python_callable=count_permits)
    branch = BranchPythonOperator(task_id="choose", python_callable=choose)
    enough = BashOperator(task_id="enough", bash_command="echo ok")
    too_few = BashOperator(task_id="too_few", bash_command="echo low")
    count >> branch >> [enough, too_few]
"""


def test_dag_whose_tasks_only_fetch_and_count_writes_nothing(tmp_path: Path) -> None:
    # fetching, parsing and counting change no data: DAG hygiene does not arise
    assert findings(tmp_path, "a.py", _COUNTING_DAG.format(extra="")) == []
    # a task that also writes what it fetched makes the DAG's overlap matter
    risky = findings(tmp_path, "b.py", _COUNTING_DAG.format(
        extra='open("/data/permits.json", "w").write(str(rows))'))
    assert (19, "IDM102") in risky


def test_values_stamped_with_the_run_date_are_no_seed(tmp_path: Path) -> None:
    # a row stamped {{ ds }} is written by every scheduled run: a re-run adds it again
    assert findings(tmp_path, "a.sql", "INSERT INTO heartbeat (source, run_day)\n"
                                       "VALUES ('crm', '{{ ds }}');\n") == [(1, "IDM201")]
    # constants typed into the script are reference data set up by hand
    assert findings(tmp_path, "b.sql", "INSERT INTO heartbeat (source, run_day)\n"
                                       "VALUES ('crm', '2024-01-01');\n") == []


_CHILD_MODEL = """-- depends_on: {{{{ ref('fct_invoices') }}}}
{{{{ config(materialized='incremental', unique_key=['invoice_id', 'line_no']) }}}}

select l.*, i.invoice_date
from {{{{ source('billing', 'invoice_lines') }}}} as l
join {{{{ source('billing', 'invoices') }}}} as i on i.invoice_id = l.invoice_id
{{% if is_incremental() %}}
  where i.invoice_date > (select max(invoice_date) from {cursor})
{{% endif %}}
"""


def test_cursor_taken_from_an_upstream_model(tmp_path: Path) -> None:
    # dbt builds fct_invoices first in the same run: its max already covers the invoices whose
    # lines this run should take (IDM402/IDM403 are reported on the same filter)
    assert (8, "IDM404") in findings(tmp_path, "a.sql", _CHILD_MODEL.format(cursor="fct_invoices"))
    assert (8, "IDM404") in findings(tmp_path, "b.sql", _CHILD_MODEL.format(
        cursor="{{ ref('fct_invoices') }}"))
    # its own max is what it has loaded
    assert (8, "IDM404") not in findings(tmp_path, "c.sql", _CHILD_MODEL.format(
        cursor="{{ this }}"))


def _project(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, int, str]]:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    result = review_paths([tmp_path])
    return sorted((f.file.rsplit("/", 1)[-1], f.line, f.rule_id) for f in result.findings)


_STAGES = """import pandas as pd
from sqlalchemy import create_engine


def refresh_prices(engine):
    {body}
"""

_NIGHTLY = """from stages.prices import *

try:
    refresh_prices(None)
    print("nightly refresh done")
except:
    print("nightly refresh failed")
"""


def test_try_around_the_projects_own_load_functions(tmp_path: Path) -> None:
    # refresh_prices (another module of the project) writes: the bare except swallows its failure
    risky = _project(tmp_path / "a", {
        "stages/prices.py": _STAGES.format(
            body='pd.read_csv("prices.csv").to_sql("prices", engine, if_exists="replace")'),
        "nightly.py": _NIGHTLY})
    assert ("nightly.py", 6, "IDM206") in risky
    # a function that only reads and prints loads nothing
    safe = _project(tmp_path / "b", {
        "stages/prices.py": _STAGES.format(body='print(pd.read_csv("prices.csv").shape)'),
        "nightly.py": _NIGHTLY})
    assert safe == []


_REPORT_POLL = """import time

import requests

while True:
    try:
        answer = requests.post("https://api.example.com/reports", json={{"day": "2024-03-01"}})
        if answer.status_code == 200:
            break
        time.sleep(30)
    except requests.ConnectionError:
        {handler}
    with open("landing/report.tsv", "w", encoding="utf-8") as out:
        out.write(answer.text)
"""

_DOWNLOAD_STATUS = """import json

import requests


def download(url: str, path: str) -> str:
    try:
        data = requests.get(url, timeout=30).json()
        with open(path, "w") as f:
            json.dump(data, f)
        status = "downloaded"
    except Exception as e:
        {handler}
    return status
"""


def test_failed_download_turned_into_a_normal_end(tmp_path: Path) -> None:
    # the handler breaks off the polling loop (or records a status): the landing file keeps the
    # last run's report, the script exits 0 and the next step loads the old file again
    assert findings(tmp_path, "a.py", _REPORT_POLL.format(
        handler='print("no connection")\n        break')) == [(11, "IDM206")]
    assert findings(tmp_path, "b.py", _REPORT_POLL.format(handler="raise")) == []
    assert findings(tmp_path, "c.py", _DOWNLOAD_STATUS.format(
        handler='status = f"download failed: {e}"')) == [(12, "IDM206")]
    # a handler that only logs falls through: the next step meets the missing file, loudly
    assert findings(tmp_path, "d.py", _DOWNLOAD_STATUS.format(handler="print(e)")) == []
    assert findings(tmp_path, "e.py", _DOWNLOAD_STATUS.format(
        handler="raise RuntimeError(url) from e")) == []


_COPY_HELPER = """import psycopg2


class TableCopier:
    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)

    def dump_tables(self, tables):
        with self.conn.cursor() as cur:
            for t in tables:
                with open(f"dump/{t}.csv", "w") as f:
                    cur.copy_expert(f"COPY {t} TO STDOUT WITH CSV HEADER", f)

    def load_tables(self, tables):
        with self.conn.cursor() as cur:
            for t in tables:
                with open(f"dump/{t}.csv") as f:
                    cur.copy_expert(f"COPY {t} FROM STDIN WITH CSV HEADER", f)
        self.conn.commit()
"""

_COPY_DAG = """from datetime import datetime

from airflow import DAG
from airflow.operators.python import PythonOperator

from helpers.copier import TableCopier


def load():
    TableCopier("dbname=dw").{method}(["orders", "customers"])


with DAG("copy_tables", start_date=datetime(2024, 1, 1), schedule={schedule},
         catchup=False, max_active_runs=1) as dag:
    PythonOperator(task_id="load", python_callable=load)
"""


def test_library_append_no_scheduled_code_runs(tmp_path: Path) -> None:
    risky = _project(tmp_path / "a", {"helpers/copier.py": _COPY_HELPER, "dag.py": _COPY_DAG.format(
        method="load_tables", schedule='"@daily"')})
    assert ("copier.py", 18, "IDM201") in risky
    # called only by a DAG run once (or by hand)
    once = _project(tmp_path / "b", {"helpers/copier.py": _COPY_HELPER, "dag.py": _COPY_DAG.format(
        method="load_tables", schedule='"@once"')})
    assert ("copier.py", 18, "IDM201") not in once
    # the project's modules use the class but never call this method
    unused = _project(tmp_path / "c", {"helpers/copier.py": _COPY_HELPER, "dag.py": _COPY_DAG.format(
        method="dump_tables", schedule='"@daily"')})
    assert ("copier.py", 18, "IDM201") not in unused
    # a module nothing reviewed imports is run from elsewhere (a CLI, a notebook): kept
    alone = _project(tmp_path / "d", {"helpers/copier.py": _COPY_HELPER})
    assert ("copier.py", 18, "IDM201") in alone


# round 15

_SQL_HELPERS = '''def create_readings(region: bool = False) -> str:
    return f"""
    create table if not exists {'readings_region' if region else 'readings'} (
        station_id INT, day DATE, value DOUBLE)
    """


def insert_readings(day: str, region: bool = False) -> str:
    """the day's readings from the landed files"""
    return f"""
    insert into {'readings_region' if region else 'readings'}
    select station_id, '{day}'::DATE, value from read_json('landing/{day}/*.json')
    """
'''

_READINGS_ASSET = '''from dagster import AssetExecutionContext, asset
from dagster_duckdb import DuckDBResource

from . import sql


@asset
def readings(context: AssetExecutionContext, duckdb: DuckDBResource) -> None:
    day = context.partition_key
    with duckdb.get_connection() as conn:
        conn.execute(sql.create_readings())
        {clear}
        conn.execute(sql.insert_readings(day))


@asset
def readings_region(context: AssetExecutionContext, duckdb: DuckDBResource) -> None:
    day = context.partition_key
    load = sql.insert_readings(day, region=True)
    with duckdb.get_connection() as conn:
        conn.execute("delete from readings_region where day = ?", [day])
        conn.execute(load)
'''


def test_sql_of_an_imported_helper_module_runs_where_it_is_executed(tmp_path: Path) -> None:
    # a delete of the day committed (DuckDB autocommit) before the insert the project's SQL
    # module returns: the gap is judged in the asset; the helper module itself runs nothing
    risky = _project(tmp_path / "a", {"pipe/__init__.py": "", "pipe/sql.py": _SQL_HELPERS,
                                      "pipe/assets.py": _READINGS_ASSET.format(
                                          clear='conn.execute(f"delete from readings where '
                                                'day = \'{day}\'")')})
    assert ("assets.py", 12, "IDM301") in risky
    assert ("assets.py", 21, "IDM301") in risky  # region=True picks the other table
    assert not [f for f in risky if f[0] == "sql.py"]
    # no clear: the insert is no reload (and the helper's append is not reported twice)
    safe = _project(tmp_path / "b", {"pipe/__init__.py": "", "pipe/sql.py": _SQL_HELPERS,
                                     "pipe/assets.py": _READINGS_ASSET.format(clear="pass")})
    assert not [f for f in safe if f[2] == "IDM301" and f[1] == 12]


_LAMBDA_DROP = '''from dagster import asset
from dagster_duckdb import DuckDBResource


@asset
def stations(duckdb: DuckDBResource, women: bool = False) -> None:
    drop_sql = lambda w: f"""
        drop table if exists {'stations_w' if w else 'stations'};
    """
    {load}
'''


def test_sql_returned_by_a_local_lambda_is_run_where_executed(tmp_path: Path) -> None:
    load = ('with duckdb.get_connection() as conn:\n'
            '        conn.execute(drop_sql(women))\n'
            '        conn.execute("create table stations as select * from read_csv(\'s.csv\')")')
    risky = findings(tmp_path, "stations.py", _LAMBDA_DROP.replace("{load}", load))
    assert (8, "IDM301") in risky
    one_statement = ('with duckdb.get_connection() as conn:\n'
                     '        conn.execute("create or replace table stations as '
                     'select * from read_csv(\'s.csv\')")')
    assert (8, "IDM301") not in findings(tmp_path, "stations2.py",
                                         _LAMBDA_DROP.replace("{load}", one_statement))


_FACTORS = '''import duckdb


def save_factors(conn, frame):
    conn.register("frame", frame)
    conn.execute("""
        WITH ranked AS (SELECT team_id, stat, value FROM frame)
        INSERT {how} INTO team_factors
        SELECT team_id, stat, value FROM ranked
    """)
'''


def test_insert_or_replace_is_keyed(tmp_path: Path) -> None:
    assert (7, "IDM201") in findings(tmp_path, "f1.py", _FACTORS.format(how=""))
    assert (7, "IDM201") not in findings(tmp_path, "f2.py", _FACTORS.format(how="OR REPLACE"))
    assert (7, "IDM201") not in findings(tmp_path, "f3.py", _FACTORS.format(how="OR IGNORE"))


_BACKUP = '''import duckdb


def refresh_copy(conn):
    conn.execute("DROP TABLE IF EXISTS {name}")
    conn.execute("CREATE TABLE {name} AS SELECT * FROM scores_live")
'''


def test_refreshing_a_backup_copy_is_no_gap(tmp_path: Path) -> None:
    assert (5, "IDM301") in findings(tmp_path, "b1.py", _BACKUP.format(name="scores"))
    assert (5, "IDM301") not in findings(tmp_path, "b2.py", _BACKUP.format(name="scores_backup"))


_HIGH_WATER = """{{{{ config(materialized='incremental', unique_key='order_id') }}}}

select order_id, customer_id, placed_at, date(placed_at) as placed_day
from {{{{ ref('stg_orders') }}}}
{{% if is_incremental() %}}
{filter}
{{% endif %}}
"""


def test_cursor_through_date_or_an_aggregate(tmp_path: Path) -> None:
    day = findings(tmp_path, "models/a.sql", _HIGH_WATER.format(
        filter="where date(placed_at) > (select max(placed_day) from {{ this }})"))
    assert (6, "IDM402") in day and (6, "IDM403") in day
    grouped = findings(tmp_path, "models/b.sql", _HIGH_WATER.format(
        filter="group by 1, 2, 3\nhaving max(placed_at) > (select max(placed_at) from {{ this }})"))
    assert (7, "IDM402") in grouped and (7, "IDM403") in grouped
    safe = findings(tmp_path, "models/c.sql", _HIGH_WATER.format(
        filter="where date(placed_at) >= (select max(placed_day) - 3 from {{ this }})"))
    assert not [f for f in safe if f[1] in {"IDM402", "IDM403"}]
    # a day picked from the clock through DATE() is as before (not a cursor)
    today = findings(tmp_path, "models/d.sql", _HIGH_WATER.format(
        filter="where date(placed_at) >= current_date - 7 and date(placed_at) < current_date"))
    assert not [f for f in today if f[1] in {"IDM402", "IDM403"}]

# round 14

_TWO_TRIES_14 = """from stages.quotes import load_quotes

try:
    import ujson as json
except ImportError:
    import json

try:
    load_quotes(json.loads(open("quotes.json").read()))
except Exception as e:
    print("quote load failed", e)
"""


def test_second_try_around_an_imported_load_function(tmp_path: Path) -> None:
    # the first try (an optional import) calls no load; the second calls the project's loader
    got = _project(tmp_path / "a", {
        "stages/quotes.py": _STAGES.replace("refresh_prices(engine)", "load_quotes(rows)").format(
            body='pd.DataFrame(rows).to_sql("quotes", create_engine("sqlite://"), '
                 'if_exists="replace")'),
        "nightly.py": _TWO_TRIES_14})
    assert ("nightly.py", 10, "IDM206") in got
    assert ("nightly.py", 5, "IDM206") not in got


_PEP701_LOAD = """import pandas as pd
from sqlalchemy import create_engine


def load(day):
    engine = create_engine("postgresql://dw")
    try:
        pd.read_csv(f"out/{{day}}.csv").to_sql("sales", engine, if_exists="append")
        print(f"loaded {{'/'.join(["out", f"{{day}}.csv"])}}")
    except Exception as e:
        {handler}
"""


def test_pep701_fstrings_are_read_and_uncompilable_files_skipped(tmp_path: Path) -> None:
    # the outer quote re-used inside a replacement field (valid from Python 3.12) is read
    assert findings(tmp_path, "a.py", _PEP701_LOAD.format(handler="print(e)")) == [
        (8, "IDM202"), (10, "IDM206")]
    assert findings(tmp_path, "b.py", _PEP701_LOAD.format(handler="raise")) == [(8, "IDM202")]
    # a file the compiler refuses (a `from __future__` import mid-file) cannot run: skipped
    p = tmp_path / "c.py"
    p.write_text("import pandas as pd\nfrom __future__ import division\n"
                 "pd.DataFrame().to_sql('t', None, if_exists='append')\n", encoding="utf-8")
    res = review_paths([p])
    assert res.findings == [] and res.skipped and "__future__" in res.skipped[0].reason


_CHECKED_INSERT = """import mysql.connector


def save_prices(db, ticker, rows):
    cur = db.cursor()
    sql = "INSERT INTO daily_prices (ticker, day, close) VALUES (%s, %s, %s)"
    for day, close in rows:
        cur.execute("SELECT 1 FROM daily_prices WHERE ticker = %s AND day = %s", (ticker, day))
        found = cur.fetchall()
        {guard}
            cur.execute(sql, (ticker, day, close))
            db.commit()
"""


def test_check_then_insert_is_rerun_safe(tmp_path: Path) -> None:
    # each (ticker, day) is looked up first and inserted only when missing
    assert findings(tmp_path, "a.py", _CHECKED_INSERT.format(guard="if not found:")) == []
    # the lookup's result is not what guards the insert
    assert findings(tmp_path, "b.py", _CHECKED_INSERT.format(guard="if rows:")) == [(6, "IDM201")]


_MARKED_BATCHES = """import psycopg2


class LayerLoader:
    def write_load_log(self, batch_id):
        with psycopg2.connect(self.meta_dsn) as meta, meta.cursor() as cur:
            cur.execute("insert into load_log (batch_id) values (%s)", (batch_id,))
            meta.commit()

    def run(self):
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            for batch_id in self.pending_batches():
                sql = "insert into core.orders select * from raw.orders where batch_id = %s"
                cur.execute(sql, (batch_id,))
                {commit}
                self.write_load_log(batch_id)
"""


def test_item_logged_before_its_insert_commits(tmp_path: Path) -> None:
    # the log row commits on its own connection, the insert only when the with block ends
    assert findings(tmp_path, "a.py", _MARKED_BATCHES.format(commit="pass")) == [(16, "IDM404")]
    # committed before the mark: the log follows the load; the log makes a re-run skip it
    assert findings(tmp_path, "b.py", _MARKED_BATCHES.format(commit="conn.commit()")) == []


def test_run_statistics_table_is_bookkeeping(tmp_path: Path) -> None:
    text = ("import psycopg2\n\n\ndef record(cur, table, nulls):\n"
            "    cur.execute(f\"insert into {target} (table_name, cnt_nulls) "
            "select '{{table}}', {{nulls}}\")\n")
    assert findings(tmp_path, "a.py", text.format(target="statistic")) == []
    assert findings(tmp_path, "b.py", text.format(target="orders")) == [(5, "IDM201")]


_ST_APP = """import pandas as pd
import streamlit as st
from sqlalchemy import create_engine

if st.button("Load prices"):
    try:
        pd.read_csv("prices.csv").to_sql("prices", create_engine("sqlite://"), if_exists="replace")
    except Exception as err:
        {handler}
"""


def test_error_shown_to_the_app_user_is_not_swallowed(tmp_path: Path) -> None:
    assert findings(tmp_path, "a.py", _ST_APP.format(handler='st.error(f"load failed: {err}")')) == []
    assert findings(tmp_path, "b.py", _ST_APP.format(handler='print(f"load failed: {err}")')) == [
        (8, "IDM206")]


_SQL_RUNNER = """import pymysql


def run_query(conn, query):
    cursor = conn.cursor()
    try:
        cursor.execute(query)
    except pymysql.Error as e:
        print(f"query failed: {{e}}")


conn = pymysql.connect(host="src")
done = "{sql}"
run_query(conn, done)
"""


def test_generic_sql_runner_swallowing_a_write(tmp_path: Path) -> None:
    got = findings(tmp_path, "a.py", _SQL_RUNNER.format(sql="UPDATE calls SET exported = 1"))
    assert (8, "IDM206") in got
    assert findings(tmp_path, "b.py", _SQL_RUNNER.format(sql="SELECT count(*) FROM calls")) == []


_RECEIVE_THEN_STORE = """from kafka import KafkaConsumer


def receive(consumer):
    batch = []
    for records in consumer.poll(5000).values():
        batch.extend(r.value for r in records)
    {commit_in_receive}
    return batch


def main(conn):
    consumer = KafkaConsumer("events", group_id="g", enable_auto_commit=False)
    batch = receive(consumer)
    store_events(batch, conn)
    {commit_after}


def store_events(batch, conn):
    cur = conn.cursor()
    cur.executemany("insert into events (body) values (%s) on conflict do nothing", batch)
    conn.commit()
"""


def test_offsets_committed_before_the_caller_writes(tmp_path: Path) -> None:
    risky = findings(tmp_path, "a.py", _RECEIVE_THEN_STORE.format(commit_in_receive="consumer.commit()",
                                                       commit_after="pass"))
    assert (8, "IDM405") in risky
    safe = findings(tmp_path, "b.py", _RECEIVE_THEN_STORE.format(commit_in_receive="pass",
                                                      commit_after="consumer.commit()"))
    assert not [f for f in safe if f[1] == "IDM405"]


# a dict or list where a rule expects a string mode (dlt's
# write_disposition={"disposition": "merge", ...}) crashed the whole review once
_DLT_DICT = '''import dlt


@dlt.resource(write_disposition={wd}, primary_key="id")
def readings(cursor=dlt.sources.incremental("changed_at", initial_value="2024-01-01")):
    yield from fetch(cursor.start_value)


def fetch(since):
    return []


pipeline = dlt.pipeline(pipeline_name="meters", destination="duckdb")
pipeline.run(readings(), write_disposition={wd})
'''


def test_a_dict_or_list_write_disposition_is_reviewed_without_a_crash(tmp_path: Path) -> None:
    merge = '{"disposition": "merge", "strategy": "upsert"}'
    assert findings(tmp_path, "merge.py", _DLT_DICT.format(wd=merge)) == []
    assert findings(tmp_path, "odd.py", _DLT_DICT.format(wd='["append"]')) == []
    # a BigQuery job configuration given as a dict literal: still read as before
    bq = ('from google.cloud import bigquery\n\n\ndef load(client, uri):\n'
          '    cfg = {"load": {"writeDisposition": "WRITE_APPEND"}}\n'
          '    client.query(uri, job_config=cfg)\n')
    assert (5, "IDM201") in findings(tmp_path, "bq.py", bq)


# round 15 (continued)


def test_dlt_dict_disposition_does_not_crash(tmp_path: Path) -> None:
    # dlt's dict form of a write disposition crashed the review of the whole run
    base = """import dlt


@dlt.resource(write_disposition={wd})
def readings():
    yield from []


pipeline = dlt.pipeline(destination="duckdb")
pipeline.run(readings(), write_disposition={wd})
"""
    merged = findings(tmp_path, "d1.py", base.format(wd='{"disposition": "merge", "strategy": "scd2"}'))
    assert (4, "IDM201") not in merged
    appended = findings(tmp_path, "d2.py", base.format(wd='{"disposition": "append"}'))
    assert (4, "IDM201") in appended


_SCHEMA_THEN_LOAD = '''from sqlalchemy import create_engine, text

engine = create_engine("postgresql://warehouse")


def ensure_schema(schema):
    try:
        with engine.connect() as conn:
            conn.execute(text({sql}))
            conn.commit()
    except Exception as e:
        print("could not prepare", schema, e)


def load(frame, schema):
    ensure_schema(schema)
    frame.to_sql("readings", engine, schema=schema, if_exists="replace", index=False)
'''


def test_swallowed_create_schema_is_no_lost_load(tmp_path: Path) -> None:
    safe = findings(tmp_path, "s1.py", _SCHEMA_THEN_LOAD.format(
        sql='f"CREATE SCHEMA IF NOT EXISTS {schema}"'))
    assert (11, "IDM206") not in safe
    risky = findings(tmp_path, "s2.py", _SCHEMA_THEN_LOAD.format(
        sql='f"INSERT INTO {schema}.runs SELECT * FROM staging_runs"'))
    assert (11, "IDM206") in risky


_SERVER = '''import pandas as pd
from sqlalchemy import create_engine
{web_import}

engine = create_engine("postgresql://warehouse")
{app}


def store(frame, table):
    try:
        frame.to_sql(table, engine, if_exists="replace", index=False)
    except Exception as e:
        print("store failed:", e)
        return False
    return True
'''


def test_web_server_handlers_are_not_pipeline_runs(tmp_path: Path) -> None:
    # a request handler's failure goes back to the caller of the request: no scheduler runs it
    server = findings(tmp_path, "api.py", _SERVER.format(
        web_import="from fastapi import FastAPI", app="app = FastAPI(title=\"data\")"))
    assert (12, "IDM206") not in server
    script = findings(tmp_path, "job.py", _SERVER.format(web_import="", app=""))
    assert (12, "IDM206") in script


_VOTES = '''import os

import requests
from dagster import MaterializeResult, MetadataValue, asset


@asset
def ratings(context):
    base = os.environ["VOTES_URL"]
    votes, skipped = [], 0
    for key in requests.get(f"{{base}}/index", timeout=10).json():
        try:
            resp = requests.get(f"{{base}}/{{key}}", timeout=10)
            votes.append(resp.json())
        except Exception:
            {handler}
    return MaterializeResult(metadata={{"votes": len(votes){report}}})
'''


def test_counted_and_reported_skip_is_no_silent_skip(tmp_path: Path) -> None:
    counted = findings(tmp_path, "a1.py", _VOTES.format(
        handler="skipped += 1", report=', "skipped": MetadataValue.int(skipped)'))
    assert (15, "IDM206") not in counted
    silent = findings(tmp_path, "a2.py", _VOTES.format(handler="continue", report=""))
    assert (15, "IDM206") in silent


_DELTA_HELPER = '''from delta.tables import DeltaTable


def write_results(df, table, conditions):
    if spark.catalog.tableExists(table):
        DeltaTable.forName(spark, table).alias("tgt").merge(
            {source}.alias("upd"), {on}
        ).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    else:
        df.write.mode("overwrite").partitionBy("race_id").format("delta").saveAsTable(table)


def rebuild(df, table):
    df.write.mode("overwrite").partitionBy("race_id").format("delta").saveAsTable(table)
'''


def test_delta_helper_first_creation_and_callers_source(tmp_path: Path) -> None:
    helper = findings(tmp_path, "h1.py", _DELTA_HELPER.format(source="df", on="conditions"))
    # the overwrite only creates the missing table; frame and key are the caller's
    assert (10, "IDM701") not in helper and (6, "IDM703") not in helper
    # an unconditional overwrite of the partitioned table still wipes every partition
    assert (14, "IDM701") in helper
    # a source read inside the helper and never deduplicated is as before
    own = findings(tmp_path, "h2.py", _DELTA_HELPER.format(
        source='spark.read.parquet("/raw/results")', on="conditions"))
    assert (6, "IDM703") in own
    # so is a parameter frame merged on a key written here (the helper knows the key)
    keyed = findings(tmp_path, "h3.py", _DELTA_HELPER.format(
        source="df", on='"tgt.result_id = upd.result_id"'))
    assert (6, "IDM703") in keyed


_MERGE_CALLER = '''# Databricks notebook source
results = spark.read.parquet("/processed/results").dropDuplicates(["race_id", "driver_id"])

merge_on = "tgt.driver_id = upd.driver_id AND {second}"
upsert_delta(results, "presentation", "race_results", merge_on, "race_id")
'''


def test_crossed_merge_keys(tmp_path: Path) -> None:
    # upd.driver_id equated to two target columns: no row matches, every re-run inserts again
    crossed = findings(tmp_path, "c1.py", _MERGE_CALLER.format(second="tgt.race_id = upd.driver_id"))
    assert (4, "IDM205") in crossed
    paired = findings(tmp_path, "c2.py", _MERGE_CALLER.format(second="tgt.race_id = upd.race_id"))
    assert (4, "IDM205") not in paired
    # a renamed key (tgt.race_key = upd.race_id) pairs each column once: as before
    renamed = findings(tmp_path, "c3.py", _MERGE_CALLER.format(second="tgt.race_key = upd.race_id"))
    assert (4, "IDM205") not in renamed


_LEDGER = '''import os

import pandas as pd
from prefect import task


@task
def next_chunk(path, size, engine):
    ledger = "chunks_done.txt"
    done = set()
    if os.path.exists(ledger):
        with open(ledger) as fh:
            done = set(fh.read().splitlines())
    n = 1
    while True:
        if str(n) not in done:
            df = pd.read_csv(path, skiprows=size * (n - 1), nrows=size)
            {before}
            with open(ledger, "a") as fh:
                fh.write(f"{{n}}\\n")
            {after}
        n += 1
'''


def test_ledger_marked_before_the_caller_loads(tmp_path: Path) -> None:
    early = findings(tmp_path, "l1.py", _LEDGER.format(before="pass", after="return df"))
    assert (20, "IDM404") in early
    # the chunk is loaded here before it is marked: a failed load leaves it unmarked
    loaded = findings(tmp_path, "l2.py", _LEDGER.format(
        before='df.to_sql("videos", engine, if_exists="append", index=False)', after="return n"))
    assert (20, "IDM404") not in loaded


_DAY_AFTER = '''from datetime import datetime, timedelta

import pandas as pd
from dagster import asset


@asset
def station_readings(context, warehouse):
    {start}
    end = (datetime.utcnow() - timedelta(days=1)).strftime("%Y-%m-%d")
    frame = pd.read_csv(f"https://meteo.example/readings?from={{start}}&to={{end}}")
    frame.to_sql("readings", warehouse, if_exists="append", index=False)
'''


def test_next_start_the_day_after_the_last_loaded_day(tmp_path: Path) -> None:
    strict = findings(tmp_path, "m1.py", _DAY_AFTER.format(start=(
        "last = warehouse.execute('SELECT MAX(day) FROM readings').scalar()\n"
        "    start = last + timedelta(days=1)")))
    assert (10, "IDM402") in strict and (10, "IDM403") in strict
    # a run over a fixed day of the schedule has no cursor
    fixed = findings(tmp_path, "m2.py", _DAY_AFTER.format(start=(
        "day = datetime.fromisoformat(context.partition_key)\n"
        "    start = day + timedelta(days=1)")))
    assert not [f for f in fixed if f[1] in {"IDM402", "IDM403"}]


_NOTEBOOK_LIB = '''# Databricks notebook source
def overwrite_by_day(df, table):
    df.write.mode("overwrite").partitionBy("day").saveAsTable(table)

# COMMAND ----------

def overwrite_by_month(df, table):
    df.write.mode("overwrite").partitionBy("month").saveAsTable(table)
'''

_NOTEBOOK_JOB = '''# Databricks notebook source
# MAGIC %run ../includes/common_funcs

# COMMAND ----------

frame = spark.read.parquet("/raw/laps")
overwrite_by_day(frame, "processed.laps")
'''


def test_notebook_run_is_an_import_of_the_helpers(tmp_path: Path) -> None:
    # `%run` brings the helper notebook in: a helper no notebook calls runs only by hand
    (tmp_path / "includes").mkdir()
    (tmp_path / "ingestion").mkdir()
    (tmp_path / "includes" / "common_funcs.py").write_text(_NOTEBOOK_LIB, encoding="utf-8")
    (tmp_path / "ingestion" / "laps.py").write_text(_NOTEBOOK_JOB, encoding="utf-8")
    result = review_paths([tmp_path])
    lib = sorted((f.line, f.rule_id) for f in result.findings
                 if f.file.endswith("common_funcs.py"))
    assert (3, "IDM701") in lib  # called by the ingestion notebook
    assert (8, "IDM701") not in lib  # called by none of them

# round 16

_TOTALS_UPSERT = '''import psycopg2


def write_totals(rows, conn):
    cur = conn.cursor()
    for r in rows:
        query = """INSERT INTO daily_totals (day, user_id, minutes)
VALUES (%s, %s, %s)
ON CONFLICT (day, user_id) DO UPDATE SET minutes = {update}"""
        cur.execute(query, (r.day, r.user_id, r.minutes))
    conn.commit()
'''


def test_upsert_that_adds_the_incoming_value_is_an_append(tmp_path: Path) -> None:
    # DO UPDATE SET n = t.n + EXCLUDED.n: keyed, but a rerun adds the same totals again
    risky = findings(tmp_path / "a", "totals.py",
                     _TOTALS_UPSERT.format(update="daily_totals.minutes + EXCLUDED.minutes"))
    assert (7, "IDM201") in risky
    safe = findings(tmp_path / "b", "totals.py", _TOTALS_UPSERT.format(update="EXCLUDED.minutes"))
    assert not [f for f in safe if f[1] == "IDM201"]


_REFRESH_VIEW = '''import psycopg2
from airflow.providers.postgres.hooks.postgres import PostgresHook


def refresh_stats(ds, **kwargs):
    conn = PostgresHook(postgres_conn_id="pg").get_conn()
    try:
        cur = conn.cursor()
        cur.execute("INSERT INTO webmap.stats SELECT * FROM staging.stats")
        conn.commit()
    except (Exception, {module}.DatabaseError) as error:
        print(error)
'''


def test_handler_naming_a_module_never_imported_catches_nothing(tmp_path: Path) -> None:
    # `except (Exception, psycopg.DatabaseError)` with only psycopg2 imported: the tuple is
    # evaluated when an error arrives and raises NameError, so the error is not swallowed
    risky = findings(tmp_path / "a", "refresh.py", _REFRESH_VIEW.format(module="psycopg2"))
    assert (11, "IDM206") in risky
    safe = findings(tmp_path / "b", "refresh.py", _REFRESH_VIEW.format(module="psycopg"))
    assert (11, "IDM206") not in safe


_TUTORIAL_DAG = '''from datetime import timedelta

from airflow import DAG
from airflow.operators.bash_operator import BashOperator
from airflow.utils.dates import days_ago

default_args = {
    "owner": "airflow",
    "start_date": days_ago(2),
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
}
dag = DAG("tutorial", default_args=default_args, schedule_interval=timedelta(days=1))

t1 = BashOperator(task_id="print_date", bash_command="date", dag=dag)

templated_command = """
{% for i in range(5) %}
    echo "{{ ds }}"
    {command}
{% endfor %}
"""

t2 = BashOperator(task_id="templated", bash_command=templated_command, dag=dag)
t1 >> t2
'''


def test_templated_bash_command_that_only_echoes_writes_nothing(tmp_path: Path) -> None:
    # the Airflow tutorial: a module-level templated command of echo lines in a Jinja loop
    risky = findings(tmp_path / "a", "tut.py", _TUTORIAL_DAG.replace(
        "{command}", 'psql -c "insert into runs values (\'{{ ds }}\')"'))
    assert (9, "IDM105") in risky and (13, "IDM102") in risky
    safe = findings(tmp_path / "b", "tut.py", _TUTORIAL_DAG.replace(
        "{command}", 'echo "{{ macros.ds_add(ds, 7) }}"'))
    assert not [f for f in safe if f[1] in {"IDM101", "IDM102", "IDM105"}]


_OVERRIDDEN_START = '''from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.utils.dates import days_ago

default_args = {
    "owner": "airflow",
    "start_date": days_ago(2),
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
}

with DAG("assign", default_args=default_args, schedule_interval="0 */2 * * *",
         {start}max_active_runs=1, catchup=False) as dag:
    BashOperator(task_id="assign", bash_command="./scripts/assign-trees.sh")
'''


def test_dag_start_date_overrides_the_one_of_default_args(tmp_path: Path) -> None:
    risky = findings(tmp_path / "a", "assign.py", _OVERRIDDEN_START.replace("{start}", ""))
    assert (9, "IDM105") in risky
    safe = findings(tmp_path / "b", "assign.py",
                    _OVERRIDDEN_START.replace("{start}", "start_date=datetime(2021, 1, 1), "))
    assert (9, "IDM105") not in safe


_YEAR_TOTALS = '''import pandas as pd


def get_quiz_totals(client):
    query = """SELECT user_id, COUNT(quiz_id) AS submitted
    FROM quiz_answers
    WHERE time >= now() - interval '{window}'
    GROUP BY user_id"""
    return pd.DataFrame(client.query(query=query).to_pandas())
'''


def test_totals_recounted_over_a_long_trailing_window_are_no_cursor(tmp_path: Path) -> None:
    # a year of answers counted again at every run: a late answer is counted by the next run
    risky = findings(tmp_path / "a", "quiz.py", _YEAR_TOTALS.format(window="1 hour"))
    assert (7, "IDM401") in risky
    safe = findings(tmp_path / "b", "quiz.py", _YEAR_TOTALS.format(window="365 day"))
    assert not [f for f in safe if f[1] == "IDM401"]


# round 17

_GLUE_INGEST = '''import sys

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from pyspark.context import SparkContext

from jobs.helpers import add_import_time_columns, {helper}

glue_context = GlueContext(SparkContext())
source = glue_context.create_dynamic_frame.from_catalog(database="landing", table_name="tenancies")
frame = {read}(source.toDF())
frame = add_import_time_columns(frame)
out = DynamicFrame.fromDF(frame, glue_context, "out")
glue_context.write_dynamic_frame.from_options(
    frame=out,
    connection_type="s3",
    format="parquet",
    connection_options={"path": "s3://raw/tenancies", "partitionKeys": {keys}},
)
sink = glue_context.getSink(path="s3://raw/copy", connection_type="s3", partitionKeys={keys})
sink.setFormat("glueparquet")
sink.writeFrame(out)
'''


def _glue(read: str, keys: str) -> str:
    return _GLUE_INGEST.replace("{helper}", read).replace("{read}", read).replace("{keys}", keys)


def test_glue_s3_sinks_append_into_partitions(tmp_path: Path) -> None:
    # Glue's S3 sink adds files: a full snapshot written again the same day doubles the partition
    risky = findings(tmp_path / "a", "ingest.py", _glue("clean_column_names", '["import_date"]'))
    assert (14, "IDM702") in risky and (22, "IDM702") in risky
    unpartitioned = findings(tmp_path / "b", "ingest.py", _glue("clean_column_names", "[]"))
    assert not [f for f in unpartitioned if f[1] == "IDM702"]
    # a refined job rebuilding its sources' latest partitions appends the same snapshot again
    # into the same partition on a same-day rerun (review15, the round-17 jobs re-read in full)
    latest = findings(tmp_path / "c", "refine.py", _glue("get_latest_partitions", '["import_date"]'))
    assert (14, "IDM702") in latest and (22, "IDM702") in latest


_GLUE_LOOP = '''from awsglue.context import GlueContext
from pyspark.context import SparkContext

glue_context = GlueContext(SparkContext())
for table in ["a", "b"]:
    try:
        frame = glue_context.create_dynamic_frame.from_catalog(database="src", table_name=table)
        glue_context.write_dynamic_frame.from_options(
            frame=frame, connection_type="s3", connection_options={"path": "s3://raw/" + table})
    except Exception as e:
        print(f"failed {table}: {e}")
        {fail}
'''


def test_glue_write_in_a_swallowing_handler(tmp_path: Path) -> None:
    risky = findings(tmp_path / "a", "job.py", _GLUE_LOOP.replace("{fail}", "continue"))
    assert (10, "IDM206") in risky
    safe = findings(tmp_path / "b", "job.py", _GLUE_LOOP.replace("{fail}", "raise"))
    assert (10, "IDM206") not in safe


_SPARK_CURSOR = '''from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.helpers import get_max_date_partition_value


def copy(spark, source, target):
    data = spark.read.parquet(source)
    latest = get_max_date_partition_value("raw", "cases", "import_date")
    new_rows = data.filter(F.col("import_date") {op} latest)
    new_rows.write.mode("append").partitionBy("import_date").parquet(target)
'''


def test_spark_append_past_the_targets_newest_partition(tmp_path: Path) -> None:
    # an incremental copy past the target's own newest partition: no IDM702 on the append,
    # but the strict cursor never re-reads a partition that grows after the copy
    risky = findings(tmp_path / "a", "copy.py", _SPARK_CURSOR.format(op=">"))
    assert (10, "IDM402") in risky and (10, "IDM403") in risky
    assert (11, "IDM702") not in risky
    plain = findings(tmp_path / "b", "copy.py", _SPARK_CURSOR.format(op="!="))
    assert (11, "IDM702") in plain and (10, "IDM403") not in plain


_DBT_GA = '''{{{{ config(materialized='incremental', unique_key=['logged_date', 'channel']) }}}}

with
    daily as (
        select cast(s.visit_start_at as date) as logged_date, s.channel, count(*) as sessions
        from {{{{ ref("ga_sessions") }}}} s
        where cast(s.visit_start_at as date) >= '2022-11-01'
        {{% if is_incremental() %}}
        and cast(s.visit_start_at as date) {op} (select max(logged_date) from {{{{ this }}}})
        {{% endif %}}
        group by 1, 2
    ),
    average_last_year as (
        select a.channel, avg(sessions) as avg_sessions
        from daily a
        where a.logged_date > date_sub(current_date, interval {window})
        group by 1
    )
select d.*, y.avg_sessions from daily d left join average_last_year y on d.channel = y.channel
'''


def test_dbt_day_cursor_beside_a_fixed_start_and_trailing_average(tmp_path: Path) -> None:
    # strict > on the day past a fixed start date: the last day is never revisited
    risky = findings(tmp_path / "a", "models/ga_sessions_daily.sql",
                     _DBT_GA.format(op=">", window="1 day"))
    assert (9, "IDM402") in risky and (9, "IDM403") in risky and (16, "IDM401") in risky
    # `cast(... as date) >=` re-reads the last day, merged on the key; a year-long grouped
    # average (BigQuery's date_sub(..., interval 1 year)) is recounted whole at each run
    safe = findings(tmp_path / "b", "models/ga_sessions_daily.sql",
                    _DBT_GA.format(op=">=", window="1 year"))
    assert not [f for f in safe if f[1] in {"IDM401", "IDM402", "IDM403"}]


# rounds 18-19

_DLT_QUOTES = '''from datetime import datetime, timezone

import dlt
from dlt.sources.helpers import requests


def _now_utc():
    return datetime.now(timezone.utc)


@dlt.resource(name="fx_quotes", write_disposition="append", primary_key="{pk}")
def quotes(pair: str = "EURUSD"{cursor}):
    resp = requests.get(f"https://api.example.com/quotes/{{pair}}")
    resp.raise_for_status()
    for row in resp.json():
        yield {{"pair": pair, "quote_id": row["id"], "fetched_at": {stamp}, "bid": row["bid"]}}
'''


def test_dlt_append_with_incremental_cursor_or_clock_keyed_snapshot(tmp_path: Path) -> None:
    # a plain append: a rerun loads the same quotes again
    risky = findings(tmp_path / "a", "quotes.py",
                     _DLT_QUOTES.format(pk="quote_id", cursor="", stamp='row["ts"]'))
    assert (11, "IDM201") in risky
    # dlt keeps an incremental cursor with the load and drops rows it already holds
    incr = findings(tmp_path / "b", "quotes.py",
                    _DLT_QUOTES.format(pk="quote_id", stamp='row["ts"]',
                                       cursor=', ts=dlt.sources.incremental("ts")'))
    assert not [f for f in incr if f[1] == "IDM201"]
    # a snapshot log keyed by the clock at request time: one new observation per run
    snap = findings(tmp_path / "c", "quotes.py",
                    _DLT_QUOTES.format(pk="fetched_at", cursor="", stamp="_now_utc()"))
    assert not [f for f in snap if f[1] == "IDM201"]


_HELPER_LOAD = '''import logging

import pandas as pd
from sqlalchemy import create_engine

logger = logging.getLogger(__name__)
engine = create_engine("postgresql://etl@db/market")


def load_data(df):
    return df.to_sql(name="prices", con=engine, if_exists="replace", index=False)


def etl():
    try:
        df = pd.read_json("https://api.example.com/prices")
        load_data(df)
    except Exception as e:
        {handler}


etl()
'''


def test_swallowed_error_around_a_load_helper_of_the_same_module(tmp_path: Path) -> None:
    # the load sits in a helper of the same file; the except around its call only logs
    risky = findings(tmp_path / "a", "main.py", _HELPER_LOAD.format(handler='logger.exception(f"{e}")'))
    assert (18, "IDM206") in risky
    safe = findings(tmp_path / "b", "main.py", _HELPER_LOAD.format(handler="raise"))
    assert not [f for f in safe if f[1] == "IDM206"]


_GLUED_PAGE = '''import logging

from airflow.models import Variable


def next_page(cursor, previous_max):
    dataset = Variable.get("bq_sites")
    sql = f"""select PointID, OBJECTID, Easting, Northing from {{dataset}}.WellData"""
    params = {{}}
    if previous_max:
        sql = f"{{sql}} where {col}>%(leftbounds)s"
        params["leftbounds"] = previous_max
    sql = f"{{sql}} order by {order} LIMIT 500"
    logging.info(sql)
    cursor.execute(sql, params)
    return cursor.fetchall()
'''


def test_query_rebound_to_itself_plus_filter_and_page(tmp_path: Path) -> None:
    # `sql = f"{sql} where ..."` glued on: the strict cursor on a load-time column is seen
    stamp = findings(tmp_path / "a", "sites.py",
                     _GLUED_PAGE.format(col="_airbyte_emitted_at", order="_airbyte_emitted_at"))
    assert (11, "IDM403") in stamp
    # a unique OBJECTID paged in its own order cannot skip or share a value
    own = findings(tmp_path / "b", "sites.py", _GLUED_PAGE.format(col="OBJECTID", order="OBJECTID"))
    assert not [f for f in own if f[1] in {"IDM402", "IDM403"}]
    # ... but a page ordered first by another column skips the unread rows below its max key
    other = findings(tmp_path / "c", "sites.py",
                     _GLUED_PAGE.format(col="OBJECTID", order="PointID, OBJECTID"))
    assert (11, "IDM403") in other and (11, "IDM402") not in other


_SCREENS = '''def screens(cursor, objectid):
    sql = ("select ws.PointID, ScreenTop from gw.screens as ws "
           "join gw.wells as wd on wd.WellID = ws.WellID "
           "where wd.{col} > %(last)s order by ws.PointID")
    cursor.execute(sql, {{"last": objectid or 0}})
    return cursor.fetchall()
'''


def test_strict_cursor_on_a_gis_objectid_is_a_key(tmp_path: Path) -> None:
    risky = findings(tmp_path / "a", "screens.py", _SCREENS.format(col="updated"))
    assert (2, "IDM403") in risky
    safe = findings(tmp_path / "b", "screens.py", _SCREENS.format(col="OBJECTID"))
    assert not [f for f in safe if f[1] in {"IDM402", "IDM403"}]



# round 20

_FOLDER_DAG = '''import logging
from datetime import datetime

from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator
from elasticsearch import Elasticsearch, helpers
{imports}

def load_warehouses():
    client = Elasticsearch("http://mdm:9200")
    actions = [{{"_index": "warehouse", "_id": w["id"], "_source": w}} for w in fetch()]
    success, errors = helpers.bulk(client, actions, stats_only=False,
                                   raise_on_error=False, raise_on_exception=False)
    logging.info("loaded %s, errors %s", success, errors)


with DAG(dag_id="mdm_warehouse", start_date=datetime(2025, 1, 1), schedule="0 * * * *",
         catchup=False) as dag:
    PythonOperator(task_id="load", python_callable=load_warehouses)
'''


def test_dag_in_a_test_named_folder_is_reviewed(tmp_path: Path) -> None:
    # a scheduled DAG kept in dags/test/ (trial DAGs the scheduler still loads) is reviewed
    root = tmp_path / "a"
    (root / "dags" / "test").mkdir(parents=True)
    (root / "dags" / "test" / "warehouse.py").write_text(_FOLDER_DAG.format(imports=""))
    res = review_paths([root])
    assert (13, "IDM206") in {(f.line, f.rule_id) for f in res.findings}
    # the same DAG built inside a pytest module of tests/ is test code, left out
    root = tmp_path / "b"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "warehouse_dag.py").write_text(_FOLDER_DAG.format(imports="import pytest"))
    res = review_paths([root])
    assert not res.findings and res.left_out


_ES_BULK = '''import logging

from elasticsearch import helpers
from elasticsearch.helpers import BulkIndexError


def upsert_products(client, items):
    actions = [{{"_op_type": "update", "_index": "products", "_id": i["id"], "doc": i,
                "doc_as_upsert": True}} for i in items]
    success, errors = helpers.bulk(
        client,
        actions,
        stats_only=False,
        raise_on_error={flag},
        raise_on_exception={flag},
    )
    logging.info("updated %s", success)
    if errors:
        {on_errors}


def upsert_prices(client, actions):
    try:
        helpers.bulk(client, actions, refresh="wait_for")
    except BulkIndexError as e:
        {on_bulk_error}
'''


def test_elasticsearch_bulk_failures_swallowed(tmp_path: Path) -> None:
    risky = findings(tmp_path / "a", "products.py", _ES_BULK.format(
        flag="False", on_errors='logging.error("errors: %s", errors)',
        on_bulk_error='logging.error("bulk failed: %s", e)'))
    assert (14, "IDM206") in risky and (25, "IDM206") in risky
    safe = findings(tmp_path / "b", "products.py", _ES_BULK.format(
        flag="False", on_errors='raise RuntimeError(f"{len(errors)} documents failed")',
        on_bulk_error='logging.error("bulk failed: %s", e)\n        raise'))
    assert not [f for f in safe if f[1] == "IDM206"]
    raising = findings(tmp_path / "c", "products.py", _ES_BULK.format(
        flag="True", on_errors='logging.error("errors: %s", errors)',
        on_bulk_error='raise'))
    assert not [f for f in raising if f[1] == "IDM206"]


_DASHBOARD = '''import os
from datetime import datetime, timezone

import duckdb
{ui}

con = duckdb.connect(database=f"md:{{os.environ['DB_NAME']}}")
last_loaded = con.execute("select max(loaded_at) from raw._loads").fetchone()[0]
last_updated_minutes_ago = (
    datetime.now(timezone.utc) - last_loaded).total_seconds() / 60
today = con.execute("select sum(mwh) from dwh.power where day = current_date - 1").df()
{show}
'''


def test_read_only_dashboard_page_reads_the_clock(tmp_path: Path) -> None:
    # the same lines in a plain script are kept (a watermark from the clock)...
    risky = findings(tmp_path / "a", "page.py", _DASHBOARD.format(
        ui="", show="print(last_updated_minutes_ago, today)"))
    assert (9, "IDM401") in risky and (11, "IDM501") in risky
    # ... a Streamlit page that writes nothing only shows them
    safe = findings(tmp_path / "b", "page.py", _DASHBOARD.format(
        ui="import streamlit as st", show='st.text(f"updated {last_updated_minutes_ago:.0f} minutes ago")'))
    assert not [f for f in safe if f[1] in {"IDM401", "IDM501"}]


_SPARK_DAG = '''from datetime import datetime

from airflow import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

default_args = {{
    "owner": "data",
    "start_date": datetime(2025, 1, 1),
    "catchup": False,
    "retries": 1,
}}

silver_dag = DAG(
    dag_id="silver_enrollments",
    default_args=default_args,
    schedule={schedule},
    max_active_runs=1,
)

KubernetesPodOperator(task_id="spark_submit", name="silver", image="spark:3.5",
                      cmds=["spark-submit", "/jobs/silver.py"], dag=silver_dag)
'''


def test_catchup_in_default_args_of_an_unscheduled_dag(tmp_path: Path) -> None:
    risky = findings(tmp_path / "a", "silver_dag.py", _SPARK_DAG.format(schedule='"0 1 * * *"'))
    assert (9, "IDM108") in risky
    # triggered only (schedule=None): no interval to catch up on
    safe = findings(tmp_path / "b", "silver_dag.py", _SPARK_DAG.format(schedule="None"))
    assert not [f for f in safe if f[1] in {"IDM101", "IDM108"}]
